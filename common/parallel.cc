// epsim common: worker threads (see parallel.h).
#include "common/parallel.h"

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <exception>
#include <thread>

namespace epsim {
namespace {

std::atomic<int> worker_threads{0};  // 0: not set, Cores()

}  // namespace

int Cores() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
  return static_cast<int>(std::max(1L, sysconf(_SC_NPROCESSORS_ONLN)));
}

int WorkerThreads() {
  const int set = worker_threads.load();
  return set > 0 ? set : Cores();
}

void SetWorkerThreads(int threads) { worker_threads.store(std::max(1, threads)); }

void ParallelFor(int parts, const std::function<void(int)>& body) {
  const int threads = std::min(parts, WorkerThreads());
  if (threads <= 1) {
    for (int part = 0; part < parts; ++part) body(part);
    return;
  }
  std::vector<std::exception_ptr> errors(parts);
  std::atomic<int> next{0};
  auto work = [&] {
    for (int part = next++; part < parts; part = next++) {
      try {
        body(part);
      } catch (...) {
        errors[part] = std::current_exception();
      }
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(work);
  work();
  for (std::thread& thread : pool) thread.join();
  for (const std::exception_ptr& error : errors)
    if (error) std::rethrow_exception(error);
}

int RangesFor(size_t count) {
  return static_cast<int>(std::min<size_t>(std::max<size_t>(count, 1), 4 * static_cast<size_t>(WorkerThreads())));
}

void ParallelForRanges(size_t count, const std::function<void(size_t begin, size_t end)>& body) {
  const int parts = RangesFor(count);
  ParallelFor(parts, [&](int part) {
    const auto [begin, end] = PartRange(count, parts, part);
    body(begin, end);
  });
}

std::pair<size_t, size_t> PartRange(size_t count, int parts, int part) {
  const size_t base = count / parts, extra = count % parts;
  const size_t p = static_cast<size_t>(part);
  const size_t begin = p * base + std::min(p, extra);
  return {begin, begin + base + (p < extra ? 1 : 0)};
}

}  // namespace epsim
