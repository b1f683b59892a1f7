// epsim kernels: CUDA implementation of the EP layer (see ep_ops_cuda.h and ep_ops.h).
// Built for sm_80 and sm_90 with PTX for newer cards; cuBLAS is dlopen'ed so that a binary
// linked with the static CUDA runtime starts anywhere and reports what it could not find.
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <dlfcn.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <string>
#include <vector>

#include "kernels/cuda_check.h"
#include "kernels/ep_ops_cuda.h"
#include "kernels/select.h"

namespace epsim {
namespace kernels {
namespace cuda {
namespace {

constexpr int kWarp = 32;
constexpr int kMaxTopK = 32;

cudaStream_t AsStream(const ExecContext& ctx) { return static_cast<cudaStream_t>(ctx.cuda_stream); }

// ---- cuBLAS, loaded at run time ----------------------------------------------------------
struct CublasApi {
  void* lib = nullptr;
  std::string error;
  std::string file;
  decltype(&cublasCreate_v2) create = nullptr;
  decltype(&cublasDestroy_v2) destroy = nullptr;
  decltype(&cublasSetStream_v2) set_stream = nullptr;
  // cublasGemmEx is overloaded in C++ (64-bit sizes); the C symbol takes ints.
  cublasStatus_t (*gemm_ex)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int,
                            const void*, const void*, cudaDataType, int, const void*,
                            cudaDataType, int, const void*, void*, cudaDataType, int,
                            cublasComputeType_t, cublasGemmAlgo_t) = nullptr;
  decltype(&cublasGetProperty) get_property = nullptr;
  // cuBLAS 12.5 and newer: one launch for every expert's GEMM (null before: one per expert).
  decltype(&cublasGemmGroupedBatchedEx) grouped_gemm = nullptr;
};

const CublasApi& Cublas() {
  static CublasApi api = [] {
    CublasApi a;
    for (const char* name : {"libcublas.so.13", "libcublas.so.12", "libcublas.so"}) {
      a.lib = dlopen(name, RTLD_NOW | RTLD_LOCAL);
      if (a.lib) { a.file = name; break; }
    }
    if (!a.lib) {
      a.error = "cannot dlopen libcublas.so.13 (nor .12): " + std::string(dlerror()) +
                " (add the CUDA lib64 folder to LD_LIBRARY_PATH)";
      return a;
    }
    auto sym = [&](const char* name) {
      void* p = dlsym(a.lib, name);
      if (!p && a.error.empty()) a.error = a.file + ": missing symbol " + name;
      return p;
    };
    a.create = reinterpret_cast<decltype(a.create)>(sym("cublasCreate_v2"));
    a.destroy = reinterpret_cast<decltype(a.destroy)>(sym("cublasDestroy_v2"));
    a.set_stream = reinterpret_cast<decltype(a.set_stream)>(sym("cublasSetStream_v2"));
    a.gemm_ex = reinterpret_cast<decltype(a.gemm_ex)>(sym("cublasGemmEx"));
    a.get_property = reinterpret_cast<decltype(a.get_property)>(sym("cublasGetProperty"));
    a.grouped_gemm = reinterpret_cast<decltype(a.grouped_gemm)>(dlsym(a.lib, "cublasGemmGroupedBatchedEx"));
    return a;
  }();
  return api;
}

const CublasApi& NeedCublas() {
  const CublasApi& api = Cublas();
  if (!api.error.empty()) throw KernelError("cuBLAS: " + api.error);
  return api;
}

cublasHandle_t Handle(const ExecContext& ctx) {
  if (!ctx.cublas) throw KernelError("cuda: ExecContext::cublas is null (use CublasCreate)");
  return static_cast<cublasHandle_t>(ctx.cublas);
}

// Row-major C[m,n] = A[m,k] . op(B): B is [k,n] (b_transposed false) or [n,k] (true).
void GemmRowMajor(const ExecContext& ctx, int64_t m, int64_t n, int64_t k, const void* a,
                  const void* b, bool b_transposed, void* c, cudaDataType c_type) {
  const CublasApi& api = NeedCublas();
  const float alpha = 1.0f, beta = 0.0f;
  // Column-major view: C^T[n,m] = op(B)^T[n,k] . A^T[k,m].
  CUBLAS_CHECK(api.gemm_ex(Handle(ctx), b_transposed ? CUBLAS_OP_T : CUBLAS_OP_N, CUBLAS_OP_N,
                           static_cast<int>(n), static_cast<int>(m), static_cast<int>(k), &alpha,
                           b, CUDA_R_16BF, static_cast<int>(b_transposed ? k : n), a,
                           CUDA_R_16BF, static_cast<int>(k), &beta, c, c_type,
                           static_cast<int>(n), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

// ---- warp and block helpers ---------------------------------------------------------------
__device__ inline float WarpMax(float v) {
  for (int o = kWarp / 2; o > 0; o /= 2) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
__device__ inline float WarpSum(float v) {
  for (int o = kWarp / 2; o > 0; o /= 2) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
// Best (value, index) over the warp: larger value, then smaller index; index -1 is empty.
__device__ inline void WarpArgMax(float* value, int* index) {
  for (int o = kWarp / 2; o > 0; o /= 2) {
    const float v = __shfl_xor_sync(0xffffffffu, *value, o);
    const int i = __shfl_xor_sync(0xffffffffu, *index, o);
    const bool better = i >= 0 && (*index < 0 || v > *value || (v == *value && i < *index));
    if (better) { *value = v; *index = i; }
  }
}

// Exclusive prefix count of `flag` over the block (blockDim.x multiple of 32, <= 1024);
// *total gets the block's count. Every thread of the block must call it.
__device__ int BlockScanFlag(bool flag, int* total) {
  __shared__ int warp_counts[32];
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  const unsigned ballot = __ballot_sync(0xffffffffu, flag);
  const int in_warp = __popc(ballot & ((1u << lane) - 1u));
  __syncthreads();
  if (lane == 0) warp_counts[warp] = __popc(ballot);
  __syncthreads();
  int before = 0, all = 0;
  for (int w = 0; w < static_cast<int>(blockDim.x) / kWarp; ++w) {
    if (w < warp) before += warp_counts[w];
    all += warp_counts[w];
  }
  *total = all;
  return before + in_warp;
}

__device__ inline uint32_t OrderedKey(float w) {
  const uint32_t u = __float_as_uint(w);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

// ---- route --------------------------------------------------------------------------------
// One warp per token; shared memory per warp: score[E], choice[E], group_score[G].
__global__ void SelectKernel(const float* logits, const float* bias, int64_t num_tokens,
                             int num_experts, int top_k, int num_groups, int topk_groups,
                             bool softmax, bool normalize, float scale, int32_t* out_expert,
                             float* out_weight) {
  extern __shared__ float smem[];
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  const int64_t t = static_cast<int64_t>(blockIdx.x) * (blockDim.x / kWarp) + warp;
  if (t >= num_tokens) return;  // the whole warp leaves together
  const int e_count = num_experts;
  float* score = smem + warp * (2 * e_count + num_groups);
  float* choice = score + e_count;
  float* group_score = choice + e_count;
  const float* l = logits + t * e_count;
  if (softmax) {
    float mx = -INFINITY;
    for (int e = lane; e < e_count; e += kWarp) mx = fmaxf(mx, l[e]);
    mx = WarpMax(mx);
    float sum = 0;
    for (int e = lane; e < e_count; e += kWarp) sum += score[e] = expf(l[e] - mx);
    sum = WarpSum(sum);
    for (int e = lane; e < e_count; e += kWarp) score[e] /= sum;
  } else {
    for (int e = lane; e < e_count; e += kWarp) score[e] = 1.0f / (1.0f + expf(-l[e]));
  }
  for (int e = lane; e < e_count; e += kWarp) choice[e] = score[e] + (bias ? bias[e] : 0.0f);
  __syncwarp();
  if (num_groups > 1 && topk_groups < num_groups) {
    const int size = e_count / num_groups;
    for (int g = lane; g < num_groups; g += kWarp) {
      const float* s = choice + g * size;
      float a = -INFINITY, b = -INFINITY;
      for (int i = 0; i < size; ++i) {
        if (s[i] > a) { b = a; a = s[i]; } else if (s[i] > b) { b = s[i]; }
      }
      group_score[g] = (softmax || size < 2) ? a : a + b;
    }
    __syncwarp();
    for (int pick = 0; pick < topk_groups; ++pick) {
      float v = -INFINITY;
      int best = -1;
      for (int g = lane; g < num_groups; g += kWarp)
        if (group_score[g] != INFINITY && (best < 0 || group_score[g] > v)) { v = group_score[g]; best = g; }
      WarpArgMax(&v, &best);
      __syncwarp();
      if (lane == 0) group_score[best] = INFINITY;  // marks a kept group
      __syncwarp();
    }
    for (int e = lane; e < e_count; e += kWarp)
      if (group_score[e / size] != INFINITY) choice[e] = -INFINITY;
    __syncwarp();
  }
  int chosen[kMaxTopK];
  float sum = 0;
  for (int j = 0; j < top_k; ++j) {
    float v = -INFINITY;
    int best = -1;
    for (int e = lane; e < e_count; e += kWarp)
      if (choice[e] != -INFINITY && (best < 0 || choice[e] > v)) { v = choice[e]; best = e; }
    WarpArgMax(&v, &best);
    chosen[j] = best;
    __syncwarp();
    if (lane == 0 && best >= 0) choice[best] = -INFINITY;
    __syncwarp();
    if (best >= 0) sum += score[best];
  }
  for (int j = lane; j < top_k; j += kWarp) {
    // chosen[] is identical in every lane; pick entry j without dynamic register indexing.
    int e = -1;
    for (int q = 0; q < top_k; ++q) if (q == j) e = chosen[q];
    float w = e >= 0 ? score[e] : 0.0f;
    if (normalize && sum > 0) w /= sum;
    out_expert[t * top_k + j] = e;
    out_weight[t * top_k + j] = w * scale;
  }
}

// ---- dispatch layout ----------------------------------------------------------------------
// Finds what the CPU reference refuses: an expert id outside [0, num_experts) (a NaN logit
// leaves one at -1) or an expert on a rank outside [0, num_ranks). bad[0] counts them, bad[1]
// the first (slots first, then num_slots + the expert for a bad rank; 0x7f7f7f7f: none). The other layout
// kernels never index with such a value (a bad slot stays -1, an expert on a bad rank gets
// no rows), and DispatchLayout refuses the result at its one synchronization.
__global__ void ValidateKernel(const int32_t* topk_expert, int64_t num_slots, const int32_t* expert_rank,
                               int num_experts, int num_ranks, int32_t* bad) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < num_slots + num_experts;
       i += stride) {
    const bool wrong = i < num_slots ? (topk_expert[i] < 0 || topk_expert[i] >= num_experts)
                                     : (expert_rank[i - num_slots] < 0 || expert_rank[i - num_slots] >= num_ranks);
    if (wrong) {
      atomicAdd(&bad[0], 1);
      atomicMin(&bad[1], static_cast<int32_t>(i));
    }
  }
}

// The slots per expert in one pass over the slots (count zeroed before; ids out of range are
// ValidateKernel's).
__global__ void CountKernel(const int32_t* topk_expert, int64_t num_slots, int num_experts, int32_t* count) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < num_slots; i += stride) {
    const int32_t e = topk_expert[i];
    if (e >= 0 && e < num_experts) atomicAdd(&count[e], 1);
  }
}

// One thread: capacity, then rows by (rank, expert); an expert on no valid rank keeps
// expert_row_begin -1 and no rows.
__global__ void PlanKernel(const int32_t* count, const int32_t* expert_rank, int num_experts,
                           int num_ranks, int64_t capacity, LayoutOut out) {
  for (int e = 0; e < num_experts; ++e) {
    out.num_tokens_per_expert[e] = 0;
    out.num_dropped_per_expert[e] = 0;
    out.expert_row_begin[e] = -1;
  }
  int row = 0;
  for (int r = 0; r < num_ranks; ++r) {
    out.rank_row_begin[r] = row;
    for (int e = 0; e < num_experts; ++e) {
      if (expert_rank[e] != r) continue;
      const int kept = capacity < 0 ? count[e] : min(static_cast<int64_t>(count[e]), capacity);
      out.num_tokens_per_expert[e] = kept;
      out.num_dropped_per_expert[e] = count[e] - kept;
      out.expert_row_begin[e] = row;
      row += kept;
    }
    out.num_copies_per_rank[r] = row - out.rank_row_begin[r];
    out.num_tokens_per_rank[r] = 0;
  }
  out.rank_row_begin[num_ranks] = row;
}

// One block per expert: which of its slots are kept, and their rows (token order).
__global__ void AssignKernel(const int32_t* topk_expert, const float* topk_weight,
                             int64_t num_slots, const int32_t* count, int64_t capacity,
                             bool by_score, LayoutOut out) {
  const int e = blockIdx.x;
  if (out.expert_row_begin[e] < 0) return;  // on no valid rank: its slots stay -1
  const int64_t n = count[e];
  const int64_t cap = capacity < 0 ? n : min(n, capacity);
  const bool select = by_score && cap < n;
  uint32_t threshold = 0;
  int64_t ties_needed = 0;
  if (select && cap > 0) {
    // Largest key v with #(key >= v) >= cap, by bisection over the 32-bit keys.
    uint32_t lo = 0, hi = 0xffffffffu;
    while (lo < hi) {
      const uint32_t mid = lo + (hi - lo) / 2 + 1;
      int64_t c = 0;
      for (int64_t base = 0; base < num_slots; base += blockDim.x) {
        const int64_t i = base + threadIdx.x;
        const bool hit = i < num_slots && topk_expert[i] == e && OrderedKey(topk_weight[i]) >= mid;
        int total = 0;
        BlockScanFlag(hit, &total);
        c += total;
      }
      if (c >= cap) lo = mid; else hi = mid - 1;
    }
    threshold = lo;
    int64_t greater = 0;
    for (int64_t base = 0; base < num_slots; base += blockDim.x) {
      const int64_t i = base + threadIdx.x;
      const bool hit = i < num_slots && topk_expert[i] == e && OrderedKey(topk_weight[i]) > threshold;
      int total = 0;
      BlockScanFlag(hit, &total);
      greater += total;
    }
    ties_needed = cap - greater;
  }
  int64_t matched = 0, ties = 0, kept = 0;
  const int64_t row0 = out.expert_row_begin[e];
  for (int64_t base = 0; base < num_slots; base += blockDim.x) {
    const int64_t i = base + threadIdx.x;
    const bool match = i < num_slots && topk_expert[i] == e;
    bool tie = false;
    if (match && select && cap > 0) tie = OrderedKey(topk_weight[i]) == threshold;
    int match_total = 0, tie_total = 0, keep_total = 0;
    const int match_pos = BlockScanFlag(match, &match_total);
    const int tie_pos = BlockScanFlag(tie, &tie_total);
    bool keep;
    if (!select) {
      keep = match && matched + match_pos < cap;
    } else {
      keep = match && cap > 0 &&
             (OrderedKey(topk_weight[i]) > threshold || (tie && ties + tie_pos < ties_needed));
    }
    const int keep_pos = BlockScanFlag(keep, &keep_total);
    if (match) {
      const int64_t row = row0 + kept + keep_pos;
      out.slot_to_row[i] = keep ? static_cast<int32_t>(row) : -1;
      if (keep) out.row_to_slot[row] = static_cast<int32_t>(i);
    }
    matched += match_total;
    ties += tie_total;
    kept += keep_total;
  }
}

__global__ void DedupKernel(const int32_t* topk_expert, const int32_t* expert_rank,
                            int64_t num_tokens, int top_k, LayoutOut out) {
  const int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (t >= num_tokens) return;
  for (int j = 0; j < top_k; ++j) {
    if (out.slot_to_row[t * top_k + j] < 0) continue;
    const int r = expert_rank[topk_expert[t * top_k + j]];
    bool seen = false;
    for (int q = 0; q < j; ++q)
      seen |= out.slot_to_row[t * top_k + q] >= 0 && expert_rank[topk_expert[t * top_k + q]] == r;
    if (!seen) atomicAdd(&out.num_tokens_per_rank[r], 1);
  }
}

// ---- permute, SwiGLU, combine --------------------------------------------------------------
__global__ void PermuteKernel(const __nv_bfloat16* x, const int32_t* row_to_slot, int64_t hidden,
                              int top_k, __nv_bfloat16* out) {
  const int64_t row = blockIdx.x;
  const int64_t token = row_to_slot[row] / top_k;
  if (hidden % 8 == 0) {
    const uint4* src = reinterpret_cast<const uint4*>(x + token * hidden);
    uint4* dst = reinterpret_cast<uint4*>(out + row * hidden);
    for (int64_t c = threadIdx.x; c < hidden / 8; c += blockDim.x) dst[c] = src[c];
  } else {
    for (int64_t c = threadIdx.x; c < hidden; c += blockDim.x) out[row * hidden + c] = x[token * hidden + c];
  }
}

__global__ void SwigluKernel(const __nv_bfloat16* h, int64_t rows, int64_t ffn, __nv_bfloat16* a) {
  const int64_t n = rows * ffn;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = i / ffn, c = i % ffn;
    const float g = __bfloat162float(h[r * 2 * ffn + c]);
    const float u = __bfloat162float(h[r * 2 * ffn + ffn + c]);
    a[i] = __float2bfloat16(g / (1.0f + expf(-g)) * u);
  }
}

// The device pointer tables of the expert layer's two grouped GEMMs, for up to
// kTableChunk experts with rows per launch: the offsets travel as kernel parameters, so
// filling the tables needs no host-to-device copy (which may synchronize) in a timed call.
constexpr int kTableChunk = 256;
struct ExpertTableChunk {
  int count = 0;           // experts in this chunk
  int first = 0;           // their first index in the tables
  int capacity = 0;        // entries per table
  int32_t expert[kTableChunk];
  int32_t row_begin[kTableChunk];
  const char* x; const char* w_up; char* h;      // gate/up: h = x . w_up
  const char* act; const char* w_down; char* out; // down: out = act . w_down
  int64_t x_row, w_up_expert, h_row, act_row, w_down_expert, out_row;  // bytes
  void** tables;           // 6 x capacity: gate/up A, B, C, then down A, B, C
};

__global__ void FillExpertTablesKernel(ExpertTableChunk c) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= c.count) return;
  const int64_t e = c.expert[i], r = c.row_begin[i];
  void** t = c.tables + c.first + i;  // cuBLAS reads A and B through const pointers
  // Column-major view of row-major C = X . W: A = W (N x K), B = X (K x rows), C (N x rows).
  t[0 * c.capacity] = const_cast<char*>(c.w_up + e * c.w_up_expert);
  t[1 * c.capacity] = const_cast<char*>(c.x + r * c.x_row);
  t[2 * c.capacity] = c.h + r * c.h_row;
  t[3 * c.capacity] = const_cast<char*>(c.w_down + e * c.w_down_expert);
  t[4 * c.capacity] = const_cast<char*>(c.act + r * c.act_row);
  t[5 * c.capacity] = c.out + r * c.out_row;
}

__global__ void CombineKernel(const __nv_bfloat16* expert_out, const int32_t* slot_to_row,
                              const float* topk_weight, int top_k, int64_t hidden,
                              __nv_bfloat16* out) {
  const int64_t t = blockIdx.x;
  for (int64_t c = threadIdx.x; c < hidden; c += blockDim.x) {
    float acc = 0;
    for (int j = 0; j < top_k; ++j) {
      const int32_t row = slot_to_row[t * top_k + j];
      if (row >= 0) acc += topk_weight[t * top_k + j] * __bfloat162float(expert_out[row * hidden + c]);
    }
    out[t * hidden + c] = __float2bfloat16(acc);
  }
}

// ---- timing helpers -----------------------------------------------------------------------
__device__ inline uint64_t GlobalNs() {
  uint64_t t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}

// Holds its stream until the host sets *release (mapped host memory), so that work enqueued
// behind it on several GPUs starts together; gives up after 2 s (then *gave_up = 1).
__global__ void HoldKernel(const volatile int* release, volatile int* gave_up) {
  const uint64_t t0 = GlobalNs();
  while (*release == 0) {
    if (GlobalNs() - t0 > 2000000000ull) {
      *gave_up = 1;
      return;
    }
  }
}

// SM cycles and nanoseconds over a spin of `spin_ns` (one thread).
__global__ void ClockKernel(uint64_t spin_ns, unsigned long long* out) {
  const uint64_t t0 = GlobalNs();
  const long long c0 = clock64();
  uint64_t t = t0;
  while (t - t0 < spin_ns) t = GlobalNs();
  out[0] = static_cast<unsigned long long>(clock64() - c0);
  out[1] = t - t0;
}

void CheckLaunch() { CUDA_CHECK(cudaGetLastError()); }

}  // namespace

// ---- device utilities -------------------------------------------------------------------------
// The driver must support the runtime this binary links (CUDA 13.0 needs driver branch 580
// or newer): said first, and plainly, since every later call would only fail obscurely.
bool DriverSupportsRuntime(std::string* why) {
  int driver = 0, runtime = 0;
  cudaDriverGetVersion(&driver);
  cudaRuntimeGetVersion(&runtime);
  cudaGetLastError();
  if (driver == 0) {
    if (why) *why = "no NVIDIA driver is loaded (cudaDriverGetVersion reports none)";
    return false;
  }
  if (driver < runtime) {
    if (why) {
      *why = "the NVIDIA driver supports CUDA up to " + std::to_string(driver / 1000) + "." +
             std::to_string(driver % 1000 / 10) + ", this build runs CUDA " + std::to_string(runtime / 1000) + "." +
             std::to_string(runtime % 1000 / 10) + (runtime / 1000 >= 13 ? " (driver branch 580 or newer)" : "") +
             ": update the driver, or build the bundle with an older CUDA toolkit";
    }
    return false;
  }
  return true;
}

int DeviceCount(std::string* why) {
  if (!DriverSupportsRuntime(why)) return 0;
  int n = 0;
  const cudaError_t rc = cudaGetDeviceCount(&n);
  if (rc != cudaSuccess) {
    if (why) *why = std::string("cudaGetDeviceCount: ") + cudaGetErrorString(rc);
    cudaGetLastError();  // clear the sticky-free error
    return 0;
  }
  if (n == 0 && why) *why = "cudaGetDeviceCount: no CUDA device";
  return n;
}

std::vector<std::pair<std::string, std::string>> DeviceProperties(int device) {
  cudaDeviceProp p;
  CUDA_CHECK(cudaGetDeviceProperties(&p, device));
  int clock_khz = 0, mem_clock_khz = 0;
  cudaDeviceGetAttribute(&clock_khz, cudaDevAttrClockRate, device);
  cudaDeviceGetAttribute(&mem_clock_khz, cudaDevAttrMemoryClockRate, device);
  cudaGetLastError();
  return {
      {"name", p.name},
      {"memory_bytes", std::to_string(p.totalGlobalMem)},
      {"compute_capability", std::to_string(p.major) + "." + std::to_string(p.minor)},
      {"multiprocessors", std::to_string(p.multiProcessorCount)},
      {"sm_clock_MHz", std::to_string(clock_khz / 1000)},
      {"memory_clock_MHz", std::to_string(mem_clock_khz / 1000)},
      {"memory_bus_bits", std::to_string(p.memoryBusWidth)},
      {"l2_cache_bytes", std::to_string(p.l2CacheSize)},
  };
}

namespace {
std::string VersionText(int v) { return std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 10); }
}  // namespace

