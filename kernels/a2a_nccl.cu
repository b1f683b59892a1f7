// epsim kernels: NCCL all-to-all with uneven splits over the local GPUs (see all_to_all.h).
// libnccl.so.2 is dlopen'ed, so binaries run where NCCL is missing and say so.
#include <cuda_runtime.h>
#include <nccl.h>

#include <mutex>
#include <string>
#include <vector>

#include "kernels/all_to_all.h"
#include "kernels/cuda_check.h"
#include "kernels/shared_library.h"

namespace epsim {
namespace kernels {
namespace {

struct NcclApi {
  SharedLibrary lib;
  decltype(&ncclGetVersion) get_version = nullptr;
  decltype(&ncclCommInitAll) comm_init_all = nullptr;
  decltype(&ncclCommDestroy) comm_destroy = nullptr;
  decltype(&ncclGroupStart) group_start = nullptr;
  decltype(&ncclGroupEnd) group_end = nullptr;
  decltype(&ncclSend) send = nullptr;
  decltype(&ncclRecv) recv = nullptr;
  decltype(&ncclGetErrorString) error_string = nullptr;
};

const NcclApi& Nccl() {
  static NcclApi api = [] {
    NcclApi a;
    a.lib = SharedLibrary::OpenFirst({"libnccl.so.2"}, "install NCCL or add its folder to LD_LIBRARY_PATH");
    a.lib.Load(a.get_version, "ncclGetVersion");
    a.lib.Load(a.comm_init_all, "ncclCommInitAll");
    a.lib.Load(a.comm_destroy, "ncclCommDestroy");
    a.lib.Load(a.group_start, "ncclGroupStart");
    a.lib.Load(a.group_end, "ncclGroupEnd");
    a.lib.Load(a.send, "ncclSend");
    a.lib.Load(a.recv, "ncclRecv");
    a.lib.Load(a.error_string, "ncclGetErrorString");
    return a;
  }();
  return api;
}

const NcclApi& NeedNccl() {
  const NcclApi& api = Nccl();
  if (!api.lib.error.empty()) throw KernelError("a2a (nccl): " + api.lib.error);
  return api;
}

}  // namespace

std::string NcclErrorString(int result) {
  const NcclApi& api = Nccl();
  if (api.lib.error.empty()) return api.error_string(static_cast<ncclResult_t>(result));
  return "ncclResult " + std::to_string(result);
}

bool NcclAllToAll::Available(std::string* why) {
  const NcclApi& api = Nccl();
  if (!api.lib.error.empty() && why) *why = api.lib.error;
  return api.lib.error.empty();
}

std::string NcclAllToAll::Version() {
  const NcclApi& api = Nccl();
  if (!api.lib.error.empty()) return "";
  int v = 0;
  api.get_version(&v);
  // NCCL >= 2.9 encodes major*10000 + minor*100 + patch.
  return std::to_string(v / 10000) + "." + std::to_string((v / 100) % 100) + "." + std::to_string(v % 100);
}

NcclAllToAll::NcclAllToAll(int num_devices) : num_devices_(num_devices) {
  const NcclApi& api = NeedNccl();
  std::vector<ncclComm_t> comms(num_devices);
  std::vector<int> devices(num_devices);
  for (int d = 0; d < num_devices; ++d) devices[d] = d;
  NCCL_CHECK(api.comm_init_all(comms.data(), num_devices, devices.data()));
  comms_.assign(comms.begin(), comms.end());
}

NcclAllToAll::~NcclAllToAll() {
  const NcclApi& api = Nccl();
  if (!api.lib.error.empty()) return;
  for (void* c : comms_) api.comm_destroy(static_cast<ncclComm_t>(c));
}

void NcclAllToAll::AllToAllV(void* const* send, const int64_t* send_bytes, void* const* recv,
                             const int64_t* recv_bytes, void* const* streams) {
  const NcclApi& api = NeedNccl();
  const int n = num_devices_;
  NCCL_CHECK(api.group_start());
  for (int d = 0; d < n; ++d) {
    CUDA_CHECK(cudaSetDevice(d));
    int64_t send_off = 0, recv_off = 0;
    for (int p = 0; p < n; ++p) {
      const int64_t sb = send_bytes[d * n + p], rb = recv_bytes[d * n + p];
      if (sb > 0)
        NCCL_CHECK(api.send(static_cast<const char*>(send[d]) + send_off, sb, ncclInt8, p,
                            static_cast<ncclComm_t>(comms_[d]), static_cast<cudaStream_t>(streams[d])));
      if (rb > 0)
        NCCL_CHECK(api.recv(static_cast<char*>(recv[d]) + recv_off, rb, ncclInt8, p,
                            static_cast<ncclComm_t>(comms_[d]), static_cast<cudaStream_t>(streams[d])));
      send_off += sb;
      recv_off += rb;
    }
  }
  NCCL_CHECK(api.group_end());
}

}  // namespace kernels
}  // namespace epsim
