// epsim kernels: the CUDA implementation of ep_ops.h, plus the few device utilities the
// tests and the calibrator need, all behind a header with no CUDA includes (streams are
// void* holding a cudaStream_t; bf16 values are uint16_t holding __nv_bfloat16 bits).
//
// Built only when nvcc was found (@local_cuda//:defs.bzl); dependents then see
// EPSIM_WITH_CUDA defined. Semantics equal the CPU reference (ep_ops.h) with bf16 storage
// and fp32 accumulation. cuBLAS and cuBLASLt are loaded at run time (.so.13, .12 or .11),
// so binaries start on machines without them and say what is missing.
// All pointers are device pointers unless a comment says host.
#ifndef EPSIM_KERNELS_EP_OPS_CUDA_H_
#define EPSIM_KERNELS_EP_OPS_CUDA_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "kernels/ep_ops.h"

namespace epsim {
namespace kernels {
namespace cuda {

using Bf16 = uint16_t;

// Number of usable devices; 0 with *why set (e.g. "cudaGetDeviceCount: CUDA driver version
// is insufficient for CUDA runtime version") when there is none.
int DeviceCount(std::string* why);
// Name, memory, SM count, clock and compute capability of device `device`, one line each
// as "key: value", for the profile's device section.
std::vector<std::pair<std::string, std::string>> DeviceProperties(int device);
// CUDA runtime and driver versions as "13.0".
std::string RuntimeVersion();
std::string DriverVersion();

// Device memory and copies (synchronous; throw KernelError with file and line on failure).
void SetDevice(int device);
void* Malloc(size_t bytes);
void Free(void* ptr);
void CopyToDevice(void* dst, const void* src_host, size_t bytes);
void CopyToHost(void* dst_host, const void* src, size_t bytes);
void Memset(void* dst, int value, size_t bytes);
void* StreamCreate();
void StreamDestroy(void* stream);
void StreamSynchronize(void* stream);

// Times fn(i) on `stream` with CUDA events: `warmup` untimed calls, then `repeats` timed
// ones, each between its own pair of events and each after a write of twice the L2 (its
// inputs out of L2, the GPU busy while the host enqueues the call). Returns seconds per
// call, in order.
std::vector<double> TimeOnStream(const std::function<void(int)>& fn, int warmup, int repeats,
                                 void* stream);

// Times fn(i), which enqueues one collective on every streams[d] (device d), with events on
// each stream: every GPU is held behind a kernel that the host releases once the whole call
// is enqueued, so the GPUs start together and the host's enqueueing is not timed. A sample
// is the slowest GPU's time. `warmup` untimed calls first. Returns seconds per call.
std::vector<double> TimeAcrossStreams(const std::function<void(int)>& fn, int warmup, int repeats,
                                      const std::vector<void*>& streams);
// The SM clock the current device runs at, measured (cycles over a 20 ms spin on `stream`),
// in MHz: set against the rated clock, it shows a throttled or clock-capped GPU.
double MeasuredSmClockMHz(void* stream);

// cuBLAS, loaded at run time. Available() says why not when it cannot be loaded.
bool CublasAvailable(std::string* why);
std::string CublasVersion();
// A handle bound to `stream`; put it in ExecContext::cublas.
void* CublasCreate(void* stream);
void CublasDestroy(void* handle);

// As cpu::Route, on bf16 x[T,H] and gate_weight[E,H]; logits[T,E] fp32 scratch.
// Gate GEMM on cuBLAS, then one warp per token for scores and grouped top-k.
void Route(const Bf16* x, const Bf16* gate_weight, const float* bias, int64_t num_tokens,
           int64_t hidden, const RouterConfig& config, float* logits, int32_t* topk_expert,
           float* topk_weight, const ExecContext& ctx);

// Bytes of device scratch DispatchLayout needs for num_slots = tokens x top_k.
size_t LayoutWorkspaceBytes(int64_t num_slots, int num_experts, int num_ranks);
// As cpu::DispatchLayout; every array in `out` and the inputs are device arrays. Slots are
// counted in one pass and given rows by one stable radix sort by expert (CUB; Transformer
// Engine's MoE permute does the same); the score policy with a capacity sorts by (expert,
// weight) first to pick the kept slots. Returns the
// kept copies N (one device-to-host copy, which synchronizes the stream), after checking the
// ids and ranks as the CPU reference does (KernelError).
int64_t DispatchLayout(const int32_t* topk_expert, const float* topk_weight,
                       const int32_t* expert_rank, int64_t num_tokens, int top_k,
                       int num_experts, int num_ranks, int64_t capacity, DropPolicy policy,
                       void* workspace, const LayoutOut& out, const ExecContext& ctx);
// The same kernels, only enqueued: no copy to the host and no synchronization, so that the
// calibrator times the GPU's work alone. Bad ids and ranks leave every map safe to read
// (never indexed with them) but are reported only by DispatchLayout.
void EnqueueDispatchLayout(const int32_t* topk_expert, const float* topk_weight, const int32_t* expert_rank,
                           int64_t num_tokens, int top_k, int num_experts, int num_ranks, int64_t capacity,
                           DropPolicy policy, void* workspace, const LayoutOut& out, const ExecContext& ctx);

// As cpu::Permute on bf16 rows.
void Permute(const Bf16* x, const int32_t* row_to_slot, int64_t num_rows, int64_t hidden,
             int top_k, Bf16* permuted, const ExecContext& ctx);

// As cpu::ExpertFfn (bf16 in and out, fp32 compute): one grouped cuBLAS launch for the
// gate/up GEMMs of every expert with rows, SwiGLU, one for the down GEMMs (ExpertGemmMethod
// says which cuBLAS call; before cuBLAS 12.5, one GEMM per expert). num_rows and row_begin
// are HOST arrays (counts are on the host after the dispatch). `workspace` holds
// ExpertFfnWorkspaceBytes(R, F, E) bytes, R = max(row_begin[e] + num_rows[e]).
size_t ExpertFfnWorkspaceBytes(int64_t rows, int64_t ffn, int num_experts);
const char* ExpertGemmMethod();
void ExpertFfn(const Bf16* input, const int32_t* num_rows, const int32_t* row_begin,
               int num_experts, int64_t hidden, int64_t ffn, const Bf16* w_gate_up,
               const Bf16* w_down, Bf16* output, void* workspace, const ExecContext& ctx);

// The expert layer with fp8 (E4M3) GEMMs (kernels/expert_fp8.cu): gate/up and down through
// cuBLASLt, one call per expert with rows (bf16 out, fp32 accumulation, per-tensor scales of
// 1), SwiGLU written as fp8 between them. The weights are K-contiguous, as fp8 tensor cores
// take them: w_gate_up_t[E][2F][H] and w_down_t[E][H][F], the transposes of ExpertFfn's;
// H and F multiples of 16. Fp8GemmAvailable says why not where cuBLASLt or the GPU (compute
// capability 8.9 or newer) has no fp8 GEMM. `workspace` holds ExpertFfnFp8WorkspaceBytes(R, F).
using Fp8 = uint8_t;  // E4M3 bits (__nv_fp8_e4m3)
bool Fp8GemmAvailable(std::string* why);
std::string CublasLtVersion();
void Bf16ToFp8(const Bf16* in, int64_t n, Fp8* out, const ExecContext& ctx);
size_t ExpertFfnFp8WorkspaceBytes(int64_t rows, int64_t ffn);
void ExpertFfnFp8(const Fp8* input, const int32_t* num_rows, const int32_t* row_begin, int num_experts,
                  int64_t hidden, int64_t ffn, const Fp8* w_gate_up_t, const Fp8* w_down_t, Bf16* output,
                  void* workspace, const ExecContext& ctx);

// As cpu::Combine on bf16 rows (fp32 accumulation).
void Combine(const Bf16* expert_out, const int32_t* slot_to_row, const float* topk_weight,
             int64_t num_tokens, int top_k, int64_t hidden, Bf16* out, const ExecContext& ctx);

}  // namespace cuda
}  // namespace kernels
}  // namespace epsim

#endif  // EPSIM_KERNELS_EP_OPS_CUDA_H_