std::string RuntimeVersion() {
  int v = 0;
  cudaRuntimeGetVersion(&v);
  return VersionText(v);
}

std::string DriverVersion() {
  int v = 0;
  if (cudaDriverGetVersion(&v) != cudaSuccess || v == 0) return "none";
  return VersionText(v);
}

void SetDevice(int device) { CUDA_CHECK(cudaSetDevice(device)); }
void* Malloc(size_t bytes) {
  void* p = nullptr;
  CUDA_CHECK(cudaMalloc(&p, bytes ? bytes : 1));
  return p;
}
void Free(void* ptr) { if (ptr) CUDA_CHECK(cudaFree(ptr)); }
// cudaMemcpy from pageable memory may return before its DMA lands, and cudaMemset returns
// before it runs; what follows runs on non-blocking streams, which do not wait for the
// legacy stream. So both wait for the device, as the header promises.
void CopyToDevice(void* dst, const void* src, size_t bytes) {
  if (!bytes) return;
  CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice));
  CUDA_CHECK(cudaDeviceSynchronize());
}
void CopyToHost(void* dst, const void* src, size_t bytes) {
  if (bytes) CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost));
}
void Memset(void* dst, int value, size_t bytes) {
  if (!bytes) return;
  CUDA_CHECK(cudaMemset(dst, value, bytes));
  CUDA_CHECK(cudaDeviceSynchronize());
}
void* StreamCreate() {
  cudaStream_t s;
  CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  return s;
}
void StreamDestroy(void* stream) { CUDA_CHECK(cudaStreamDestroy(static_cast<cudaStream_t>(stream))); }
void StreamSynchronize(void* stream) { CUDA_CHECK(cudaStreamSynchronize(static_cast<cudaStream_t>(stream))); }

