// epsim kernel tests: MPI_Alltoallv with uneven splits, run under mpirun by a2a_mpi_test.sh.
// Every rank sends (rank + 1) * (peer + 1) * 1000 + peer bytes of value rank*16+peer to each
// peer (zero to itself when rank is 0, to cover empty splits) and checks what it receives.
//   mpirun -np 2 --oversubscribe bazel-bin/tests/kernels/a2a_mpi_check
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "kernels/all_to_all.h"
#include "kernels/ep_ops.h"

namespace {

int64_t Bytes(int from, int to) { return from == 0 && to == 0 ? 0 : (from + 1) * (to + 1) * 1000 + to; }

}  // namespace

int main() {
  using epsim::kernels::MpiAllToAll;
  std::string why;
  if (!MpiAllToAll::Available(&why)) {
    std::printf("SKIP: %s\n", why.c_str());
    return 0;
  }
  try {
    MpiAllToAll mpi;
    const int me = mpi.rank(), n = mpi.num_ranks();
    std::vector<int64_t> send_bytes(n);
    std::vector<uint8_t> send;
    for (int p = 0; p < n; ++p) {
      send_bytes[p] = Bytes(me, p);
      send.insert(send.end(), send_bytes[p], static_cast<uint8_t>(me * 16 + p));
    }
    const std::vector<int64_t> recv_bytes = mpi.ExchangeCounts(send_bytes);
    int64_t total = 0;
    for (int p = 0; p < n; ++p) {
      if (recv_bytes[p] != Bytes(p, me)) {
        std::fprintf(stderr, "rank %d: count from %d is %lld, want %lld\n", me, p,
                     static_cast<long long>(recv_bytes[p]), static_cast<long long>(Bytes(p, me)));
        return 1;
      }
      total += recv_bytes[p];
    }
    std::vector<uint8_t> recv(total + 1, 0xff);
    mpi.AllToAllV(send.data(), send_bytes.data(), recv.data(), recv_bytes.data());
    int64_t off = 0;
    for (int p = 0; p < n; ++p) {
      for (int64_t i = 0; i < recv_bytes[p]; ++i)
        if (recv[off + i] != static_cast<uint8_t>(p * 16 + me)) {
          std::fprintf(stderr, "rank %d: byte %lld from %d is %d\n", me,
                       static_cast<long long>(i), p, recv[off + i]);
          return 1;
        }
      off += recv_bytes[p];
    }
    const double slowest = mpi.MaxOverRanks(static_cast<double>(me));
    if (slowest != n - 1) return 1;
    std::printf("rank %d of %d: received %lld bytes from %d ranks: OK (%s)\n", me, n,
                static_cast<long long>(total), n, mpi.Version().c_str());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "a2a_mpi_check: %s\n", e.what());
    return 1;
  }
}
