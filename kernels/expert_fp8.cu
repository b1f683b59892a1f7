// epsim kernels: the expert layer with fp8 (E4M3) GEMMs, through cuBLASLt (dlopen'ed like
// cuBLAS, so binaries start without it). Declared in ep_ops_cuda.h.
//
// fp8 tensor cores take both operands K-contiguous (cuBLASLt's "TN" format), so the weights
// are stored [expert][N][K], transposed against the bf16 layer's [expert][K][N]. Scales are
// per tensor and 1.0 (cuBLASLt's default when no scale pointer is set): the calibrator's
// inputs are small enough for E4M3 unscaled, and the time of a GEMM does not depend on its
// scale values. DeepSeek-V3's per-128 block scales (cuBLAS 12.9 and newer on sm_90) cost a
// little more per GEMM than this; the simulator counts their bytes (op_work.h).
// One cuBLASLt call per expert with rows: grouped fp8 GEMMs arrived in cuBLAS 13.4, after the
// 13.1 this project builds against.
#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_fp8.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

#include "kernels/cuda_check.h"
#include "kernels/ep_ops_cuda.h"
#include "kernels/shared_library.h"

namespace epsim {
namespace kernels {
namespace cuda {
namespace {

cudaStream_t AsStream(const ExecContext& ctx) { return static_cast<cudaStream_t>(ctx.cuda_stream); }

// cuBLASLt's scratch per call: what its fp8 kernels on Hopper ask for at most (32 MiB is the
// size Transformer Engine gives them).
constexpr size_t kLtWorkspaceBytes = size_t{32} << 20;

// ---- cuBLASLt, loaded at run time --------------------------------------------------------
struct CublasLtApi {
  SharedLibrary lib;
  decltype(&cublasLtCreate) create = nullptr;
  decltype(&cublasLtGetVersion) get_version = nullptr;
  decltype(&cublasLtMatmulDescCreate) desc_create = nullptr;
  decltype(&cublasLtMatmulDescSetAttribute) desc_set = nullptr;
  decltype(&cublasLtMatrixLayoutCreate) layout_create = nullptr;
  decltype(&cublasLtMatmulPreferenceCreate) pref_create = nullptr;
  decltype(&cublasLtMatmulPreferenceSetAttribute) pref_set = nullptr;
  decltype(&cublasLtMatmulPreferenceDestroy) pref_destroy = nullptr;
  decltype(&cublasLtMatmulAlgoGetHeuristic) heuristic = nullptr;
  decltype(&cublasLtMatmul) matmul = nullptr;
  cublasLtHandle_t handle = nullptr;  // one for the process: Lt handles hold no stream
};

const CublasLtApi& CublasLt() {
  static CublasLtApi api = [] {
    CublasLtApi a;
    a.lib = SharedLibrary::OpenFirst({"libcublasLt.so.13", "libcublasLt.so.12", "libcublasLt.so.11", "libcublasLt.so"},
                                     "add the CUDA lib64 folder to LD_LIBRARY_PATH");
    a.lib.Load(a.create, "cublasLtCreate");
    a.lib.Load(a.get_version, "cublasLtGetVersion");
    a.lib.Load(a.desc_create, "cublasLtMatmulDescCreate");
    a.lib.Load(a.desc_set, "cublasLtMatmulDescSetAttribute");
    a.lib.Load(a.layout_create, "cublasLtMatrixLayoutCreate");
    a.lib.Load(a.pref_create, "cublasLtMatmulPreferenceCreate");
    a.lib.Load(a.pref_set, "cublasLtMatmulPreferenceSetAttribute");
    a.lib.Load(a.pref_destroy, "cublasLtMatmulPreferenceDestroy");
    a.lib.Load(a.heuristic, "cublasLtMatmulAlgoGetHeuristic");
    a.lib.Load(a.matmul, "cublasLtMatmul");
    if (!a.lib.error.empty()) return a;
    // fp8 matmuls arrived with cuBLASLt 11.11 (CUDA 11.8).
    if (a.get_version() < 111100) {
      a.lib.error = a.lib.file + " is version " + std::to_string(a.get_version()) +
                    ": fp8 GEMMs need 11.11 (CUDA 11.8) or newer";
      return a;
    }
    if (a.create(&a.handle) != CUBLAS_STATUS_SUCCESS) a.lib.error = "cublasLtCreate failed";
    return a;
  }();
  return api;
}

// What one fp8 GEMM shape needs, made once: row-major D[rows, n] = X[rows, k] . W[n, k]^T,
// in cuBLASLt's column-major terms D^T (n x rows) = W (k x n)^T . X^T (k x rows).
struct Fp8Plan {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, d = nullptr;
  cublasLtMatmulAlgo_t algo;
};

// Plans by (n, rows, k), kept for the process (the calibrator times the same shapes many
// times; a heuristic query per call would be host work in the timed region).
const Fp8Plan& PlanFor(int64_t n, int64_t rows, int64_t k) {
  static std::mutex mu;
  static std::map<std::tuple<int64_t, int64_t, int64_t>, Fp8Plan> plans;
  std::lock_guard<std::mutex> lock(mu);
  const auto key = std::make_tuple(n, rows, k);
  auto it = plans.find(key);
  if (it != plans.end()) return it->second;
  const CublasLtApi& api = CublasLt();
  if (!api.lib.error.empty()) throw KernelError("cuBLASLt: " + api.lib.error);
  Fp8Plan p;
  CUBLAS_CHECK(api.desc_create(&p.desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  const cublasOperation_t transpose = CUBLAS_OP_T, keep = CUBLAS_OP_N;
  CUBLAS_CHECK(api.desc_set(p.desc, CUBLASLT_MATMUL_DESC_TRANSA, &transpose, sizeof(transpose)));
  CUBLAS_CHECK(api.desc_set(p.desc, CUBLASLT_MATMUL_DESC_TRANSB, &keep, sizeof(keep)));
  CUBLAS_CHECK(api.layout_create(&p.a, CUDA_R_8F_E4M3, k, n, k));
  CUBLAS_CHECK(api.layout_create(&p.b, CUDA_R_8F_E4M3, k, rows, k));
  CUBLAS_CHECK(api.layout_create(&p.d, CUDA_R_16BF, n, rows, n));
  cublasLtMatmulPreference_t pref = nullptr;
  CUBLAS_CHECK(api.pref_create(&pref));
  const size_t workspace = kLtWorkspaceBytes;
  CUBLAS_CHECK(api.pref_set(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace, sizeof(workspace)));
  cublasLtMatmulHeuristicResult_t result = {};
  int found = 0;
  const cublasStatus_t rc = api.heuristic(api.handle, p.desc, p.a, p.b, p.d, p.d, pref, 1, &result, &found);
  api.pref_destroy(pref);
  if (rc != CUBLAS_STATUS_SUCCESS || found == 0) {
    throw KernelError("cuBLASLt has no fp8 GEMM for n " + std::to_string(n) + ", rows " + std::to_string(rows) +
                      ", k " + std::to_string(k) + " on this GPU (cublasStatus " + std::to_string(static_cast<int>(rc)) +
                      "; fp8 needs compute capability 8.9 or newer, and n and k multiples of 16)");
  }
  p.algo = result.algo;
  return plans.emplace(key, p).first->second;
}

void Fp8Gemm(int64_t n, int64_t rows, int64_t k, const uint8_t* w, const uint8_t* x, __nv_bfloat16* d,
             void* lt_workspace, const ExecContext& ctx) {
  const CublasLtApi& api = CublasLt();
  const Fp8Plan& p = PlanFor(n, rows, k);
  const float one = 1.0f, zero = 0.0f;
  CUBLAS_CHECK(api.matmul(api.handle, p.desc, &one, w, p.a, x, p.b, &zero, d, p.d, d, p.d, &p.algo, lt_workspace,
                          kLtWorkspaceBytes, AsStream(ctx)));
}

__global__ void Bf16ToFp8Kernel(const __nv_bfloat16* in, int64_t n, __nv_fp8_e4m3* out) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    out[i] = __nv_fp8_e4m3(__bfloat162float(in[i]));  // round to nearest, saturating at 448
}

// SwiGLU of h[r] = [gate | up] (bf16, 2F wide), written as fp8 for the down GEMM.
__global__ void SwigluFp8Kernel(const __nv_bfloat16* h, int64_t rows, int64_t ffn, __nv_fp8_e4m3* a) {
  const int64_t n = rows * ffn;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = i / ffn, c = i % ffn;
    const float g = __bfloat162float(h[r * 2 * ffn + c]);
    const float u = __bfloat162float(h[r * 2 * ffn + ffn + c]);
    a[i] = __nv_fp8_e4m3(g / (1.0f + expf(-g)) * u);
  }
}

unsigned GridFor(int64_t n) { return static_cast<unsigned>(std::max<int64_t>(1, std::min<int64_t>((n + 255) / 256, 65535))); }

size_t Align256(size_t bytes) { return (bytes + 255) / 256 * 256; }

}  // namespace

bool Fp8GemmAvailable(std::string* why) {
  const CublasLtApi& api = CublasLt();
  if (!api.lib.error.empty()) {
    if (why) *why = "cuBLASLt: " + api.lib.error;
    return false;
  }
  int device = 0, major = 0, minor = 0;
  CUDA_CHECK(cudaGetDevice(&device));
  CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
  CUDA_CHECK(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device));
  if (major * 10 + minor < 89) {
    if (why) *why = "compute capability " + std::to_string(major) + "." + std::to_string(minor) + " has no fp8 tensor cores (8.9 or newer)";
    return false;
  }
  try {
    PlanFor(128, 128, 128);
  } catch (const KernelError& e) {
    if (why) *why = e.what();
    return false;
  }
  return true;
}

std::string CublasLtVersion() {
  const CublasLtApi& api = CublasLt();
  if (!api.lib.handle || !api.get_version) return "unavailable";
  const size_t v = api.get_version();
  return std::to_string(v / 10000) + "." + std::to_string(v / 100 % 100) + "." + std::to_string(v % 100);
}

void Bf16ToFp8(const Bf16* in, int64_t n, Fp8* out, const ExecContext& ctx) {
  if (n <= 0) return;
  Bf16ToFp8Kernel<<<GridFor(n), 256, 0, AsStream(ctx)>>>(reinterpret_cast<const __nv_bfloat16*>(in), n,
                                                          reinterpret_cast<__nv_fp8_e4m3*>(out));
  CUDA_CHECK(cudaGetLastError());
}

size_t ExpertFfnFp8WorkspaceBytes(int64_t rows, int64_t ffn) {
  const size_t r = static_cast<size_t>(std::max<int64_t>(rows, 0)), f = static_cast<size_t>(std::max<int64_t>(ffn, 0));
  return Align256(r * 2 * f * sizeof(uint16_t)) + Align256(r * f) + kLtWorkspaceBytes;
}

void ExpertFfnFp8(const Fp8* input, const int32_t* num_rows, const int32_t* row_begin, int num_experts, int64_t hidden,
                  int64_t ffn, const Fp8* w_gate_up_t, const Fp8* w_down_t, Bf16* output, void* workspace,
                  const ExecContext& ctx) {
  int64_t rows = 0;
  for (int e = 0; e < num_experts; ++e)
    if (num_rows[e] > 0) rows = std::max<int64_t>(rows, static_cast<int64_t>(row_begin[e]) + num_rows[e]);
  if (rows == 0) return;
  char* ws = static_cast<char*>(workspace);
  auto* h = reinterpret_cast<__nv_bfloat16*>(ws);                                  // [R, 2F]
  auto* a = reinterpret_cast<uint8_t*>(ws + Align256(rows * 2 * ffn * sizeof(uint16_t)));  // [R, F] fp8
  void* lt = ws + Align256(rows * 2 * ffn * sizeof(uint16_t)) + Align256(rows * ffn);
  auto* out = reinterpret_cast<__nv_bfloat16*>(output);
  for (int e = 0; e < num_experts; ++e) {
    if (num_rows[e] <= 0) continue;
    Fp8Gemm(2 * ffn, num_rows[e], hidden, w_gate_up_t + static_cast<int64_t>(e) * 2 * ffn * hidden,
            input + static_cast<int64_t>(row_begin[e]) * hidden, h + static_cast<int64_t>(row_begin[e]) * 2 * ffn, lt,
            ctx);
  }
  SwigluFp8Kernel<<<GridFor(rows * ffn), 256, 0, AsStream(ctx)>>>(h, rows, ffn, reinterpret_cast<__nv_fp8_e4m3*>(a));
  CUDA_CHECK(cudaGetLastError());
  for (int e = 0; e < num_experts; ++e) {
    if (num_rows[e] <= 0) continue;
    Fp8Gemm(hidden, num_rows[e], ffn, w_down_t + static_cast<int64_t>(e) * hidden * ffn,
            a + static_cast<int64_t>(row_begin[e]) * ffn, out + static_cast<int64_t>(row_begin[e]) * hidden, lt, ctx);
  }
}

}  // namespace cuda
}  // namespace kernels
}  // namespace epsim