std::vector<double> TimeOnStream(const std::function<void(int)>& fn, int warmup, int repeats,
                                 void* stream) {
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  // Before every call, the stream writes a buffer twice the L2 (at least 64 MB): the call
  // finds nothing of its inputs in L2, and the GPU is busy while the host enqueues the call,
  // so that the events time the GPU's work, not the host's launch rate.
  static void* flush = nullptr;
  static size_t flush_bytes = 0;
  if (flush == nullptr) {
    int device = 0, l2 = 0;
    CUDA_CHECK(cudaGetDevice(&device));
    cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, device);
    cudaGetLastError();
    flush_bytes = std::max<size_t>(size_t{64} << 20, 2 * static_cast<size_t>(std::max(l2, 0)));
    CUDA_CHECK(cudaMalloc(&flush, flush_bytes));
  }
  auto flush_l2 = [&](int i) { CUDA_CHECK(cudaMemsetAsync(flush, i & 0xff, flush_bytes, s)); };
  for (int i = 0; i < warmup; ++i) {
    flush_l2(i);
    fn(i);
  }
  std::vector<cudaEvent_t> events(2 * repeats);
  for (cudaEvent_t& e : events) CUDA_CHECK(cudaEventCreate(&e));
  for (int i = 0; i < repeats; ++i) {
    flush_l2(i);
    CUDA_CHECK(cudaEventRecord(events[2 * i], s));
    fn(warmup + i);
    CUDA_CHECK(cudaEventRecord(events[2 * i + 1], s));
  }
  CUDA_CHECK(cudaStreamSynchronize(s));
  std::vector<double> out(repeats);
  for (int i = 0; i < repeats; ++i) {
    float ms = 0;
    CUDA_CHECK(cudaEventElapsedTime(&ms, events[2 * i], events[2 * i + 1]));
    out[i] = ms * 1e-3;
  }
  for (cudaEvent_t& e : events) cudaEventDestroy(e);
  return out;
}

