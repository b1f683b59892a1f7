// epsim common: worker threads for work that splits into independent parts (the routing
// sampler's sources, the fast path's links and flows, the time attribution's GPUs). Results
// never depend on the thread count: callers give each part its own output and combine the
// parts in part order (or order-free, as a maximum).
#ifndef EPSIM_COMMON_PARALLEL_H_
#define EPSIM_COMMON_PARALLEL_H_

#include <cstddef>
#include <functional>
#include <utility>
#include <vector>

namespace epsim {

// The cores this process may run on (its affinity mask), at least 1.
int Cores();

// Threads ParallelFor may use: Cores() unless set (1: everything on the calling thread).
int WorkerThreads();
void SetWorkerThreads(int threads);

// Calls body(part) for every part in [0, parts), on up to WorkerThreads() threads, and
// returns when all are done. Parts must not write to shared state. If parts throw, the
// exception of the lowest such part is rethrown (the same one on any thread count).
void ParallelFor(int parts, const std::function<void(int)>& body);

// How many ranges to split `count` items into: a few per thread (so that uneven items even
// out), at least 1, at most `count`.
int RangesFor(size_t count);

// Calls body(begin, end) over RangesFor(count) consecutive ranges that tile [0, count), on
// the worker threads; as ParallelFor otherwise.
void ParallelForRanges(size_t count, const std::function<void(size_t begin, size_t end)>& body);

// [begin, end) of part `part` of `parts` over `count` items: contiguous, sizes differing by
// at most one, in order.
std::pair<size_t, size_t> PartRange(size_t count, int parts, int part);

}  // namespace epsim

#endif  // EPSIM_COMMON_PARALLEL_H_
