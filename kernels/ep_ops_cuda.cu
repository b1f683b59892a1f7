// epsim kernels: CUDA implementation of the EP layer (see ep_ops_cuda.h and ep_ops.h).
// Built for sm_80 and sm_90 with PTX for newer cards; cuBLAS is dlopen'ed so that a binary
// linked with the static CUDA runtime starts anywhere and reports what it could not find.
#include <cub/cub.cuh>
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

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
#include "kernels/shared_library.h"

namespace epsim {
namespace kernels {
namespace cuda {
namespace {

constexpr int kWarp = 32;
constexpr int kMaxTopK = 32;

cudaStream_t AsStream(const ExecContext& ctx) { return static_cast<cudaStream_t>(ctx.cuda_stream); }

// ---- cuBLAS, loaded at run time ----------------------------------------------------------
struct CublasApi {
  SharedLibrary lib;
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
  // Spelled out rather than decltype'd: CUDA 11.8's header (the bundle for older drivers)
  // does not declare it.
  cublasStatus_t (*grouped_gemm)(cublasHandle_t, const cublasOperation_t[],
                                 const cublasOperation_t[], const int[], const int[], const int[],
                                 const void*, const void* const[], cudaDataType_t, const int[],
                                 const void* const[], cudaDataType_t, const int[], const void*,
                                 void* const[], cudaDataType_t, const int[], int, const int[],
                                 cublasComputeType_t) = nullptr;
};

const CublasApi& Cublas() {
  static CublasApi api = [] {
    CublasApi a;
    a.lib = SharedLibrary::OpenFirst({"libcublas.so.13", "libcublas.so.12", "libcublas.so.11", "libcublas.so"},
                                     "add the CUDA lib64 folder to LD_LIBRARY_PATH");
    a.lib.Load(a.create, "cublasCreate_v2");
    a.lib.Load(a.destroy, "cublasDestroy_v2");
    a.lib.Load(a.set_stream, "cublasSetStream_v2");
    a.lib.Load(a.gemm_ex, "cublasGemmEx");
    a.lib.Load(a.get_property, "cublasGetProperty");
    a.lib.Load(a.grouped_gemm, "cublasGemmGroupedBatchedEx", /*required=*/false);
    return a;
  }();
  return api;
}

const CublasApi& NeedCublas() {
  const CublasApi& api = Cublas();
  if (!api.lib.error.empty()) throw KernelError("cuBLAS: " + api.lib.error);
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

// One block: capacity per expert, then rows by (rank, expert). count_begin[e] and
// kept_begin[e] are the slots and kept copies of the experts before e (where the sorted
// slot lists of AssignSortedKernel start). An expert on no valid rank keeps no rows and
// expert_row_begin -1. O(E) per thread, no serial loop over ranks x experts.
__global__ void PlanKernel(const int32_t* count, const int32_t* expert_rank, int num_experts, int num_ranks,
                           int64_t capacity, int32_t* count_begin, int32_t* kept_begin, LayoutOut out) {
  auto placed = [&](int e) { return expert_rank[e] >= 0 && expert_rank[e] < num_ranks; };
  for (int e = threadIdx.x; e < num_experts; e += blockDim.x) {
    const int kept = !placed(e) ? 0 : capacity < 0 ? count[e] : static_cast<int>(min(static_cast<int64_t>(count[e]), capacity));
    out.num_tokens_per_expert[e] = kept;
    out.num_dropped_per_expert[e] = placed(e) ? count[e] - kept : 0;
  }
  __syncthreads();
  const int32_t* kept = out.num_tokens_per_expert;
  for (int e = threadIdx.x; e < num_experts; e += blockDim.x) {
    const int r = expert_rank[e];
    int before_count = 0, before_kept = 0, row = 0;
    for (int q = 0; q < num_experts; ++q) {
      if (q < e) {
        before_count += count[q];
        before_kept += kept[q];
      }
      const int rq = expert_rank[q];
      if (rq >= 0 && (rq < r || (rq == r && q < e))) row += kept[q];  // kept[q] is 0 off the ranks
    }
    count_begin[e] = before_count;
    kept_begin[e] = before_kept;
    out.expert_row_begin[e] = placed(e) ? row : -1;
  }
  for (int r = threadIdx.x; r <= num_ranks; r += blockDim.x) {
    int before = 0, mine = 0;
    for (int q = 0; q < num_experts; ++q) {
      const int rq = expert_rank[q];
      if (rq >= 0 && rq < r) before += kept[q];
      if (rq == r) mine += kept[q];
    }
    out.rank_row_begin[r] = before;
    if (r < num_ranks) {
      out.num_copies_per_rank[r] = mine;
      out.num_tokens_per_rank[r] = 0;
    }
  }
}

// Sort keys, one per slot (value: the slot): by expert (position policy), or by expert then
// descending weight (score policy; OrderedKey orders floats as unsigned integers). An id out
// of range sorts last, as expert num_experts. The sort is stable, so equal keys keep token order.
__global__ void ExpertKeysKernel(const int32_t* topk_expert, const float* topk_weight, int64_t num_slots,
                                 int num_experts, bool by_score, uint32_t* keys32, uint64_t* keys64, int32_t* slots) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < num_slots; i += stride) {
    const int32_t e = topk_expert[i];
    const uint32_t expert = e >= 0 && e < num_experts ? static_cast<uint32_t>(e) : static_cast<uint32_t>(num_experts);
    if (by_score)
      keys64[i] = (static_cast<uint64_t>(expert) << 32) | static_cast<uint64_t>(~OrderedKey(topk_weight[i]));
    else
      keys32[i] = expert;
    slots[i] = static_cast<int32_t>(i);
  }
}

// Score policy, after the sort by (expert, descending weight): the first kept[e] slots of
// each expert stay. Writes, per slot in token order, the key of the second sort: its expert
// when kept, num_experts (last) when dropped.
__global__ void KeepByScoreKernel(const uint64_t* sorted_keys, const int32_t* sorted_slots, int64_t num_slots,
                                  int num_experts, const int32_t* count_begin, const int32_t* kept,
                                  uint32_t* keep_keys, int32_t* slots) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t p = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; p < num_slots; p += stride) {
    const uint32_t e = static_cast<uint32_t>(sorted_keys[p] >> 32);
    const int32_t slot = sorted_slots[p];
    const bool keep = e < static_cast<uint32_t>(num_experts) && p - count_begin[e] < kept[e];
    keep_keys[slot] = keep ? e : static_cast<uint32_t>(num_experts);
    slots[slot] = slot;
  }
}

// Slots sorted by expert (token order within each): the first kept[e] of expert e get its
// rows in order; the others stay -1 (dropped), as do slots with a bad id or on a bad rank.
__global__ void AssignSortedKernel(const uint32_t* sorted_keys, const int32_t* sorted_slots, int64_t num_slots,
                                   int num_experts, const int32_t* list_begin, LayoutOut out) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t p = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; p < num_slots; p += stride) {
    const uint32_t e = sorted_keys[p];
    if (e >= static_cast<uint32_t>(num_experts) || out.expert_row_begin[e] < 0) continue;
    const int64_t rank = p - list_begin[e];
    if (rank >= out.num_tokens_per_expert[e]) continue;
    const int32_t slot = sorted_slots[p];
    const int32_t row = out.expert_row_begin[e] + static_cast<int32_t>(rank);
    out.slot_to_row[slot] = row;
    out.row_to_slot[row] = slot;
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
// or newer, CUDA 11.8 520 or newer): said first, and plainly, since every later call would
// only fail obscurely.
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
             ": update the driver, or use the bundle built with CUDA 11.8 (driver 520 or newer): "
             "tools/build_gpu_bundle.sh --cuda 11.8";
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
  if (!api.lib.error.empty() && why) *why = api.lib.error;
  return api.lib.error.empty();
}