std::vector<double> TimeAcrossStreams(const std::function<void(int)>& fn, int warmup, int repeats,
                                      const std::vector<void*>& streams) {
  const int n = static_cast<int>(streams.size());
  for (int i = 0; i < warmup; ++i) {
    fn(i);
    for (int d = 0; d < n; ++d) {
      CUDA_CHECK(cudaSetDevice(d));
      CUDA_CHECK(cudaStreamSynchronize(static_cast<cudaStream_t>(streams[d])));
    }
  }
  int* host_flags = nullptr;  // [0] release, [1] a hold gave up
  CUDA_CHECK(cudaHostAlloc(reinterpret_cast<void**>(&host_flags), 2 * sizeof(int), cudaHostAllocMapped | cudaHostAllocPortable));
  std::vector<int*> device_flags(n);
  std::vector<cudaEvent_t> start(n), end(n);
  for (int d = 0; d < n; ++d) {
    CUDA_CHECK(cudaSetDevice(d));
    CUDA_CHECK(cudaHostGetDevicePointer(reinterpret_cast<void**>(&device_flags[d]), host_flags, 0));
    CUDA_CHECK(cudaEventCreate(&start[d]));
    CUDA_CHECK(cudaEventCreate(&end[d]));
  }
  volatile int* release = host_flags;
  volatile int* gave_up = host_flags + 1;
  *gave_up = 0;
  bool hold = true;
  std::vector<double> out;
  for (int i = 0; i < repeats; ++i) {
    *release = 0;
    for (int d = 0; d < n; ++d) {
      CUDA_CHECK(cudaSetDevice(d));
      cudaStream_t s = static_cast<cudaStream_t>(streams[d]);
      if (hold) {
        HoldKernel<<<1, 1, 0, s>>>(device_flags[d], device_flags[d] + 1);
        CheckLaunch();
      }
      CUDA_CHECK(cudaEventRecord(start[d], s));
    }
    fn(warmup + i);
    for (int d = 0; d < n; ++d) {
      CUDA_CHECK(cudaSetDevice(d));
      CUDA_CHECK(cudaEventRecord(end[d], static_cast<cudaStream_t>(streams[d])));
    }
    std::atomic_thread_fence(std::memory_order_seq_cst);
    *release = 1;
    double slowest = 0;
    for (int d = 0; d < n; ++d) {
      CUDA_CHECK(cudaSetDevice(d));
      CUDA_CHECK(cudaEventSynchronize(end[d]));
      float ms = 0;
      CUDA_CHECK(cudaEventElapsedTime(&ms, start[d], end[d]));
      slowest = std::max(slowest, ms * 1e-3);
    }
    out.push_back(slowest);
    if (hold && *gave_up) {
      // The host could not enqueue the exchange while the GPUs were held (the library waited
      // on them): time from each GPU's own start from now on.
      std::fprintf(stderr, "epsim: the GPUs cannot be held for a common start; timing each from its own\n");
      hold = false;
      --i;
      out.pop_back();
      *gave_up = 0;
    }
  }
  for (int d = 0; d < n; ++d) {
    CUDA_CHECK(cudaSetDevice(d));
    cudaEventDestroy(start[d]);
    cudaEventDestroy(end[d]);
  }
  CUDA_CHECK(cudaFreeHost(host_flags));
  CUDA_CHECK(cudaSetDevice(0));
  return out;
}

