// epsim kernels: NCCL all-to-all with uneven splits over the local GPUs (see all_to_all.h).
// libnccl.so.2 is dlopen'ed, so binaries run where NCCL is missing and say so.
#include <cuda_runtime.h>
#include <dlfcn.h>
#include <nccl.h>

#include <mutex>
#include <string>
#include <vector>

#include "kernels/all_to_all.h"
#include "kernels/cuda_check.h"

namespace epsim {
namespace kernels {
namespace {

struct NcclApi {
  void* lib = nullptr;
  std::string error;
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
    a.lib = dlopen("libnccl.so.2", RTLD_NOW | RTLD_LOCAL);
    if (!a.lib) {
      a.error = "cannot dlopen libnccl.so.2: " + std::string(dlerror()) +
                " (install NCCL or add its folder to LD_LIBRARY_PATH)";
      return a;
    }
    auto sym = [&](const char* name) {
      void* p = dlsym(a.lib, name);
      if (!p && a.error.empty()) a.error = std::string("libnccl.so.2: missing symbol ") + name;
      return p;
    };
    a.get_version = reinterpret_cast<decltype(a.get_version)>(sym("ncclGetVersion"));
    a.comm_init_all = reinterpret_cast<decltype(a.comm_init_all)>(sym("ncclCommInitAll"));
    a.comm_destroy = reinterpret_cast<decltype(a.comm_destroy)>(sym("ncclCommDestroy"));
    a.group_start = reinterpret_cast<decltype(a.group_start)>(sym("ncclGroupStart"));
    a.group_end = reinterpret_cast<decltype(a.group_end)>(sym("ncclGroupEnd"));
    a.send = reinterpret_cast<decltype(a.send)>(sym("ncclSend"));
    a.recv = reinterpret_cast<decltype(a.recv)>(sym("ncclRecv"));
    a.error_string = reinterpret_cast<decltype(a.error_string)>(sym("ncclGetErrorString"));
    return a;
  }();
  return api;
}

const NcclApi& NeedNccl() {
  const NcclApi& api = Nccl();
  if (!api.error.empty()) throw KernelError("a2a (nccl): " + api.error);
  return api;
}

}  // namespace

std::string NcclErrorString(int result) {
  const NcclApi& api = Nccl();
  if (api.error.empty()) return api.error_string(static_cast<ncclResult_t>(result));
  return "ncclResult " + std::to_string(result);
}

bool NcclAllToAll::Available(std::string* why) {
  const NcclApi& api = Nccl();
  if (!api.error.empty() && why) *why = api.error;
  return api.error.empty();
}

std::string NcclAllToAll::Version() {
  const NcclApi& api = Nccl();
  if (!api.error.empty()) return "";
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
  if (!api.error.empty()) return;
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
