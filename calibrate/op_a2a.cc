// epsim calibration: "a2a": all-to-all with uneven splits between ranks. CPU backend:
// MPI_Alltoallv between the processes mpirun started; CUDA backend: NCCL grouped send/recv
// over all local GPUs in this process. Each rank sends bytes_per_peer to its next `peers`
// ranks (1, or every other rank) and skew x bytes_per_peer to the next one (the hot
// receiver); a sample is the slowest rank's time, after a barrier (MPI) or from a common
// start of the GPUs, timed with events on each GPU's stream (NCCL). Fitted as the simulator's
// nccl model (sim/traffic/comm_model.h): time = fixed + peers x per message + bytes a rank
// sends to others / bandwidth; two peer counts tell the per-message cost from the fixed one.
#include <chrono>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "calibrate/harness.h"
#include "calibrate/op_a2a.h"
#include "calibrate/op_common.h"
#include "common/stats.h"
#include "kernels/all_to_all.h"
#ifdef EPSIM_WITH_CUDA
#include "kernels/ep_ops_cuda.h"
#endif

namespace epsim {
namespace calib {

kernels::MpiAllToAll* SharedMpi() {
  static std::unique_ptr<kernels::MpiAllToAll> mpi = []() -> std::unique_ptr<kernels::MpiAllToAll> {
    if (!kernels::MpiAllToAll::LaunchedByMpirun() || !kernels::MpiAllToAll::Available(nullptr)) return nullptr;
    return std::make_unique<kernels::MpiAllToAll>();
  }();
  return mpi.get();
}

namespace {

// Rank `me` of `n` sends `base` to its next `peers` ranks, skew x base to the first of them,
// and nothing to the others; its own slot stays `base` (a local copy, never timed apart).
std::vector<int64_t> SendBytes(int me, int n, int64_t base, double skew, int peers) {
  std::vector<int64_t> out(n, 0);
  out[me] = base;
  for (int i = 1; i <= peers; ++i) out[(me + i) % n] = base;
  out[(me + 1) % n] = static_cast<int64_t>(base * skew);
  return out;
}

double BytesToOthers(int peers, int64_t base, double skew) { return base * (peers - 1) + base * skew; }

// The peer counts swept: one, and every other rank (the same with 2 ranks).
std::vector<int> PeerCounts(int n) { return n > 2 ? std::vector<int>{1, n - 1} : std::vector<int>{1}; }

// One timed exchange of the sweep: peers, bytes per peer, skew.
using Exchange = std::tuple<int, int64_t, double>;

// Every peer count with every size; the skews with every other rank as peers (to one peer of
// several a skew only scales the size: the first skew there).
std::vector<Exchange> Exchanges(const std::vector<int64_t>& sizes, const std::vector<double>& skews,
                                const std::vector<int>& peer_counts) {
  std::vector<Exchange> out;
  for (const int peers : peer_counts)
    for (const int64_t base : sizes)
      for (const double skew : skews)
        if (peers == peer_counts.back() || skew == skews.front()) out.emplace_back(peers, base, skew);
  return out;
}

void AddCase(Harness& h, int n, int64_t base, double skew, int peers, std::vector<double> samples) {
  Case c;
  c.op = "a2a";
  c.shape.ranks = n;
  c.shape.bytes_per_peer = base;
  c.shape.peers = peers;
  c.shape.skew = skew;
  c.work = {0, BytesToOthers(peers, base, skew), 0, Median(samples)};
  c.p10_s = Quantile(samples, 0.1);
  c.p90_s = Quantile(samples, 0.9);
  c.samples_s = std::move(samples);
  h.cases().push_back(std::move(c));
}

// The correctness checks' exchanges: rank `me` sends `base` + me bytes to every rank and 3x
// that to its next one, once with small messages and once with messages past NCCL's
// chunking (1 MiB and an odd tail). Every byte is tagged (me * n + destination) mod 251:
// distinct for every (sender, receiver) pair up to 15 ranks, and never 0xff, the value the
// receive buffers start with.
constexpr int64_t kCheckBases[] = {1000, (int64_t{1} << 20) + 7};

std::vector<int64_t> CheckSendBytes(int me, int n, int64_t base) { return SendBytes(me, n, base + me, 3, n - 1); }

uint8_t Tag(int sender, int receiver, int n) { return static_cast<uint8_t>((sender * n + receiver) % 251); }

std::vector<uint8_t> TaggedSend(int me, int n, int64_t base) {
  const std::vector<int64_t> send_bytes = CheckSendBytes(me, n, base);
  std::vector<uint8_t> send;
  for (int p = 0; p < n; ++p) send.insert(send.end(), send_bytes[p], Tag(me, p, n));
  return send;
}

// "" when rank `me` received from every rank p, in rank order, recv_bytes[p] bytes tagged
// Tag(p, me); else its first wrong byte.
std::string FirstWrongByte(const std::vector<uint8_t>& recv, const std::vector<int64_t>& recv_bytes, int me, int n) {
  int64_t off = 0;
  for (int p = 0; p < n; ++p) {
    const uint8_t expected = Tag(p, me, n);
    for (int64_t i = 0; i < recv_bytes[p]; ++i, ++off) {
      if (recv[off] != expected)
        return "byte " + std::to_string(i) + " of " + std::to_string(recv_bytes[p]) + " from rank " +
               std::to_string(p) + " is " + std::to_string(recv[off]) + ", expected " + std::to_string(expected);
    }
  }
  return "";
}

// A wrong exchange fails the run before anything is timed: one uneven pattern, every byte
// tagged with its sender and destination, checked on every rank. Collective: every rank
// calls it, and all agree on the outcome.
void CheckMpi(Harness& h) {
  kernels::MpiAllToAll* mpi = kernels::MpiAllToAll::Available(nullptr) ? SharedMpi() : nullptr;
  if (!mpi || mpi->num_ranks() < 2) return;  // nothing to check; Run says why it skips
  const int me = mpi->rank(), n = mpi->num_ranks();
  for (const int64_t base : kCheckBases) {
    const std::vector<int64_t> send_bytes = CheckSendBytes(me, n, base);
    const std::vector<uint8_t> send = TaggedSend(me, n, base);
    const std::vector<int64_t> recv_bytes = mpi->ExchangeCounts(send_bytes);
    int64_t total = 0;
    for (int64_t b : recv_bytes) total += b;
    std::vector<uint8_t> recv(total, 0xff);
    mpi->AllToAllV(send.data(), send_bytes.data(), recv.data(), recv_bytes.data());
    h.CorruptForTest("a2a", recv.data(), recv.size());
    const std::string mine = FirstWrongByte(recv, recv_bytes, me, n);
    // The lowest rank that saw a wrong byte (MaxOverRanks of minus the rank), so that rank 0,
    // which reports, has the details when it is among them.
    const int first_bad = -static_cast<int>(mpi->MaxOverRanks(mine.empty() ? -n : -me));
    if (first_bad < n) {
      h.Check(false, "a2a", "MPI_Alltoallv delivered wrong bytes to rank " + std::to_string(first_bad) +
                                (first_bad == me ? ": " + mine : ""));
      return;  // one failure is enough; every rank leaves here together
    }
  }
}

// The same tagged exchanges through NCCL between the local GPUs (one process drives them
// all, so every GPU's result is at hand); the first GPU with a wrong byte is reported.
void CheckNccl(Harness& h) {
#ifdef EPSIM_WITH_CUDA
  std::string why;
  const int n = kernels::cuda::DeviceCount(&why);
  if (n < 2 || !kernels::NcclAllToAll::Available(&why)) return;  // Run says why it skips
  kernels::NcclAllToAll nccl(n);
  std::vector<void*> streams(n);
  for (int d = 0; d < n; ++d) {
    kernels::cuda::SetDevice(d);
    streams[d] = kernels::cuda::StreamCreate();
  }
  std::string wrong;
  for (const int64_t base : kCheckBases) {
    std::vector<int64_t> send_bytes(n * n), recv_bytes(n * n);
    for (int d = 0; d < n; ++d) {
      const std::vector<int64_t> s = CheckSendBytes(d, n, base);
      for (int p = 0; p < n; ++p) send_bytes[d * n + p] = s[p];
    }
    for (int d = 0; d < n; ++d)
      for (int p = 0; p < n; ++p) recv_bytes[d * n + p] = send_bytes[p * n + d];
    std::vector<void*> send(n), recv(n);
    std::vector<int64_t> recv_total(n, 0);
    for (int d = 0; d < n; ++d) {
      kernels::cuda::SetDevice(d);
      const std::vector<uint8_t> tagged = TaggedSend(d, n, base);
      for (int p = 0; p < n; ++p) recv_total[d] += recv_bytes[d * n + p];
      send[d] = kernels::cuda::Malloc(tagged.size());
      recv[d] = kernels::cuda::Malloc(recv_total[d]);
      kernels::cuda::CopyToDevice(send[d], tagged.data(), tagged.size());  // both synchronous
      kernels::cuda::Memset(recv[d], 0xff, recv_total[d]);
    }
    nccl.AllToAllV(send.data(), send_bytes.data(), recv.data(), recv_bytes.data(), streams.data());
    for (int d = 0; d < n; ++d) {
      kernels::cuda::SetDevice(d);
      kernels::cuda::StreamSynchronize(streams[d]);
      std::vector<uint8_t> got(recv_total[d]);
      kernels::cuda::CopyToHost(got.data(), recv[d], got.size());
      h.CorruptForTest("a2a", got.data(), got.size());
      const std::vector<int64_t> from(recv_bytes.begin() + d * n, recv_bytes.begin() + (d + 1) * n);
      const std::string mine = FirstWrongByte(got, from, d, n);
      if (wrong.empty() && !mine.empty()) wrong = "GPU " + std::to_string(d) + ": " + mine;
      kernels::cuda::Free(send[d]);
      kernels::cuda::Free(recv[d]);
    }
    if (!wrong.empty()) break;
  }
  for (int d = 0; d < n; ++d) {
    kernels::cuda::SetDevice(d);
    kernels::cuda::StreamDestroy(streams[d]);
  }
  kernels::cuda::SetDevice(0);
  if (!wrong.empty()) h.Check(false, "a2a", "NCCL delivered wrong bytes to " + wrong);
#else
  (void)h;
#endif
}

void RunMpi(Harness& h, const std::vector<int64_t>& sizes, const std::vector<double>& skews) {
  std::string why;
  if (!kernels::MpiAllToAll::Available(&why)) return h.Skip("a2a", why);
  kernels::MpiAllToAll* mpi = SharedMpi();
  if (!mpi || mpi->num_ranks() < 2)
    return h.Skip("a2a", "needs 2+ ranks: run under mpirun -np 2 (or more) to measure MPI_Alltoallv");
  const int me = mpi->rank(), n = mpi->num_ranks();
  const std::vector<Exchange> exchanges = Exchanges(sizes, skews, PeerCounts(n));
  int done = 0;
  for (const auto& [peers, base, skew] : exchanges) {
    const std::vector<int64_t> send_bytes = SendBytes(me, n, base, skew, peers);
    const std::vector<int64_t> recv_bytes = mpi->ExchangeCounts(send_bytes);
    int64_t send_total = 0, recv_total = 0;
    for (int p = 0; p < n; ++p) {
      send_total += send_bytes[p];
      recv_total += recv_bytes[p];
    }
    std::vector<uint8_t> send(send_total, static_cast<uint8_t>(me)), recv(recv_total);
    const int repeats = base >= (int64_t{4} << 20) ? 5 : base >= (int64_t{256} << 10) ? 10 : 30;
    std::vector<double> samples;
    for (int i = 0; i < h.warmup + repeats; ++i) {
      mpi->Barrier();
      const auto t0 = std::chrono::steady_clock::now();
      mpi->AllToAllV(send.data(), send_bytes.data(), recv.data(), recv_bytes.data());
      const double mine = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      const double slowest = mpi->MaxOverRanks(mine);
      if (i >= h.warmup) samples.push_back(slowest);
    }
    AddCase(h, n, base, skew, peers, std::move(samples));
    if (me == 0) h.Progress("a2a", ++done, static_cast<int>(exchanges.size()));
  }
  h.a2a().backend = "mpi";
  h.a2a().num_ranks = n;
}

void RunNccl(Harness& h, const std::vector<int64_t>& sizes, const std::vector<double>& skews) {
#ifdef EPSIM_WITH_CUDA
  std::string why;
  const int n = kernels::cuda::DeviceCount(&why);
  if (n < 2) return h.Skip("a2a", "needs 2+ GPUs in this process, found " + std::to_string(n));
  if (!kernels::NcclAllToAll::Available(&why)) return h.Skip("a2a", why);
  kernels::NcclAllToAll nccl(n);
  std::vector<void*> streams(n);
  for (int d = 0; d < n; ++d) {
    kernels::cuda::SetDevice(d);
    streams[d] = kernels::cuda::StreamCreate();
  }
  const std::vector<Exchange> exchanges = Exchanges(sizes, skews, PeerCounts(n));
  int done = 0;
  for (const auto& [peers, base, skew] : exchanges) {
    std::vector<int64_t> send_bytes(n * n), recv_bytes(n * n);
    for (int d = 0; d < n; ++d) {
      const std::vector<int64_t> s = SendBytes(d, n, base, skew, peers);
      for (int p = 0; p < n; ++p) send_bytes[d * n + p] = s[p];
    }
    for (int d = 0; d < n; ++d)
      for (int p = 0; p < n; ++p) recv_bytes[d * n + p] = send_bytes[p * n + d];
    std::vector<void*> send(n), recv(n);
    for (int d = 0; d < n; ++d) {
      kernels::cuda::SetDevice(d);
      int64_t st = 0, rt = 0;
      for (int p = 0; p < n; ++p) { st += send_bytes[d * n + p]; rt += recv_bytes[d * n + p]; }
      send[d] = kernels::cuda::Malloc(st);
      recv[d] = kernels::cuda::Malloc(rt);
      kernels::cuda::Memset(send[d], d, st);
    }
    const int repeats = base >= (int64_t{64} << 20) ? 5 : 20;
    // Events on every GPU's stream, the GPUs started together (TimeAcrossStreams); the
    // first call also sets up NCCL's connections to its peers, untimed.
    std::vector<double> samples = kernels::cuda::TimeAcrossStreams(
        [&](int) { nccl.AllToAllV(send.data(), send_bytes.data(), recv.data(), recv_bytes.data(), streams.data()); },
        std::max(1, h.warmup), repeats, streams);
    for (int d = 0; d < n; ++d) { kernels::cuda::SetDevice(d); kernels::cuda::Free(send[d]); kernels::cuda::Free(recv[d]); }
    AddCase(h, n, base, skew, peers, std::move(samples));
    h.Progress("a2a", ++done, static_cast<int>(exchanges.size()));
  }
  for (int d = 0; d < n; ++d) { kernels::cuda::SetDevice(d); kernels::cuda::StreamDestroy(streams[d]); }
  kernels::cuda::SetDevice(0);
  h.a2a().backend = "nccl";
  h.a2a().num_ranks = n;
#else
  (void)sizes;
  (void)skews;
  h.Skip("a2a", "built without CUDA");
#endif
}

void Run(Harness& h) {
  const bool gpu = h.backend == Backend::kCuda;
  constexpr int64_t kKiB = 1024, kMiB = 1024 * 1024;
  const std::vector<int64_t> sizes = h.ByLevel<std::vector<int64_t>>(
      {kKiB, 64 * kKiB},
      gpu ? std::vector<int64_t>{kKiB, 64 * kKiB, kMiB, 16 * kMiB, 256 * kMiB} : std::vector<int64_t>{kKiB, 16 * kKiB, 256 * kKiB, 4 * kMiB, 16 * kMiB},
      gpu ? std::vector<int64_t>{kKiB, 16 * kKiB, 256 * kKiB, 4 * kMiB, 64 * kMiB, 256 * kMiB, 1024 * kMiB}
          : std::vector<int64_t>{kKiB, 16 * kKiB, 256 * kKiB, 4 * kMiB, 64 * kMiB, 256 * kMiB});
  const std::vector<double> skews = h.ByLevel<std::vector<double>>({1, 4}, {1, 4}, {1, 2, 4, 8});
  if (gpu) RunNccl(h, sizes, skews); else RunMpi(h, sizes, skews);
}

void Check(Harness& h) {
  if (h.backend == Backend::kCpu) CheckMpi(h); else CheckNccl(h);
}

}  // namespace

EPSIM_REGISTER_OP(a2a, "a2a", "all-to-all with uneven splits (MPI_Alltoallv on CPU, NCCL send/recv on GPU)", 0, Check,
                  Run);

}  // namespace calib
}  // namespace epsim