double MeasuredSmClockMHz(void* stream) {
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  unsigned long long* d = nullptr;
  CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&d), 2 * sizeof(unsigned long long)));
  ClockKernel<<<1, 1, 0, s>>>(20000000ull, d);  // 20 ms
  CheckLaunch();
  unsigned long long host[2] = {0, 0};
  CUDA_CHECK(cudaMemcpyAsync(host, d, sizeof(host), cudaMemcpyDeviceToHost, s));
  CUDA_CHECK(cudaStreamSynchronize(s));
  CUDA_CHECK(cudaFree(d));
  return host[1] > 0 ? 1e3 * static_cast<double>(host[0]) / static_cast<double>(host[1]) : 0;
}

bool CublasAvailable(std::string* why) {
  const CublasApi& api = Cublas();
  if (!api.error.empty() && why) *why = api.error;
  return api.error.empty();
}

std::string CublasVersion() {
  const CublasApi& api = Cublas();
  if (!api.error.empty()) return "none";
  int major = 0, minor = 0, patch = 0;
  api.get_property(MAJOR_VERSION, &major);
  api.get_property(MINOR_VERSION, &minor);
  api.get_property(PATCH_LEVEL, &patch);
  return std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(patch);
}

void* CublasCreate(void* stream) {
  const CublasApi& api = NeedCublas();
  cublasHandle_t h = nullptr;
  CUBLAS_CHECK(api.create(&h));
  CUBLAS_CHECK(api.set_stream(h, static_cast<cudaStream_t>(stream)));
  return h;
}

