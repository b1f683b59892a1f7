// epsim calibration: "layout" alone: counts per expert and rank, prefix sums, permutation,
// capacity drops (by score, capacity factor 1.25). Not a phase of the simulator (its route
// phase includes it); stored in the profile for reference.
#include <cmath>
#include <string>
#include <vector>

#include "calibrate/harness.h"
#include "calibrate/op_common.h"
#include "kernels/ep_ops.h"
#include "kernels/naive.h"

namespace epsim {
namespace calib {
namespace {

void Check(Harness& h) {
  const int64_t t = 300;
  const int k = 4, e = 13, p = 5;
  std::vector<int32_t> expert, rank(e);
  std::vector<float> weight;
  RandomChoices(t, k, e, 3, &expert, &weight);
  for (int i = 0; i < e; ++i) rank[i] = kernels::ContiguousExpertRank(i, e, p);
  for (const kernels::DropPolicy policy : {kernels::DropPolicy::kPosition, kernels::DropPolicy::kScore}) {
    LayoutBuffers got(t * k, e, p);
    const int64_t rows = kernels::cpu::DispatchLayout(expert.data(), weight.data(), rank.data(), t, k, e, p,
                                                      70, policy, got.Out(), kernels::ExecContext{});
    h.CorruptForTest("layout", got.slot_to_row.data(), got.slot_to_row.size());
    const kernels::naive::Layout want =
        kernels::naive::DispatchLayout(expert, weight, rank, t, k, e, p, 70, policy);
    CheckEqual(h, "layout", "CPU layout's row count differs from naive loops", std::vector<int64_t>{rows},
               std::vector<int64_t>{static_cast<int64_t>(want.row_to_slot.size())});
    CheckEqual(h, "layout", "CPU layout's slot_to_row differs from naive loops", got.slot_to_row, want.slot_to_row);
    CheckEqual(h, "layout", "CPU layout's tokens_per_rank differs from naive loops", got.tokens_per_rank,
               want.num_tokens_per_rank);
#ifdef EPSIM_WITH_CUDA
    if (h.backend == Backend::kCuda) {
      DeviceBuffer de(expert), dw(weight), dr(rank);
      LayoutDevice d(t * k, e, p);
      const int64_t grows = kernels::cuda::DispatchLayout(de.as<int32_t>(), dw.as<float>(), dr.as<int32_t>(), t,
                                                          k, e, p, 70, policy, d.workspace.as<void>(), d.Out(), h.ctx);
      CheckEqual(h, "layout", "CUDA layout's row count differs from the CPU reference", std::vector<int64_t>{grows},
                 std::vector<int64_t>{rows});
      CheckEqual(h, "layout", "CUDA layout's slot_to_row differs from the CPU reference",
                 d.slot_to_row.Download<int32_t>(t * k), got.slot_to_row);
      CheckEqual(h, "layout", "CUDA layout's tokens_per_rank differs from the CPU reference",
                 d.tokens_per_rank.Download<int32_t>(p), got.tokens_per_rank);
    }
#endif
  }
}

void Run(Harness& h) {
  const bool gpu = h.backend == Backend::kCuda;
  struct Shape { int experts, top_k, ranks; };
  const std::vector<Shape> shapes = h.ByLevel<std::vector<Shape>>(
      {{16, 2, 4}}, {{64, 6, 8}, {256, 8, 32}}, {{64, 6, 8}, {160, 6, 16}, {256, 8, 32}, {256, 8, 64}});
  const std::vector<int64_t> tokens = h.ByLevel<std::vector<int64_t>>(
      {1, 64, 512}, {1, 64, 512, 4096}, gpu ? std::vector<int64_t>{1, 16, 256, 1024, 4096, 16384, 65536}
                                            : std::vector<int64_t>{1, 16, 256, 1024, 4096, 16384});
  const int total = static_cast<int>(shapes.size() * tokens.size());
  int done = 0;
  for (const Shape& s : shapes) {
    std::vector<int32_t> rank(s.experts);
    for (int i = 0; i < s.experts; ++i) rank[i] = kernels::ContiguousExpertRank(i, s.experts, s.ranks);
    for (const int64_t t : tokens) {
      const int64_t capacity = static_cast<int64_t>(std::ceil(1.25 * t * s.top_k / s.experts));
      CaseShape shape;
      shape.tokens = t;
      shape.experts = s.experts;
      shape.top_k = s.top_k;
      shape.ranks = s.ranks;
      const int rot = h.Rotations(t * s.top_k * 8.0);
      std::vector<std::vector<int32_t>> expert(rot);
      std::vector<std::vector<float>> weight(rot);
      for (int r = 0; r < rot; ++r) RandomChoices(t, s.top_k, s.experts, 50 + r, &expert[r], &weight[r]);
      if (!gpu) {
        LayoutBuffers out(t * s.top_k, s.experts, s.ranks);
        h.Measure("layout", shape, Work(LayoutWork(t, s.top_k)), rot, [&](int i) {
          kernels::cpu::DispatchLayout(expert[i % rot].data(), weight[i % rot].data(), rank.data(), t,
                                       s.top_k, s.experts, s.ranks, capacity, kernels::DropPolicy::kScore,
                                       out.Out(), h.ctx);
        });
      }
#ifdef EPSIM_WITH_CUDA
      if (gpu) {
        std::vector<DeviceBuffer> de, dw;
        for (int r = 0; r < rot; ++r) {
          de.emplace_back(expert[r]);
          dw.emplace_back(weight[r]);
        }
        DeviceBuffer dr(rank);
        LayoutDevice out(t * s.top_k, s.experts, s.ranks);
        h.Measure("layout", shape, Work(LayoutWork(t, s.top_k)), rot, [&](int i) {
          // Enqueued only: no copy back and no synchronization inside the timed call.
          kernels::cuda::EnqueueDispatchLayout(de[i % rot].as<int32_t>(), dw[i % rot].as<float>(), dr.as<int32_t>(),
                                               t, s.top_k, s.experts, s.ranks, capacity, kernels::DropPolicy::kScore,
                                               out.workspace.as<void>(), out.Out(), h.ctx);
        });
      }
#endif
      h.Progress("layout", ++done, total);
    }
  }
}

}  // namespace

EPSIM_REGISTER_OP(layout, "layout", "dispatch layout alone, capacity factor 1.25, drops by score", 20, Check, Run);

}  // namespace calib
}  // namespace epsim
