// epsim calibration: "expert": one expert's FFN (gate/up GEMM M x H x 2F, SwiGLU, down GEMM
// M x F x H), measured as a grouped GEMM over G local experts with M tokens each and reported
// per expert (time / G), as the simulator sums one ExpertS per local expert.
#include <algorithm>
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
  // Uneven counts, one expert empty.
  const std::vector<int32_t> rows = {5, 0, 17, 1};
  std::vector<int32_t> begin(rows.size(), 0);
  for (size_t e = 1; e < rows.size(); ++e) begin[e] = begin[e - 1] + rows[e - 1];
  const int64_t n = begin.back() + rows.back(), hid = 64, f = 48;
  const int g = static_cast<int>(rows.size());
  const std::vector<float> x = RandomVector(n * hid, 1), w1 = RandomVector(g * hid * 2 * f, 2, 0.1f),
                           w2 = RandomVector(g * f * hid, 3, 0.1f);
  std::vector<float> out(n * hid), ws(n * 3 * f);
  kernels::cpu::ExpertFfn(x.data(), rows.data(), begin.data(), g, hid, f, w1.data(), w2.data(), out.data(),
                          ws.data(), h.backend == Backend::kCpu ? h.ctx : kernels::ExecContext{});
  h.CorruptForTest("expert", out.data(), out.size());
  CheckWithin(h, "expert", "CPU expert FFN differs from naive loops (relative)",
              kernels::naive::MaxRelativeError(out, kernels::naive::ExpertFfn(x, rows, begin, hid, f, w1, w2), 1e-2),
              1e-3);
#ifdef EPSIM_WITH_CUDA
  if (h.backend == Backend::kCuda) {
    const std::vector<float> xb = FromBf16(ToBf16(x)), w1b = FromBf16(ToBf16(w1)), w2b = FromBf16(ToBf16(w2));
    DeviceBuffer dx(ToBf16(xb)), d1(ToBf16(w1b)), d2(ToBf16(w2b)), dout(2 * n * hid), dws(2 * n * 3 * f);
    kernels::cuda::ExpertFfn(dx.as<uint16_t>(), rows.data(), begin.data(), g, hid, f, d1.as<uint16_t>(),
                             d2.as<uint16_t>(), dout.as<uint16_t>(), dws.as<uint16_t>(), h.ctx);
    kernels::cuda::StreamSynchronize(h.ctx.cuda_stream);
    const std::vector<float> want = kernels::naive::ExpertFfn(xb, rows, begin, hid, f, w1b, w2b);
    CheckWithin(h, "expert", "CUDA expert FFN differs from the CPU reference (normalized)",
                NormalizedMaxError(FromBf16(dout.Download<uint16_t>(n * hid)), want), 3e-2);
  }
#endif
}

void Run(Harness& h) {
  const bool gpu = h.backend == Backend::kCuda;
  struct Dims { int64_t hidden, ffn; };
  const std::vector<Dims> dims = h.ByLevel<std::vector<Dims>>(
      {{128, 96}}, gpu ? std::vector<Dims>{{4096, 1536}, {7168, 2048}} : std::vector<Dims>{{1024, 512}, {2048, 768}},
      gpu ? std::vector<Dims>{{2048, 1408}, {4096, 1536}, {7168, 2048}, {7168, 4096}}
          : std::vector<Dims>{{1024, 512}, {2048, 768}, {4096, 1024}});
  const int g = h.ByLevel(2, gpu ? 8 : 4, gpu ? 8 : 4);
  const std::vector<int64_t> per_expert = h.ByLevel<std::vector<int64_t>>(
      {1, 8, 64}, gpu ? std::vector<int64_t>{1, 8, 64, 256, 1024, 4096, 16384} : std::vector<int64_t>{1, 4, 16, 64, 128, 256, 512, 1024},
      gpu ? std::vector<int64_t>{1, 4, 16, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384}
          : std::vector<int64_t>{1, 4, 16, 64, 128, 256, 512, 1024, 2048});
  const int total = static_cast<int>(dims.size() * per_expert.size());
  int done = 0;
  for (const Dims& d : dims) {
    const std::vector<float> w1 = RandomVector(g * d.hidden * 2 * d.ffn, 11, 0.02f), w2 = RandomVector(g * d.ffn * d.hidden, 12, 0.02f);
    for (const int64_t m : per_expert) {
      const std::vector<int32_t> rows(g, static_cast<int32_t>(m));
      std::vector<int32_t> begin(g);
      for (int e = 0; e < g; ++e) begin[e] = static_cast<int32_t>(e * m);
      const int64_t n = g * m;
      CaseShape shape;
      shape.tokens = m;
      shape.hidden = d.hidden;
      shape.ffn = d.ffn;
      shape.experts = g;
      const int rot = h.Rotations(n * d.hidden * (gpu ? 2.0 : 4.0));
      std::vector<std::vector<float>> x;
      for (int r = 0; r < rot; ++r) x.push_back(RandomVector(n * d.hidden, 300 + r));
      if (!gpu) {
        std::vector<float> out(n * d.hidden), ws(n * 3 * d.ffn);
        h.Measure("expert", shape, Work(ExpertWork(m, d.hidden, d.ffn)), rot, [&](int i) {
          kernels::cpu::ExpertFfn(x[i % rot].data(), rows.data(), begin.data(), g, d.hidden, d.ffn, w1.data(),
                                  w2.data(), out.data(), ws.data(), h.ctx);
        });
      }
#ifdef EPSIM_WITH_CUDA
      if (gpu) {
        std::vector<DeviceBuffer> dx;
        for (int r = 0; r < rot; ++r) dx.emplace_back(ToBf16(x[r]));
        DeviceBuffer d1(ToBf16(w1)), d2(ToBf16(w2)), dout(2 * n * d.hidden), dws(2 * n * 3 * d.ffn);
        h.Measure("expert", shape, Work(ExpertWork(m, d.hidden, d.ffn)), rot, [&](int i) {
          kernels::cuda::ExpertFfn(dx[i % rot].as<uint16_t>(), rows.data(), begin.data(), g, d.hidden, d.ffn,
                                   d1.as<uint16_t>(), d2.as<uint16_t>(), dout.as<uint16_t>(), dws.as<uint16_t>(), h.ctx);
        });
      }
#endif
      // Per expert: the group ran g experts of m tokens each.
      Case& c = h.cases().back();
      for (double& s : c.samples_s) s /= g;
      c.work.time_s /= g;
      c.p10_s /= g;
      c.p90_s /= g;
      h.Progress("expert", ++done, total);
    }
  }
}

}  // namespace

EPSIM_REGISTER_OP(expert, "expert", "expert FFN per expert: grouped GEMM gate/up, SwiGLU, down", 40, Check, Run);

}  // namespace calib
}  // namespace epsim