void CublasDestroy(void* handle) {
  if (handle) CUBLAS_CHECK(NeedCublas().destroy(static_cast<cublasHandle_t>(handle)));
}

// ---- launchers ------------------------------------------------------------------------------
void Route(const Bf16* x, const Bf16* gate_weight, const float* bias, int64_t num_tokens,
           int64_t hidden, const RouterConfig& config, float* logits, int32_t* topk_expert,
           float* topk_weight, const ExecContext& ctx) {
  ValidateRouterConfig(config);
  if (config.top_k > kMaxTopK) throw KernelError("route (cuda): top_k above 32");
  if (num_tokens == 0) return;
  // logits[T,E] = x[T,H] . gate[E,H]^T
  GemmRowMajor(ctx, num_tokens, config.num_experts, hidden, x, gate_weight, /*b_transposed=*/true,
               logits, CUDA_R_32F);
  const int warps = 4;
  const size_t smem = warps * (2 * config.num_experts + config.num_groups) * sizeof(float);
  if (smem > 48 * 1024) throw KernelError("route (cuda): num_experts too large for shared memory");
  const unsigned blocks = static_cast<unsigned>((num_tokens + warps - 1) / warps);
  SelectKernel<<<blocks, warps * kWarp, smem, AsStream(ctx)>>>(
      logits, bias, num_tokens, config.num_experts, config.top_k, config.num_groups,
      config.topk_groups, config.score_func == ScoreFunc::kSoftmax, config.normalize_weights,
      config.weight_scale, topk_expert, topk_weight);
  CheckLaunch();
}

