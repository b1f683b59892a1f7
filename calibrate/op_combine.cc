// epsim calibration: "combine": weighted un-permute and sum of the returned expert outputs
// (tokens x top_k rows back to tokens rows), memory bound.
#include <string>
#include <vector>

#include "calibrate/harness.h"
#include "calibrate/op_common.h"
#include "kernels/ep_ops.h"
#include "kernels/naive.h"

namespace epsim {
namespace calib {
namespace {

constexpr int kTopK = 8, kExperts = 64, kRanks = 8;

std::vector<int32_t> SlotToRow(int64_t t, uint32_t seed, std::vector<float>* weight) {
  return RandomLayout(t, kTopK, kExperts, kRanks, seed, weight).slot_to_row;
}

void Check(Harness& h) {
  const int64_t t = 40, hid = 80;
  std::vector<float> weight;
  const std::vector<int32_t> s2r = SlotToRow(t, 1, &weight);
  const std::vector<float> rows = RandomVector(t * kTopK * hid, 2);
  std::vector<float> out(t * hid);
  kernels::cpu::Combine(rows.data(), s2r.data(), weight.data(), t, kTopK, hid, out.data(),
                        h.backend == Backend::kCpu ? h.ctx : kernels::ExecContext{});
  h.CorruptForTest("combine", out.data(), out.size());
  CheckWithin(h, "combine", "CPU combine differs from naive loops (normalized)",
              NormalizedMaxError(out, kernels::naive::Combine(rows, s2r, weight, t, kTopK, hid)), 1e-5);
#ifdef EPSIM_WITH_CUDA
  if (h.backend == Backend::kCuda) {
    const std::vector<float> rb = FromBf16(ToBf16(rows));
    DeviceBuffer dr(ToBf16(rb)), ds(s2r), dw(weight), dout(2 * t * hid);
    kernels::cuda::Combine(dr.as<uint16_t>(), ds.as<int32_t>(), dw.as<float>(), t, kTopK, hid, dout.as<uint16_t>(), h.ctx);
    kernels::cuda::StreamSynchronize(h.ctx.cuda_stream);
    CheckWithin(h, "combine", "CUDA combine differs from the CPU reference (normalized)",
                NormalizedMaxError(FromBf16(dout.Download<uint16_t>(t * hid)),
                                   kernels::naive::Combine(rb, s2r, weight, t, kTopK, hid)), 1e-2);
  }
#endif
}

void Run(Harness& h) {
  const bool gpu = h.backend == Backend::kCuda;
  const MemoryBoundSweep sweep = MemoryBoundShapes(h);
  const std::vector<int64_t>& hiddens = sweep.hiddens;
  const std::vector<int64_t>& tokens = sweep.tokens;
  const int total = static_cast<int>(hiddens.size() * tokens.size());
  int done = 0;
  for (const int64_t hid : hiddens) {
    for (const int64_t t : tokens) {
      std::vector<float> weight;
      const std::vector<int32_t> s2r = SlotToRow(t, 5, &weight);
      const int64_t copies = t * kTopK;
      CaseShape shape;
      shape.tokens = t;
      shape.hidden = hid;
      shape.top_k = kTopK;
      const int rot = h.Rotations(copies * hid * (gpu ? 2.0 : 4.0) * (1.0 + 1.0 / kTopK));
      std::vector<std::vector<float>> rows;
      for (int r = 0; r < rot; ++r) rows.push_back(RandomVector(copies * hid, 400 + r));
      if (!gpu) {
        std::vector<std::vector<float>> out(rot, std::vector<float>(t * hid));
        h.Measure("combine", shape, Work(CombineWork(copies, t, hid)), rot, [&](int i) {
          kernels::cpu::Combine(rows[i % rot].data(), s2r.data(), weight.data(), t, kTopK, hid, out[i % rot].data(), h.ctx);
        });
      }
#ifdef EPSIM_WITH_CUDA
      if (gpu) {
        std::vector<DeviceBuffer> dr, dout;
        for (int r = 0; r < rot; ++r) {
          dr.emplace_back(ToBf16(rows[r]));
          dout.emplace_back(2 * t * hid);
        }
        DeviceBuffer ds(s2r), dw(weight);
        h.Measure("combine", shape, Work(CombineWork(copies, t, hid)), rot, [&](int i) {
          kernels::cuda::Combine(dr[i % rot].as<uint16_t>(), ds.as<int32_t>(), dw.as<float>(), t, kTopK, hid,
                                 dout[i % rot].as<uint16_t>(), h.ctx);
        });
      }
#endif
      h.Progress("combine", ++done, total);
    }
  }
}

}  // namespace

EPSIM_REGISTER_OP(combine, "combine", "weighted un-permute and sum (top_k 8)", 50, Check, Run);

}  // namespace calib
}  // namespace epsim
