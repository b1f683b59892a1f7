// epsim kernel tests: every CUDA kernel against the CPU reference on fresh random data (bf16
// tolerances), and the NCCL all-to-all over the local GPUs. Skipped (GTEST_SKIP, with the
// reason) where the build has no CUDA or the machine has no GPU, cuBLAS or NCCL.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "kernels/all_to_all.h"
#include "kernels/ep_ops.h"
#include "kernels/host_data.h"
#include "kernels/naive.h"
#include "kernels/random_data.h"
#ifdef EPSIM_WITH_CUDA
#include "kernels/ep_ops_cuda.h"
#endif

namespace epsim {
namespace kernels {
namespace {

#ifdef EPSIM_WITH_CUDA

// True on a machine that has an NVIDIA GPU (its device node), or when gpu_check.sh says so
// (EPSIM_EXPECT_GPU=1): there a test that cannot reach the GPU fails instead of skipping.
bool GpuExpected() {
  const char* expect = std::getenv("EPSIM_EXPECT_GPU");
  if (expect != nullptr && std::string(expect) == "1") return true;
  return std::ifstream("/dev/nvidia0").good() || std::ifstream("/dev/nvidiactl").good();
}

// Skips the test unless a device and cuBLAS are there (fails instead where a GPU should be);
// then owns a stream and a handle.
class GpuTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    if (cuda::DeviceCount(&why) == 0) {
      if (GpuExpected()) FAIL() << "a GPU is present but cannot be used: " << why;
      GTEST_SKIP() << "no CUDA device: " << why;
    }
    if (!cuda::CublasAvailable(&why)) {
      if (GpuExpected()) FAIL() << "a GPU is present but cuBLAS is not: " << why;
      GTEST_SKIP() << "no cuBLAS: " << why;
    }
    stream_ = cuda::StreamCreate();
    ctx_.cuda_stream = stream_;
    ctx_.cublas = cuda::CublasCreate(stream_);
  }
  void TearDown() override {
    if (ctx_.cublas) cuda::CublasDestroy(ctx_.cublas);
    if (stream_) cuda::StreamDestroy(stream_);
    for (void* p : owned_) cuda::Free(p);
  }
  template <typename T>
  T* Upload(const std::vector<T>& host) {
    void* p = cuda::Malloc(host.size() * sizeof(T));
    cuda::CopyToDevice(p, host.data(), host.size() * sizeof(T));
    owned_.push_back(p);
    return static_cast<T*>(p);
  }
  template <typename T>
  T* Alloc(size_t n) {
    void* p = cuda::Malloc(std::max<size_t>(n, 1) * sizeof(T));
    owned_.push_back(p);
    return static_cast<T*>(p);
  }
  template <typename T>
  std::vector<T> Download(const T* dev, size_t n) {
    cuda::StreamSynchronize(stream_);
    std::vector<T> host(n);
    cuda::CopyToHost(host.data(), dev, n * sizeof(T));
    return host;
  }
  void* stream_ = nullptr;
  ExecContext ctx_;
  std::vector<void*> owned_;
};

TEST_F(GpuTest, RouteMatchesCpu) {
  for (const bool sigmoid : {false, true}) {
    RouterConfig c;
    c.num_experts = 64;
    c.top_k = 6;
    if (sigmoid) {
      c.score_func = ScoreFunc::kSigmoid;
      c.num_groups = 8;
      c.topk_groups = 3;
      c.weight_scale = 2.5f;
    }
    const int64_t t = 257, h = 512;
    const std::vector<float> x = FromBf16(ToBf16(RandomVector(t * h, 1)));
    const std::vector<float> gate = FromBf16(ToBf16(RandomVector(c.num_experts * h, 2, 0.05f)));
    const std::vector<float> bias = RandomVector(c.num_experts, 3, 0.01f);
    float* logits = Alloc<float>(t * c.num_experts);
    int32_t* expert = Alloc<int32_t>(t * c.top_k);
    float* weight = Alloc<float>(t * c.top_k);
    cuda::Route(Upload(ToBf16(x)), Upload(ToBf16(gate)), sigmoid ? Upload(bias) : nullptr, t, h, c,
                logits, expert, weight, ctx_);
    const std::vector<float> got_logits = Download(logits, t * c.num_experts);
    EXPECT_LT(NormalizedMaxError(got_logits, naive::GateLogits(x, gate, t, h, c.num_experts)), 1e-4);
    // Selection from the GPU's own logits: equal but for near-ties of expf.
    std::vector<int32_t> want_expert;
    std::vector<float> want_weight;
    naive::Select(got_logits, sigmoid ? bias.data() : nullptr, t, c, &want_expert, &want_weight);
    const std::vector<int32_t> got_expert = Download(expert, t * c.top_k);
    const std::vector<float> got_weight = Download(weight, t * c.top_k);
    int64_t differ = 0;
    for (size_t i = 0; i < got_expert.size(); ++i) differ += got_expert[i] != want_expert[i];
    EXPECT_LE(differ, 2) << (sigmoid ? "sigmoid" : "softmax");
    if (differ == 0) {
      EXPECT_LT(naive::MaxRelativeError(got_weight, want_weight, 1e-6), 1e-4);
    }
  }
}

// Both policies, with and without capacity; experts placed contiguously and round robin (rows
// go by rank, then expert); weights random and coarsely rounded (ties broken by token
// order); a small case and one of DeepSeek-V3's size.
TEST_F(GpuTest, LayoutMatchesCpu) {
  struct Case {
    int64_t t;
    int k, e, p;
    int64_t capacity;
    DropPolicy policy;
    bool round_robin, ties;
  };
  std::vector<Case> cases;
  struct Shape { int64_t t; int k, e, p; int64_t capacity; };
  for (const Shape sh : {Shape{1000, 4, 13, 5, 40}, Shape{4096, 8, 256, 8, 100}})
    for (const DropPolicy policy : {DropPolicy::kPosition, DropPolicy::kScore})
      for (const int64_t capacity : {kDropless, int64_t{0}, sh.capacity})
        for (const bool round_robin : {false, true})
          for (const bool ties : {false, true})
            cases.push_back({sh.t, sh.k, sh.e, sh.p, capacity, policy, round_robin, ties});
  for (const Case& c : cases) {
    const int64_t t = c.t;
    const int k = c.k, e = c.e, p = c.p;
    SCOPED_TRACE(::testing::Message() << "E " << e << (c.policy == DropPolicy::kScore ? " score" : " position")
                                      << " capacity " << c.capacity << (c.round_robin ? " round robin" : "")
                                      << (c.ties ? " ties" : ""));
    std::vector<int32_t> expert;
    std::vector<float> weight;
    RandomChoices(t, k, e, 7, &expert, &weight);
    if (c.ties)
      for (float& w : weight) w = std::round(w * 8) / 8;
    std::vector<int32_t> rank(e);
    for (int i = 0; i < e; ++i) rank[i] = c.round_robin ? i % p : ContiguousExpertRank(i, e, p);
    LayoutBuffers want(t * k, e, p);
    const int64_t want_rows = cpu::DispatchLayout(expert.data(), weight.data(), rank.data(), t, k, e, p, c.capacity,
                                                  c.policy, want.Out(), ExecContext{});
    LayoutOut dev{Alloc<int32_t>(e), Alloc<int32_t>(e), Alloc<int32_t>(e), Alloc<int32_t>(p),
                  Alloc<int32_t>(p), Alloc<int32_t>(p + 1), Alloc<int32_t>(t * k), Alloc<int32_t>(t * k)};
    void* ws = Alloc<char>(cuda::LayoutWorkspaceBytes(t * k, e, p));
    const int64_t rows = cuda::DispatchLayout(Upload(expert), Upload(weight), Upload(rank), t, k, e, p, c.capacity,
                                              c.policy, ws, dev, ctx_);
    ASSERT_EQ(rows, want_rows);
    EXPECT_EQ(Download(dev.num_tokens_per_expert, e), want.per_expert);
    EXPECT_EQ(Download(dev.num_dropped_per_expert, e), want.dropped);
    EXPECT_EQ(Download(dev.expert_row_begin, e), want.expert_begin);
    EXPECT_EQ(Download(dev.num_copies_per_rank, p), want.copies_per_rank);
    EXPECT_EQ(Download(dev.num_tokens_per_rank, p), want.tokens_per_rank);
    EXPECT_EQ(Download(dev.rank_row_begin, p + 1), want.rank_begin);
    EXPECT_EQ(Download(dev.slot_to_row, t * k), want.slot_to_row);
    std::vector<int32_t> want_r2s(want.row_to_slot.begin(), want.row_to_slot.begin() + rows);
    EXPECT_EQ(Download(dev.row_to_slot, rows), want_r2s);
  }
}

// What the CPU reference refuses, the GPU refuses too, in one line and without touching
// memory it should not: an expert id out of range (a NaN logit's -1) or a bad rank.
TEST_F(GpuTest, LayoutRefusesBadIdsAndRanks) {
  const int64_t t = 64;
  const int k = 2, e = 8, p = 2;
  std::vector<int32_t> expert;
  std::vector<float> weight;
  RandomChoices(t, k, e, 5, &expert, &weight);
  std::vector<int32_t> rank(e);
  for (int i = 0; i < e; ++i) rank[i] = ContiguousExpertRank(i, e, p);
  LayoutOut dev{Alloc<int32_t>(e), Alloc<int32_t>(e), Alloc<int32_t>(e), Alloc<int32_t>(p),
                Alloc<int32_t>(p), Alloc<int32_t>(p + 1), Alloc<int32_t>(t * k), Alloc<int32_t>(t * k)};
  void* ws = Alloc<char>(cuda::LayoutWorkspaceBytes(t * k, e, p));
  for (const int32_t bad : {-1, e}) {
    std::vector<int32_t> wrong = expert;
    wrong[37] = bad;
    try {
      cuda::DispatchLayout(Upload(wrong), Upload(weight), Upload(rank), t, k, e, p, kDropless, DropPolicy::kPosition,
                           ws, dev, ctx_);
      ADD_FAILURE() << "expert " << bad << " accepted";
    } catch (const KernelError& err) {
      EXPECT_NE(std::string(err.what()).find("slot 37: expert id outside [0, 8)"), std::string::npos) << err.what();
    }
  }
  std::vector<int32_t> wrong_rank = rank;
  wrong_rank[3] = p;
  EXPECT_THROW(cuda::DispatchLayout(Upload(expert), Upload(weight), Upload(wrong_rank), t, k, e, p, kDropless,
                                    DropPolicy::kPosition, ws, dev, ctx_),
               KernelError);
  // The stream is still usable: a good layout after the bad ones.
  EXPECT_GT(cuda::DispatchLayout(Upload(expert), Upload(weight), Upload(rank), t, k, e, p, kDropless,
                                 DropPolicy::kPosition, ws, dev, ctx_),
            0);
}

TEST_F(GpuTest, PermuteExpertCombineMatchCpu) {
  const int64_t t = 300, h = 256, f = 128;
  const int k = 4, e = 8, p = 3;
  std::vector<int32_t> expert;
  std::vector<float> weight;
  RandomChoices(t, k, e, 9, &expert, &weight);
  std::vector<int32_t> rank(e);
  for (int i = 0; i < e; ++i) rank[i] = ContiguousExpertRank(i, e, p);
  LayoutBuffers l(t * k, e, p);
  const int64_t rows = cpu::DispatchLayout(expert.data(), weight.data(), rank.data(), t, k, e, p,
                                           kDropless, DropPolicy::kPosition, l.Out(), ExecContext{});
  const std::vector<float> x = FromBf16(ToBf16(RandomVector(t * h, 10)));
  const std::vector<float> w1 = FromBf16(ToBf16(RandomVector(e * h * 2 * f, 11, 0.06f)));
  const std::vector<float> w2 = FromBf16(ToBf16(RandomVector(e * f * h, 12, 0.08f)));
  // CPU reference.
  std::vector<float> permuted(rows * h), out_cpu(rows * h), ws_cpu(rows * 3 * f), comb_cpu(t * h);
  cpu::Permute(x.data(), l.row_to_slot.data(), rows, h, k, permuted.data(), ExecContext{});
  cpu::ExpertFfn(permuted.data(), l.per_expert.data(), l.expert_begin.data(), e, h, f, w1.data(),
                 w2.data(), out_cpu.data(), ws_cpu.data(), ExecContext{});
  cpu::Combine(out_cpu.data(), l.slot_to_row.data(), weight.data(), t, k, h, comb_cpu.data(), ExecContext{});
  // GPU.
  uint16_t* d_perm = Alloc<uint16_t>(rows * h);
  uint16_t* d_out = Alloc<uint16_t>(rows * h);
  uint8_t* d_ws = Alloc<uint8_t>(cuda::ExpertFfnWorkspaceBytes(rows, f, e));
  uint16_t* d_comb = Alloc<uint16_t>(t * h);
  cuda::Permute(Upload(ToBf16(x)), Upload(l.row_to_slot), rows, h, k, d_perm, ctx_);
  EXPECT_EQ(FromBf16(Download(d_perm, rows * h)), permuted);
  cuda::ExpertFfn(d_perm, l.per_expert.data(), l.expert_begin.data(), e, h, f, Upload(ToBf16(w1)),
                  Upload(ToBf16(w2)), d_out, d_ws, ctx_);
  EXPECT_LT(NormalizedMaxError(FromBf16(Download(d_out, rows * h)), out_cpu), 3e-2);
  // Combine on the GPU's expert output, against the CPU combine of the same values.
  const std::vector<float> gpu_out = FromBf16(Download(d_out, rows * h));
  std::vector<float> want(t * h);
  cpu::Combine(gpu_out.data(), l.slot_to_row.data(), weight.data(), t, k, h, want.data(), ExecContext{});
  cuda::Combine(d_out, Upload(l.slot_to_row), Upload(weight), t, k, h, d_comb, ctx_);
  EXPECT_LT(NormalizedMaxError(FromBf16(Download(d_comb, t * h)), want), 1e-2);
}

// The fp8 layer against the CPU reference on the fp8 values it was given (decoded on the host
// from what the GPU quantized); the GPU also rounds the SwiGLU output to fp8, which the
// reference keeps in fp32: E4M3's 3 mantissa bits (up to 1/16 relative) over F = 128 terms
// give a few percent, a wrong operand layout gives about 100%.
TEST_F(GpuTest, ExpertFfnFp8MatchesCpu) {
  std::string why;
  if (!cuda::Fp8GemmAvailable(&why)) {
    // Only a GPU without fp8 tensor cores may skip; a missing or failing cuBLASLt fails.
    if (GpuExpected() && why.find("compute capability") == std::string::npos) FAIL() << why;
    GTEST_SKIP() << why;
  }
  const std::vector<int32_t> rows = {37, 0, 200, 5, 64};
  const int e = static_cast<int>(rows.size());
  std::vector<int32_t> begin(e, 0);
  for (int i = 1; i < e; ++i) begin[i] = begin[i - 1] + rows[i - 1];
  const int64_t n = begin.back() + rows.back(), h = 256, f = 128;
  auto quantize = [&](const std::vector<float>& values) {
    uint8_t* d = Alloc<uint8_t>(values.size());
    cuda::Bf16ToFp8(Upload(ToBf16(values)), static_cast<int64_t>(values.size()), d, ctx_);
    return std::make_pair(d, FromFp8E4M3(Download(d, values.size())));
  };
  const auto [d_x, x] = quantize(RandomVector(n * h, 20));
  const auto [d_w1, w1_t] = quantize(TransposeEach(RandomVector(e * h * 2 * f, 21, 0.06f), e, h, 2 * f));
  const auto [d_w2, w2_t] = quantize(TransposeEach(RandomVector(e * f * h, 22, 0.08f), e, f, h));
  for (const float v : x) ASSERT_TRUE(std::isfinite(v));
  std::vector<float> want(n * h), ws(n * 3 * f);
  cpu::ExpertFfn(x.data(), rows.data(), begin.data(), e, h, f, TransposeEach(w1_t, e, 2 * f, h).data(),
                 TransposeEach(w2_t, e, h, f).data(), want.data(), ws.data(), ExecContext{});
  uint16_t* d_out = Alloc<uint16_t>(n * h);
  uint8_t* d_ws = Alloc<uint8_t>(cuda::ExpertFfnFp8WorkspaceBytes(n, f));
  cuda::ExpertFfnFp8(d_x, rows.data(), begin.data(), e, h, f, d_w1, d_w2, d_out, d_ws, ctx_);
  const double error = NormalizedMaxError(FromBf16(Download(d_out, n * h)), want);
  EXPECT_LT(error, 0.1);
}

TEST(NcclAllToAllTest, UnevenSplitsOverLocalGpus) {
  std::string why;
  const int n = cuda::DeviceCount(&why);
  if (n == 0 && GpuExpected()) FAIL() << "a GPU is present but cannot be used: " << why;
  if (n < 2) GTEST_SKIP() << "needs 2+ GPUs, found " << n << (why.empty() ? "" : ": " + why);
  if (!NcclAllToAll::Available(&why)) {
    if (GpuExpected()) FAIL() << "GPUs are present but NCCL is not: " << why;
    GTEST_SKIP() << why;
  }
  // Device d sends (d + 1) * (p + 1) * 1000 + p bytes of value d*16+p to device p.
  std::vector<int64_t> send_bytes(n * n), recv_bytes(n * n);
  for (int d = 0; d < n; ++d)
    for (int p = 0; p < n; ++p) send_bytes[d * n + p] = (d + 1) * (p + 1) * 1000 + p;
  for (int d = 0; d < n; ++d)
    for (int p = 0; p < n; ++p) recv_bytes[d * n + p] = send_bytes[p * n + d];
  std::vector<void*> send(n), recv(n), streams(n);
  std::vector<int64_t> recv_total(n, 0);
  for (int d = 0; d < n; ++d) {
    cuda::SetDevice(d);
    std::vector<uint8_t> host;
    for (int p = 0; p < n; ++p) host.insert(host.end(), send_bytes[d * n + p], static_cast<uint8_t>(d * 16 + p));
    for (int p = 0; p < n; ++p) recv_total[d] += recv_bytes[d * n + p];
    send[d] = cuda::Malloc(host.size());
    cuda::CopyToDevice(send[d], host.data(), host.size());
    recv[d] = cuda::Malloc(recv_total[d]);
    streams[d] = cuda::StreamCreate();
  }
  NcclAllToAll a2a(n);
  a2a.AllToAllV(send.data(), send_bytes.data(), recv.data(), recv_bytes.data(), streams.data());
  for (int d = 0; d < n; ++d) {
    cuda::SetDevice(d);
    cuda::StreamSynchronize(streams[d]);
    std::vector<uint8_t> host(recv_total[d]);
    cuda::CopyToHost(host.data(), recv[d], host.size());
    int64_t off = 0;
    for (int p = 0; p < n; ++p) {
      for (int64_t i = 0; i < recv_bytes[d * n + p]; ++i)
        ASSERT_EQ(host[off + i], static_cast<uint8_t>(p * 16 + d)) << "device " << d << " from " << p;
      off += recv_bytes[d * n + p];
    }
    cuda::Free(send[d]);
    cuda::Free(recv[d]);
    cuda::StreamDestroy(streams[d]);
  }
}

#else

TEST(GpuTest, SkippedWithoutCuda) { GTEST_SKIP() << "built without CUDA (no nvcc at build time)"; }

#endif  // EPSIM_WITH_CUDA

}  // namespace
}  // namespace kernels
}  // namespace epsim