size_t LayoutWorkspaceBytes(int num_experts, int /*num_ranks*/) {
  return sizeof(int32_t) * (static_cast<size_t>(num_experts) + 2);  // counts, then the validation's two
}

void EnqueueDispatchLayout(const int32_t* topk_expert, const float* topk_weight, const int32_t* expert_rank,
                           int64_t num_tokens, int top_k, int num_experts, int num_ranks, int64_t capacity,
                           DropPolicy policy, void* workspace, const LayoutOut& out, const ExecContext& ctx) {
  if (num_experts <= 0 || num_ranks <= 0 || top_k <= 0) throw KernelError("layout (cuda): counts must be > 0");
  // Slots and experts are numbered below the "none found" mark 0x7f7f7f7f (a byte memset).
  if (num_tokens * top_k + num_experts >= 0x7f7f7f7f)
    throw KernelError("layout (cuda): more than 2^31 slots and experts");
  cudaStream_t s = AsStream(ctx);
  int32_t* count = static_cast<int32_t*>(workspace);
  int32_t* bad = count + num_experts;
  const int64_t slots = num_tokens * top_k;
  CUDA_CHECK(cudaMemsetAsync(bad, 0, sizeof(int32_t), s));             // none bad
  CUDA_CHECK(cudaMemsetAsync(bad + 1, 0x7f, sizeof(int32_t), s));      // first bad: none
  if (slots > 0) CUDA_CHECK(cudaMemsetAsync(out.slot_to_row, 0xff, sizeof(int32_t) * slots, s));  // every slot -1
  const int64_t checks = slots + num_experts;
  ValidateKernel<<<static_cast<unsigned>(std::min<int64_t>((checks + 255) / 256, 4096)), 256, 0, s>>>(
      topk_expert, slots, expert_rank, num_experts, num_ranks, bad);
  CheckLaunch();
  CUDA_CHECK(cudaMemsetAsync(count, 0, sizeof(int32_t) * num_experts, s));
  if (slots > 0) {
    CountKernel<<<static_cast<unsigned>(std::min<int64_t>((slots + 255) / 256, 1024)), 256, 0, s>>>(
        topk_expert, slots, num_experts, count);
    CheckLaunch();
  }
  PlanKernel<<<1, 1, 0, s>>>(count, expert_rank, num_experts, num_ranks, capacity, out);
  CheckLaunch();
  AssignKernel<<<num_experts, 256, 0, s>>>(topk_expert, topk_weight, slots, count, capacity,
                                            policy == DropPolicy::kScore, out);
  CheckLaunch();
  if (num_tokens > 0) {
    DedupKernel<<<static_cast<unsigned>((num_tokens + 255) / 256), 256, 0, s>>>(
        topk_expert, expert_rank, num_tokens, top_k, out);
    CheckLaunch();
  }
}

int64_t DispatchLayout(const int32_t* topk_expert, const float* topk_weight,
                       const int32_t* expert_rank, int64_t num_tokens, int top_k,
                       int num_experts, int num_ranks, int64_t capacity, DropPolicy policy,
                       void* workspace, const LayoutOut& out, const ExecContext& ctx) {
  EnqueueDispatchLayout(topk_expert, topk_weight, expert_rank, num_tokens, top_k, num_experts, num_ranks, capacity,
                        policy, workspace, out, ctx);
  cudaStream_t s = AsStream(ctx);
  const int32_t* bad = static_cast<const int32_t*>(workspace) + num_experts;
  const int64_t slots = num_tokens * top_k;
  int32_t rows = 0, bad_host[2] = {0, 0};
  CUDA_CHECK(cudaMemcpyAsync(&rows, out.rank_row_begin + num_ranks, sizeof(rows),
                             cudaMemcpyDeviceToHost, s));
  CUDA_CHECK(cudaMemcpyAsync(bad_host, bad, sizeof(bad_host), cudaMemcpyDeviceToHost, s));
  CUDA_CHECK(cudaStreamSynchronize(s));
  if (bad_host[0] > 0) {
    const int64_t first = bad_host[1];
    throw KernelError(first < slots ? "layout (cuda): slot " + std::to_string(first) + ": expert id outside [0, " +
                                          std::to_string(num_experts) + ") (" + std::to_string(bad_host[0]) +
                                          " bad ids or ranks; a NaN logit gives -1)"
                                    : "layout (cuda): expert " + std::to_string(first - slots) + ": rank outside [0, " +
                                          std::to_string(num_ranks) + ")");
  }
  return rows;
}

void Permute(const Bf16* x, const int32_t* row_to_slot, int64_t num_rows, int64_t hidden,
             int top_k, Bf16* permuted, const ExecContext& ctx) {
  if (num_rows == 0) return;
  PermuteKernel<<<static_cast<unsigned>(num_rows), 128, 0, AsStream(ctx)>>>(
      reinterpret_cast<const __nv_bfloat16*>(x), row_to_slot, hidden, top_k,
      reinterpret_cast<__nv_bfloat16*>(permuted));
  CheckLaunch();
}

size_t ExpertFfnWorkspaceBytes(int64_t rows, int64_t ffn, int num_experts) {
  const size_t activations = (static_cast<size_t>(std::max<int64_t>(rows, 0)) * 3 * ffn * sizeof(uint16_t) + 255) / 256 * 256;
  return activations + 6 * static_cast<size_t>(std::max(num_experts, 0)) * sizeof(void*);
}