std::string CublasVersion() {
  const CublasApi& api = Cublas();
  if (!api.lib.error.empty()) return "none";
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

namespace {
// The layout's scratch, in one workspace: counts and the validation's two words first (read
// back by DispatchLayout), then the sort's keys, slots and CUB's temporary storage.
struct LayoutScratch {
  size_t count = 0, bad = 0, count_begin = 0, kept_begin = 0, keys_in = 0, keys_out = 0, slots_in = 0,
         slots_out = 0, temp = 0, temp_bytes = 0, total = 0;
  LayoutScratch(int64_t num_slots, int num_experts) {
    auto take = [&](size_t bytes) {
      const size_t at = total;
      total += (bytes + 255) / 256 * 256;
      return at;
    };
    const size_t s = static_cast<size_t>(std::max<int64_t>(num_slots, 1)), e = static_cast<size_t>(num_experts);
    count = take(sizeof(int32_t) * (e + 2));
    bad = count + sizeof(int32_t) * e;
    count_begin = take(sizeof(int32_t) * e);
    kept_begin = take(sizeof(int32_t) * e);
    keys_in = take(sizeof(uint64_t) * s);
    keys_out = take(sizeof(uint64_t) * s);
    slots_in = take(sizeof(int32_t) * s);
    slots_out = take(sizeof(int32_t) * s);
    size_t t32 = 0, t64 = 0;
    CUDA_CHECK(cub::DeviceRadixSort::SortPairs(nullptr, t32, static_cast<const uint32_t*>(nullptr),
                                               static_cast<uint32_t*>(nullptr), static_cast<const int32_t*>(nullptr),
                                               static_cast<int32_t*>(nullptr), static_cast<int>(s)));
    CUDA_CHECK(cub::DeviceRadixSort::SortPairs(nullptr, t64, static_cast<const uint64_t*>(nullptr),
                                               static_cast<uint64_t*>(nullptr), static_cast<const int32_t*>(nullptr),
                                               static_cast<int32_t*>(nullptr), static_cast<int>(s)));
    temp_bytes = std::max(t32, t64);
    temp = take(temp_bytes);
  }
  template <typename T>
  T* At(void* workspace, size_t offset) const { return reinterpret_cast<T*>(static_cast<char*>(workspace) + offset); }
};

// Bits that hold every expert id and the "none" id num_experts.
int ExpertBits(int num_experts) {
  int bits = 1;
  while ((int64_t{1} << bits) <= num_experts) ++bits;
  return bits;
}
}  // namespace

size_t LayoutWorkspaceBytes(int64_t num_slots, int num_experts, int /*num_ranks*/) {
  return LayoutScratch(num_slots, num_experts).total;
}

void EnqueueDispatchLayout(const int32_t* topk_expert, const float* topk_weight, const int32_t* expert_rank,
                           int64_t num_tokens, int top_k, int num_experts, int num_ranks, int64_t capacity,
                           DropPolicy policy, void* workspace, const LayoutOut& out, const ExecContext& ctx) {
  if (num_experts <= 0 || num_ranks <= 0 || top_k <= 0) throw KernelError("layout (cuda): counts must be > 0");
  // Slots and experts are numbered below the "none found" mark 0x7f7f7f7f (a byte memset).
  if (num_tokens * top_k + num_experts >= 0x7f7f7f7f)
    throw KernelError("layout (cuda): more than 2^31 slots and experts");
  cudaStream_t s = AsStream(ctx);
  const int64_t slots = num_tokens * top_k;
  const LayoutScratch w(slots, num_experts);
  int32_t* count = w.At<int32_t>(workspace, w.count);
  int32_t* bad = w.At<int32_t>(workspace, w.bad);
  int32_t* count_begin = w.At<int32_t>(workspace, w.count_begin);
  int32_t* kept_begin = w.At<int32_t>(workspace, w.kept_begin);
  CUDA_CHECK(cudaMemsetAsync(bad, 0, sizeof(int32_t), s));             // none bad
  CUDA_CHECK(cudaMemsetAsync(bad + 1, 0x7f, sizeof(int32_t), s));      // first bad: none
  if (slots > 0) CUDA_CHECK(cudaMemsetAsync(out.slot_to_row, 0xff, sizeof(int32_t) * slots, s));  // every slot -1
  const int64_t checks = slots + num_experts;
  ValidateKernel<<<static_cast<unsigned>(std::min<int64_t>((checks + 255) / 256, 4096)), 256, 0, s>>>(
      topk_expert, slots, expert_rank, num_experts, num_ranks, bad);
  CheckLaunch();
  CUDA_CHECK(cudaMemsetAsync(count, 0, sizeof(int32_t) * num_experts, s));
  const unsigned grid = static_cast<unsigned>(std::max<int64_t>(1, std::min<int64_t>((slots + 255) / 256, 1024)));
  if (slots > 0) {
    CountKernel<<<grid, 256, 0, s>>>(topk_expert, slots, num_experts, count);
    CheckLaunch();
  }
  PlanKernel<<<1, 256, 0, s>>>(count, expert_rank, num_experts, num_ranks, capacity, count_begin, kept_begin, out);
  CheckLaunch();
  if (slots > 0) {
    // Rows by one stable radix sort of the slots by expert, as Transformer Engine's MoE
    // permute does; under the score policy with a capacity, a sort by (expert, weight) first
    // picks the kept slots.
    const bool by_score = policy == DropPolicy::kScore && capacity >= 0;
    const int bits = ExpertBits(num_experts);
    uint32_t* keys32_in = w.At<uint32_t>(workspace, w.keys_in);
    uint32_t* keys32_out = w.At<uint32_t>(workspace, w.keys_out);
    int32_t* slots_in = w.At<int32_t>(workspace, w.slots_in);
    int32_t* slots_out = w.At<int32_t>(workspace, w.slots_out);
    void* temp = w.At<void>(workspace, w.temp);
    size_t temp_bytes = w.temp_bytes;
    const int n = static_cast<int>(slots);
    if (by_score) {
      uint64_t* keys64_in = w.At<uint64_t>(workspace, w.keys_in);
      uint64_t* keys64_out = w.At<uint64_t>(workspace, w.keys_out);
      ExpertKeysKernel<<<grid, 256, 0, s>>>(topk_expert, topk_weight, slots, num_experts, true, nullptr, keys64_in,
                                            slots_in);
      CheckLaunch();
      CUDA_CHECK(cub::DeviceRadixSort::SortPairs(temp, temp_bytes, keys64_in, keys64_out, slots_in, slots_out, n, 0,
                                                 32 + bits, s));
      // The second sort's keys go where the first sort's inputs were (read before, by the sort).
      KeepByScoreKernel<<<grid, 256, 0, s>>>(keys64_out, slots_out, slots, num_experts, count_begin,
                                             out.num_tokens_per_expert, keys32_in, slots_in);
      CheckLaunch();
      CUDA_CHECK(cub::DeviceRadixSort::SortPairs(temp, temp_bytes, keys32_in, keys32_out, slots_in, slots_out, n, 0,
                                                 bits, s));
      AssignSortedKernel<<<grid, 256, 0, s>>>(keys32_out, slots_out, slots, num_experts, kept_begin, out);
    } else {
      ExpertKeysKernel<<<grid, 256, 0, s>>>(topk_expert, topk_weight, slots, num_experts, false, keys32_in, nullptr,
                                            slots_in);
      CheckLaunch();
      CUDA_CHECK(cub::DeviceRadixSort::SortPairs(temp, temp_bytes, keys32_in, keys32_out, slots_in, slots_out, n, 0,
                                                 bits, s));
      AssignSortedKernel<<<grid, 256, 0, s>>>(keys32_out, slots_out, slots, num_experts, count_begin, out);
    }
    CheckLaunch();
  }
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
  const int64_t slots = num_tokens * top_k;
  const LayoutScratch w(slots, num_experts);
  const int32_t* bad = w.At<int32_t>(workspace, w.bad);
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
  return api.lib.error.empty() && api.grouped_gemm ? "cublasGemmGroupedBatchedEx: one launch per GEMM over the experts"
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
