// epsim calibration: "permute": gather of the dispatched copies into destination-rank,
// expert-contiguous order (memory bound). Rows = tokens x top_k (dropless).
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

std::vector<int32_t> RowToSlot(int64_t t, uint32_t seed) {
  return RandomLayout(t, kTopK, kExperts, kRanks, seed).row_to_slot;
}

void Check(Harness& h) {
  const int64_t t = 50, hid = 72;
  const std::vector<int32_t> r2s = RowToSlot(t, 1);
  const std::vector<float> x = RandomVector(t * hid, 2);
  std::vector<float> out(r2s.size() * hid);
  kernels::cpu::Permute(x.data(), r2s.data(), r2s.size(), hid, kTopK, out.data(),
                        h.backend == Backend::kCpu ? h.ctx : kernels::ExecContext{});
  h.CorruptForTest("permute", out.data(), out.size());
  CheckEqual(h, "permute", "CPU permute differs from naive loops", out, kernels::naive::Permute(x, r2s, hid, kTopK));
#ifdef EPSIM_WITH_CUDA
  if (h.backend == Backend::kCuda) {
    const std::vector<uint16_t> xb = ToBf16(x);
    DeviceBuffer dx(xb), dr(r2s), dout(2 * out.size());
    kernels::cuda::Permute(dx.as<uint16_t>(), dr.as<int32_t>(), r2s.size(), hid, kTopK, dout.as<uint16_t>(), h.ctx);
    kernels::cuda::StreamSynchronize(h.ctx.cuda_stream);
    CheckEqual(h, "permute", "CUDA permute differs from the CPU reference", FromBf16(dout.Download<uint16_t>(out.size())),
               kernels::naive::Permute(FromBf16(xb), r2s, hid, kTopK));
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
      const std::vector<int32_t> r2s = RowToSlot(t, 9);
      const int64_t rows = static_cast<int64_t>(r2s.size());
      CaseShape shape;
      shape.tokens = rows;
      shape.hidden = hid;
      shape.top_k = kTopK;
      shape.experts = kExperts;
      shape.ranks = kRanks;
      const int rot = h.Rotations(t * hid * (gpu ? 2.0 : 4.0) * (1 + kTopK));
      std::vector<std::vector<float>> x;
      for (int r = 0; r < rot; ++r) x.push_back(RandomVector(t * hid, 200 + r));
      if (!gpu) {
        std::vector<std::vector<float>> out(rot, std::vector<float>(rows * hid));
        h.Measure("permute", shape, Work(PermuteWork(rows, 2.0 * hid)), rot, [&](int i) {
          kernels::cpu::Permute(x[i % rot].data(), r2s.data(), rows, hid, kTopK, out[i % rot].data(), h.ctx);
        });
      }
#ifdef EPSIM_WITH_CUDA
      if (gpu) {
        std::vector<DeviceBuffer> dx, dout;
        for (int r = 0; r < rot; ++r) {
          dx.emplace_back(ToBf16(x[r]));
          dout.emplace_back(2 * rows * hid);
        }
        DeviceBuffer dr(r2s);
        h.Measure("permute", shape, Work(PermuteWork(rows, 2.0 * hid)), rot, [&](int i) {
          kernels::cuda::Permute(dx[i % rot].as<uint16_t>(), dr.as<int32_t>(), rows, hid, kTopK,
                                 dout[i % rot].as<uint16_t>(), h.ctx);
        });
      }
#endif
      h.Progress("permute", ++done, total);
    }
  }
}

}  // namespace

EPSIM_REGISTER_OP(permute, "permute", "gather of the dispatched copies (tokens x top_k rows)", 30, Check, Run);

}  // namespace calib
}  // namespace epsim