const char* ExpertGemmMethod() {
  const CublasApi& api = Cublas();
  return api.error.empty() && api.grouped_gemm ? "cublasGemmGroupedBatchedEx: one launch per GEMM over the experts"
                                               : "cublasGemmEx: one launch per expert (cuBLAS older than 12.5)";
}

void ExpertFfn(const Bf16* input, const int32_t* num_rows, const int32_t* row_begin,
               int num_experts, int64_t hidden, int64_t ffn, const Bf16* w_gate_up,
               const Bf16* w_down, Bf16* output, void* workspace, const ExecContext& ctx) {
  int64_t rows = 0;
  std::vector<int32_t> active;  // experts with rows, in order
  for (int e = 0; e < num_experts; ++e) {
    if (num_rows[e] <= 0) continue;
    rows = std::max<int64_t>(rows, static_cast<int64_t>(row_begin[e]) + num_rows[e]);
    active.push_back(e);
  }
  if (rows == 0) return;
  Bf16* h = static_cast<Bf16*>(workspace);  // [R, 2F]
  Bf16* a = h + rows * 2 * ffn;             // [R, F]
  const int64_t n = rows * ffn;
  const unsigned blocks = static_cast<unsigned>(std::min<int64_t>((n + 255) / 256, 65535));
  auto swiglu = [&] {
    SwigluKernel<<<blocks, 256, 0, AsStream(ctx)>>>(reinterpret_cast<const __nv_bfloat16*>(h), rows, ffn,
                                                    reinterpret_cast<__nv_bfloat16*>(a));
    CheckLaunch();
  };
  const CublasApi& api = NeedCublas();
  if (!api.grouped_gemm) {
    for (const int32_t e : active)
      GemmRowMajor(ctx, num_rows[e], 2 * ffn, hidden, input + row_begin[e] * hidden,
                   w_gate_up + static_cast<int64_t>(e) * hidden * 2 * ffn, false, h + row_begin[e] * 2 * ffn,
                   CUDA_R_16BF);
    swiglu();
    for (const int32_t e : active)
      GemmRowMajor(ctx, num_rows[e], hidden, ffn, a + row_begin[e] * ffn,
                   w_down + static_cast<int64_t>(e) * ffn * hidden, false, output + row_begin[e] * hidden,
                   CUDA_R_16BF);
    return;
  }
  const int g = static_cast<int>(active.size());
  void** tables = reinterpret_cast<void**>(static_cast<char*>(workspace) + ExpertFfnWorkspaceBytes(rows, ffn, 0));
  const int64_t b = sizeof(uint16_t);
  for (int first = 0; first < g; first += kTableChunk) {
    ExpertTableChunk c;
    c.count = std::min(kTableChunk, g - first);
    c.first = first;
    c.capacity = g;
    for (int i = 0; i < c.count; ++i) {
      c.expert[i] = active[first + i];
      c.row_begin[i] = row_begin[active[first + i]];
    }
    c.x = reinterpret_cast<const char*>(input);
    c.w_up = reinterpret_cast<const char*>(w_gate_up);
    c.h = reinterpret_cast<char*>(h);
    c.act = reinterpret_cast<const char*>(a);
    c.w_down = reinterpret_cast<const char*>(w_down);
    c.out = reinterpret_cast<char*>(output);
    c.x_row = hidden * b;
    c.w_up_expert = hidden * 2 * ffn * b;
    c.h_row = 2 * ffn * b;
    c.act_row = ffn * b;
    c.w_down_expert = ffn * hidden * b;
    c.out_row = hidden * b;
    c.tables = tables;
    FillExpertTablesKernel<<<(c.count + 127) / 128, 128, 0, AsStream(ctx)>>>(c);
    CheckLaunch();
  }
  // One group per expert (its own row count); the dimensions live on the host.
  const std::vector<cublasOperation_t> op_n(g, CUBLAS_OP_N);
  const std::vector<float> one(g, 1.0f), zero(g, 0.0f);
  const std::vector<int> group_size(g, 1);
  std::vector<int> cols(g);
  for (int i = 0; i < g; ++i) cols[i] = num_rows[active[i]];
  auto grouped = [&](int table, int64_t n_out, int64_t k) {
    const std::vector<int> m(g, static_cast<int>(n_out)), kk(g, static_cast<int>(k)), lda(g, static_cast<int>(n_out)),
        ldb(g, static_cast<int>(k)), ldc(g, static_cast<int>(n_out));
    CUBLAS_CHECK(api.grouped_gemm(Handle(ctx), op_n.data(), op_n.data(), m.data(), cols.data(), kk.data(), one.data(),
                                  tables + table * g, CUDA_R_16BF, lda.data(), tables + (table + 1) * g, CUDA_R_16BF,
                                  ldb.data(), zero.data(), tables + (table + 2) * g,
                                  CUDA_R_16BF, ldc.data(), g, group_size.data(), CUBLAS_COMPUTE_32F));
  };
  grouped(0, 2 * ffn, hidden);
  swiglu();
  grouped(3, hidden, ffn);
}

void Combine(const Bf16* expert_out, const int32_t* slot_to_row, const float* topk_weight,
             int64_t num_tokens, int top_k, int64_t hidden, Bf16* out, const ExecContext& ctx) {
  if (num_tokens == 0) return;
  CombineKernel<<<static_cast<unsigned>(num_tokens), 256, 0, AsStream(ctx)>>>(
      reinterpret_cast<const __nv_bfloat16*>(expert_out), slot_to_row, topk_weight, top_k, hidden,
      reinterpret_cast<__nv_bfloat16*>(out));
  CheckLaunch();
}

}  // namespace cuda
}  // namespace kernels
}  // namespace epsim
