// epsim kernels: MPI_Alltoallv with uneven splits (see all_to_all.h). Compiled only when the
// build found mpi.h; a2a_mpi_stub.cc stands in otherwise.
// The C API only: OpenMPI would otherwise pull in its deprecated C++ bindings.
#define OMPI_SKIP_MPICXX 1
#include <mpi.h>

#include <climits>
#include <cstdlib>
#include <string>
#include <vector>

#include "kernels/all_to_all.h"
#include "kernels/ep_ops.h"

#define MPI_CHECK(call)                                                                    \
  do {                                                                                     \
    const int mpi_rc_ = (call);                                                            \
    if (mpi_rc_ != MPI_SUCCESS) {                                                          \
      char mpi_msg_[MPI_MAX_ERROR_STRING];                                                 \
      int mpi_len_ = 0;                                                                    \
      MPI_Error_string(mpi_rc_, mpi_msg_, &mpi_len_);                                      \
      throw ::epsim::kernels::KernelError(std::string(__FILE__) + ":" +                    \
                                          std::to_string(__LINE__) + ": " #call ": " +     \
                                          std::string(mpi_msg_, mpi_len_));                \
    }                                                                                      \
  } while (0)

namespace epsim {
namespace kernels {
namespace {

void FinalizeAtExit() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

std::vector<int> ToIntCounts(const int64_t* bytes, int n, std::vector<int>* displs) {
  std::vector<int> counts(n);
  displs->assign(n, 0);
  int64_t offset = 0;
  for (int p = 0; p < n; ++p) {
    if (bytes[p] < 0 || bytes[p] > INT_MAX || offset > INT_MAX)
      throw KernelError("a2a (mpi): " + std::to_string(bytes[p]) + " bytes for rank " +
                        std::to_string(p) + " (or the offset before it) exceeds MPI's int counts");
    counts[p] = static_cast<int>(bytes[p]);
    (*displs)[p] = static_cast<int>(offset);
    offset += bytes[p];
  }
  return counts;
}

}  // namespace

bool MpiAllToAll::Available(std::string* /*why*/) { return true; }

bool MpiAllToAll::LaunchedByMpirun() {
  return std::getenv("OMPI_COMM_WORLD_SIZE") != nullptr || std::getenv("PMI_SIZE") != nullptr;
}

MpiAllToAll::MpiAllToAll() {
  int initialized = 0;
  MPI_CHECK(MPI_Initialized(&initialized));
  if (!initialized) {
    int provided = 0;
    MPI_CHECK(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided));
    std::atexit(FinalizeAtExit);
  }
  MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &rank_));
  MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &num_ranks_));
}

std::vector<int64_t> MpiAllToAll::ExchangeCounts(const std::vector<int64_t>& send_bytes) {
  if (static_cast<int>(send_bytes.size()) != num_ranks_)
    throw KernelError("a2a (mpi): " + std::to_string(send_bytes.size()) +
                      " send counts for " + std::to_string(num_ranks_) + " ranks");
  std::vector<int64_t> recv(num_ranks_);
  MPI_CHECK(MPI_Alltoall(send_bytes.data(), 1, MPI_INT64_T, recv.data(), 1, MPI_INT64_T,
                         MPI_COMM_WORLD));
  return recv;
}

void MpiAllToAll::AllToAllV(const void* send, const int64_t* send_bytes, void* recv,
                            const int64_t* recv_bytes) {
  std::vector<int> sdispl, rdispl;
  const std::vector<int> scount = ToIntCounts(send_bytes, num_ranks_, &sdispl);
  const std::vector<int> rcount = ToIntCounts(recv_bytes, num_ranks_, &rdispl);
  MPI_CHECK(MPI_Alltoallv(send, scount.data(), sdispl.data(), MPI_BYTE, recv, rcount.data(),
                          rdispl.data(), MPI_BYTE, MPI_COMM_WORLD));
}

void MpiAllToAll::Barrier() { MPI_CHECK(MPI_Barrier(MPI_COMM_WORLD)); }

double MpiAllToAll::MaxOverRanks(double value) {
  double out = value;
  MPI_CHECK(MPI_Allreduce(&value, &out, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD));
  return out;
}

std::string MpiAllToAll::Version() {
  char text[MPI_MAX_LIBRARY_VERSION_STRING];
  int len = 0;
  MPI_Get_library_version(text, &len);
  std::string s(text, len);
  const size_t comma = s.find(',');
  return comma == std::string::npos ? s : s.substr(0, comma);
}

}  // namespace kernels
}  // namespace epsim
