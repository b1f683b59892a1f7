// epsim kernels: all-to-all with uneven splits, the dispatch and combine exchanges.
//
//   MpiAllToAll   MPI_Alltoallv between processes (CPU backend; OpenMPI from Debian). Built
//                 when mpi.h was found (a2a_mpi.cc), otherwise a stub that says so.
//   NcclAllToAll  NCCL grouped ncclSend/ncclRecv over all local GPUs in one process, as
//                 torch.distributed.all_to_all_single does. NCCL is loaded at run time with
//                 dlopen("libnccl.so.2"); without it, Available() says why and callers skip.
// Buffers are contiguous in peer order: the bytes for peer p start at the sum of the counts
// of peers 0..p-1.
#ifndef EPSIM_KERNELS_ALL_TO_ALL_H_
#define EPSIM_KERNELS_ALL_TO_ALL_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace epsim {
namespace kernels {

class MpiAllToAll {
 public:
  // True when built with MPI; otherwise false with *why set.
  static bool Available(std::string* why);
  // True when this process was started by mpirun (OMPI_COMM_WORLD_SIZE or PMI_SIZE set).
  static bool LaunchedByMpirun();
  // Initializes MPI (once per process; MPI_Finalize runs at exit). Throws KernelError when
  // built without MPI.
  MpiAllToAll();

  int rank() const { return rank_; }
  int num_ranks() const { return num_ranks_; }
  // Exchanges send_bytes[P] so that each rank learns recv_bytes[P] (MPI_Alltoall).
  std::vector<int64_t> ExchangeCounts(const std::vector<int64_t>& send_bytes);
  // MPI_Alltoallv of bytes; each count must be below 2^31.
  void AllToAllV(const void* send, const int64_t* send_bytes, void* recv,
                 const int64_t* recv_bytes);
  void Barrier();
  // The largest `value` over all ranks (the slowest rank sets an exchange's time).
  double MaxOverRanks(double value);
  // Library name and version, e.g. "Open MPI v4.1.4".
  std::string Version();

 private:
  int rank_ = 0, num_ranks_ = 1;
};

class NcclAllToAll {
 public:
  // Loads libnccl.so.2 (once); false with *why naming what was missing.
  static bool Available(std::string* why);
  // NCCL version as "2.27.7", or "" when not loaded.
  static std::string Version();
  // One communicator per local device 0..num_devices-1 (ncclCommInitAll).
  explicit NcclAllToAll(int num_devices);
  ~NcclAllToAll();
  NcclAllToAll(const NcclAllToAll&) = delete;
  NcclAllToAll& operator=(const NcclAllToAll&) = delete;

  int num_devices() const { return num_devices_; }
  // One grouped exchange: device d sends send_bytes[d*n+p] bytes to device p from send[d]
  // and receives recv_bytes[d*n+p] from p into recv[d], on streams[d] (cudaStream_t).
  // Returns after enqueueing; synchronize the streams to wait.
  void AllToAllV(void* const* send, const int64_t* send_bytes, void* const* recv,
                 const int64_t* recv_bytes, void* const* streams);

 private:
  int num_devices_ = 0;
  std::vector<void*> comms_;
};

}  // namespace kernels
}  // namespace epsim

#endif  // EPSIM_KERNELS_ALL_TO_ALL_H_
