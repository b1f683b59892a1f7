// epsim calibration: "route", the simulator's route phase: gate GEMM T x H x E, scores,
// top-k (softmax, or sigmoid with group-limited top-k as DeepSeek-V3) and the dispatch
// layout over 8 ranks. Checked against naive loops (CPU) or the CPU reference (CUDA) first.
#include <string>
#include <vector>

#include "calibrate/harness.h"
#include "calibrate/op_common.h"
#include "kernels/ep_ops.h"
#include "kernels/naive.h"

namespace epsim {
namespace calib {
namespace {

using kernels::RouterConfig;
using kernels::ScoreFunc;

RouterConfig Config(int experts, int k, int groups, int topk_groups, ScoreFunc f) {
  RouterConfig c;
  c.num_experts = experts;
  c.top_k = k;
  c.num_groups = groups;
  c.topk_groups = topk_groups;
  c.score_func = f;
  return c;
}

struct RouteShape {
  int64_t hidden;
  RouterConfig config;
};

constexpr int kRanks = 8;

// Correctness on a small shape, before timing.
void Check(Harness& h) {
  const int64_t t = 67, hid = 96;
  for (const RouterConfig& c : {Config(16, 4, 1, 1, ScoreFunc::kSoftmax), Config(32, 6, 8, 3, ScoreFunc::kSigmoid)}) {
    const std::vector<float> x = RandomVector(t * hid, 1), gate = RandomVector(c.num_experts * hid, 2, 0.2f);
    std::vector<float> logits(t * c.num_experts), weight(t * c.top_k);
    std::vector<int32_t> expert(t * c.top_k);
    kernels::cpu::Route(x.data(), gate.data(), nullptr, t, hid, c, logits.data(), expert.data(),
                        weight.data(), h.ctx.cuda_stream ? kernels::ExecContext{} : h.ctx);
    h.CorruptForTest("route", expert.data(), expert.size());
    const std::vector<float> want_logits = kernels::naive::GateLogits(x, gate, t, hid, c.num_experts);
    std::vector<int32_t> want_expert;
    std::vector<float> want_weight;
    kernels::naive::Select(logits, nullptr, t, c, &want_expert, &want_weight);
    CheckWithin(h, "route", "CPU gate GEMM differs from naive loops (relative)",
                kernels::naive::MaxRelativeError(logits, want_logits, 1e-2), 1e-4);
    CheckEqual(h, "route", "CPU expert choice differs from naive loops", expert, want_expert);
#ifdef EPSIM_WITH_CUDA
    if (h.backend == Backend::kCuda) {
      const std::vector<float> xb = FromBf16(ToBf16(x)), gb = FromBf16(ToBf16(gate));
      DeviceBuffer dx(ToBf16(xb)), dg(ToBf16(gb)), dl(4 * t * c.num_experts), de(4 * t * c.top_k),
          dw(4 * t * c.top_k);
      kernels::cuda::Route(dx.as<uint16_t>(), dg.as<uint16_t>(), nullptr, t, hid, c, dl.as<float>(),
                           de.as<int32_t>(), dw.as<float>(), h.ctx);
      kernels::cuda::StreamSynchronize(h.ctx.cuda_stream);
      const std::vector<float> gl = dl.Download<float>(t * c.num_experts);
      CheckWithin(h, "route", "CUDA gate GEMM differs from the CPU reference (normalized)",
                  NormalizedMaxError(gl, kernels::naive::GateLogits(xb, gb, t, hid, c.num_experts)), 1e-3);
      kernels::naive::Select(gl, nullptr, t, c, &want_expert, &want_weight);
      const std::vector<int32_t> ge = de.Download<int32_t>(t * c.top_k);
      int differ = 0;
      for (size_t i = 0; i < ge.size(); ++i) differ += ge[i] != want_expert[i];
      h.Check(differ <= 2, "route", "CUDA expert choice differs from the CPU reference on " +
                                        std::to_string(differ) + " slots");
    }
#endif
  }
}

void Run(Harness& h) {
  const bool gpu = h.backend == Backend::kCuda;
  const std::vector<RouteShape> shapes = h.ByLevel<std::vector<RouteShape>>(
      {{256, Config(16, 2, 1, 1, ScoreFunc::kSoftmax)}},
      gpu ? std::vector<RouteShape>{{4096, Config(64, 6, 1, 1, ScoreFunc::kSoftmax)},
                                    {7168, Config(256, 8, 8, 4, ScoreFunc::kSigmoid)}}
          : std::vector<RouteShape>{{1024, Config(64, 6, 1, 1, ScoreFunc::kSoftmax)},
                                    {2048, Config(256, 8, 8, 4, ScoreFunc::kSigmoid)}},
      {{2048, Config(64, 6, 1, 1, ScoreFunc::kSoftmax)},
       {4096, Config(128, 8, 8, 4, ScoreFunc::kSigmoid)},
       {7168, Config(256, 8, 8, 4, ScoreFunc::kSigmoid)}});
  const std::vector<int64_t> tokens = h.ByLevel<std::vector<int64_t>>(
      {1, 16, 64, 256},
      gpu ? std::vector<int64_t>{1, 16, 128, 1024, 4096, 16384} : std::vector<int64_t>{1, 4, 16, 64, 256, 1024, 2048},
      gpu ? std::vector<int64_t>{1, 4, 16, 64, 256, 1024, 4096, 16384}
          : std::vector<int64_t>{1, 4, 16, 64, 256, 1024, 4096});
  const int total = static_cast<int>(shapes.size() * tokens.size());
  int done = 0;
  for (const RouteShape& s : shapes) {
    const RouterConfig& c = s.config;
    const int e = c.num_experts, k = c.top_k;
    std::vector<int32_t> rank(e);
    for (int i = 0; i < e; ++i) rank[i] = kernels::ContiguousExpertRank(i, e, kRanks);
    const std::vector<float> gate = RandomVector(e * s.hidden, 7, 0.05f);
    for (const int64_t t : tokens) {
      CaseShape shape;
      shape.tokens = t;
      shape.hidden = s.hidden;
      shape.experts = e;
      shape.top_k = k;
      shape.ranks = kRanks;
      const FitPoint work = Work(RouteWork(t, s.hidden, e));
      const int rot = h.Rotations(t * s.hidden * (gpu ? 2.0 : 4.0));
      std::vector<std::vector<float>> x;
      for (int r = 0; r < rot; ++r) x.push_back(RandomVector(t * s.hidden, 100 + r));
      if (!gpu) {
        std::vector<float> logits(t * e), weight(t * k);
        std::vector<int32_t> expert(t * k);
        LayoutBuffers layout(t * k, e, kRanks);
        h.Measure("route", shape, work, rot, [&](int i) {
          kernels::cpu::Route(x[i % rot].data(), gate.data(), nullptr, t, s.hidden, c, logits.data(),
                              expert.data(), weight.data(), h.ctx);
          kernels::cpu::DispatchLayout(expert.data(), weight.data(), rank.data(), t, k, e, kRanks,
                                       kernels::kDropless, kernels::DropPolicy::kPosition,
                                       layout.Out(), h.ctx);
        });
      }
#ifdef EPSIM_WITH_CUDA
      if (gpu) {
        std::vector<DeviceBuffer> dx;
        for (int r = 0; r < rot; ++r) dx.emplace_back(ToBf16(x[r]));
        DeviceBuffer dg(ToBf16(gate)), drank(rank), dl(4 * t * e), de(4 * t * k), dw(4 * t * k);
        LayoutDevice layout(t * k, e, kRanks);
        h.Measure("route", shape, work, rot, [&](int i) {
          kernels::cuda::Route(dx[i % rot].as<uint16_t>(), dg.as<uint16_t>(), nullptr, t, s.hidden,
                               c, dl.as<float>(), de.as<int32_t>(), dw.as<float>(), h.ctx);
          // Enqueued only: no copy back and no synchronization inside the timed call.
          kernels::cuda::EnqueueDispatchLayout(de.as<int32_t>(), dw.as<float>(), drank.as<int32_t>(), t, k, e,
                                               kRanks, kernels::kDropless, kernels::DropPolicy::kPosition,
                                               layout.workspace.as<void>(), layout.Out(), h.ctx);
        });
      }
#endif
      h.Progress("route", ++done, total);
    }
  }
}

}  // namespace

EPSIM_REGISTER_OP(route, "route", "gate GEMM, scores, top-k and dispatch layout (the simulator's route phase)", 10,
                  Check, Run);

}  // namespace calib
}  // namespace epsim
