// epsim calibration: "expert": the expert layer of one GPU (gate/up GEMM M x H x 2F, SwiGLU,
// down GEMM M x F x H over each of G local experts), timed whole over uneven rows per expert,
// as the grouped_gemm model (calibrate/profile/profile.h) prices it: the rows spread evenly,
// by Zipf (expert e gets a share 1 / (e + 1)) or with one hot expert taking half, each from 1
// to 16k rows per expert on average, in each dtype the backend has (CUDA: bf16, and fp8 through
// cuBLASLt where the GPU has it). Every histogram is checked before it is timed.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "calibrate/harness.h"
#include "calibrate/op_common.h"
#include "calibrate/profile/op_work.h"
#include "kernels/ep_ops.h"
#include "kernels/host_data.h"
#include "kernels/naive.h"

namespace epsim {
namespace calib {
namespace {

#ifdef EPSIM_WITH_CUDA
// fp8 (E4M3) copies on the device, rounded there from bf16 (kernels::cuda::Bf16ToFp8).
DeviceBuffer QuantizeFp8(const std::vector<float>& values, const kernels::ExecContext& ctx) {
  const DeviceBuffer bf16(ToBf16(values));
  DeviceBuffer fp8(values.size());
  kernels::cuda::Bf16ToFp8(bf16.as<uint16_t>(), static_cast<int64_t>(values.size()), fp8.as<uint8_t>(), ctx);
  kernels::cuda::StreamSynchronize(ctx.cuda_stream);  // before `bf16` is freed
  return fp8;
}

// An expert layer's weights in fp8, K-contiguous as the fp8 GEMMs take them
// (ExpertFfnFp8): w1[g][H][2F] and w2[g][F][H] transposed per expert.
struct Fp8Weights {
  DeviceBuffer gate_up, down;
  Fp8Weights(const std::vector<float>& w1, const std::vector<float>& w2, int g, int64_t hidden, int64_t ffn,
             const kernels::ExecContext& ctx)
      : gate_up(QuantizeFp8(kernels::TransposeEach(w1, g, hidden, 2 * ffn), ctx)),
        down(QuantizeFp8(kernels::TransposeEach(w2, g, ffn, hidden), ctx)) {}
};
#endif

void Check(Harness& h) {
  // Uneven counts, one expert empty; H and F multiples of 16 (the fp8 GEMMs need them).
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
    DeviceBuffer dx(ToBf16(xb)), d1(ToBf16(w1b)), d2(ToBf16(w2b)), dout(2 * n * hid),
        dws(kernels::cuda::ExpertFfnWorkspaceBytes(n, f, g));
    kernels::cuda::ExpertFfn(dx.as<uint16_t>(), rows.data(), begin.data(), g, hid, f, d1.as<uint16_t>(),
                             d2.as<uint16_t>(), dout.as<uint16_t>(), dws.as<void>(), h.ctx);
    kernels::cuda::StreamSynchronize(h.ctx.cuda_stream);
    const std::vector<float> want = kernels::naive::ExpertFfn(xb, rows, begin, hid, f, w1b, w2b);
    CheckWithin(h, "expert", "CUDA expert FFN differs from the CPU reference (normalized)",
                NormalizedMaxError(FromBf16(dout.Download<uint16_t>(n * hid)), want), 3e-2);
    if (kernels::cuda::Fp8GemmAvailable(nullptr)) {
      // fp8: the reference runs on the values the GPU quantized to (decoded here); the GPU
      // also rounds the SwiGLU output to fp8 (3 mantissa bits), hence the wider tolerance.
      const Fp8Weights q(w1, w2, g, hid, f, h.ctx);
      DeviceBuffer qx = QuantizeFp8(x, h.ctx), qws(kernels::cuda::ExpertFfnFp8WorkspaceBytes(n, f));
      kernels::cuda::StreamSynchronize(h.ctx.cuda_stream);
      const std::vector<float> x8 = kernels::FromFp8E4M3(qx.Download<uint8_t>(n * hid));
      const std::vector<float> w1_8 = kernels::TransposeEach(
          kernels::FromFp8E4M3(q.gate_up.Download<uint8_t>(g * hid * 2 * f)), g, 2 * f, hid);
      const std::vector<float> w2_8 =
          kernels::TransposeEach(kernels::FromFp8E4M3(q.down.Download<uint8_t>(g * f * hid)), g, hid, f);
      kernels::cuda::ExpertFfnFp8(qx.as<uint8_t>(), rows.data(), begin.data(), g, hid, f, q.gate_up.as<uint8_t>(),
                                  q.down.as<uint8_t>(), dout.as<uint16_t>(), qws.as<void>(), h.ctx);
      kernels::cuda::StreamSynchronize(h.ctx.cuda_stream);
      CheckWithin(h, "expert", "CUDA fp8 expert FFN differs from the CPU reference (normalized)",
                  NormalizedMaxError(FromBf16(dout.Download<uint16_t>(n * hid)),
                                     kernels::naive::ExpertFfn(x8, rows, begin, hid, f, w1_8, w2_8)),
                  0.1);
    }
  }
#endif
}

// `total` rows over `g` experts spread as `distribution` says, rounded by largest remainder
// (so they add up exactly): uniform, zipf (share of expert e proportional to 1 / (e + 1)),
// hot (expert 0 takes half, the rest share the other half evenly).
std::vector<int64_t> Histogram(const std::string& distribution, int g, int64_t total) {
  std::vector<double> share(g, 1.0);
  if (distribution == "zipf") {
    for (int e = 0; e < g; ++e) share[e] = 1.0 / (e + 1);
  } else if (distribution == "hot" && g > 1) {
    share.assign(g, 1.0 / (2 * (g - 1)));
    share[0] = 0.5;
  }
  double sum = 0;
  for (const double s : share) sum += s;
  std::vector<int64_t> rows(g);
  std::vector<std::pair<double, int>> remainders;
  int64_t assigned = 0;
  for (int e = 0; e < g; ++e) {
    const double exact = total * share[e] / sum;
    rows[e] = static_cast<int64_t>(std::floor(exact));
    assigned += rows[e];
    remainders.push_back({exact - rows[e], e});
  }
  std::stable_sort(remainders.begin(), remainders.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  for (int64_t i = 0; i < total - assigned; ++i) ++rows[remainders[i % g].second];
  return rows;
}

// The histogram a case is timed with is the one it claims: every row counted once, none
// negative, the offsets the kernel reads consistent, and the shape of its distribution.
bool HistogramIsRight(const std::string& distribution, const std::vector<int32_t>& rows,
                      const std::vector<int32_t>& begin, int64_t total) {
  int64_t sum = 0;
  for (size_t e = 0; e < rows.size(); ++e) {
    if (rows[e] < 0 || begin[e] != sum) return false;
    sum += rows[e];
  }
  if (sum != total) return false;
  if (distribution == "zipf") {
    for (size_t e = 1; e < rows.size(); ++e)
      if (rows[e] > rows[e - 1]) return false;
  }
  if (distribution == "hot" && rows.size() > 1 && std::llabs(2 * static_cast<int64_t>(rows[0]) - total) > 1) return false;
  return true;
}

void Run(Harness& h) {
  const bool gpu = h.backend == Backend::kCuda;
  struct Dims { int64_t hidden, ffn; };
  const std::vector<Dims> dims = h.ByLevel<std::vector<Dims>>(
      {{128, 96}}, gpu ? std::vector<Dims>{{4096, 1536}, {7168, 2048}} : std::vector<Dims>{{1024, 512}, {2048, 768}},
      gpu ? std::vector<Dims>{{2048, 1408}, {4096, 1536}, {7168, 2048}, {7168, 4096}}
          : std::vector<Dims>{{1024, 512}, {2048, 768}, {4096, 1024}});
  const int g = h.ByLevel(4, 8, 8);
  const std::vector<int64_t> per_expert = h.ByLevel<std::vector<int64_t>>(
      {1, 8, 64}, gpu ? std::vector<int64_t>{1, 8, 64, 256, 1024, 4096, 16384} : std::vector<int64_t>{1, 4, 16, 64, 128, 256, 512},
      gpu ? std::vector<int64_t>{1, 4, 16, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384}
          : std::vector<int64_t>{1, 4, 16, 64, 128, 256, 512, 1024, 2048});
  const std::vector<std::string> distributions = {"uniform", "zipf", "hot"};
  // The CPU reference computes in fp32; on the GPU bf16, and fp8 where cuBLASLt and the GPU
  // have it (compute capability 8.9 or newer).
  std::vector<std::string> dtypes = {gpu ? "bf16" : "fp32"};
#ifdef EPSIM_WITH_CUDA
  std::string no_fp8;
  if (gpu && kernels::cuda::Fp8GemmAvailable(&no_fp8)) {
    dtypes.push_back("fp8");
  } else if (gpu) {
    std::fprintf(stderr, "epsim-calibrate: expert: bf16 only (%s)\n", no_fp8.c_str());
  }
#endif
  const int total = static_cast<int>(dims.size() * dtypes.size() * per_expert.size() * distributions.size());
  int done = 0;
  for (const Dims& d : dims) {
    const std::vector<float> w1 = RandomVector(g * d.hidden * 2 * d.ffn, 11, 0.02f), w2 = RandomVector(g * d.ffn * d.hidden, 12, 0.02f);
    for (const std::string& dtype : dtypes) {
      const GemmDtype work_dtype = dtype == "fp8" ? GemmDtype::kFp8 : GemmDtype::kBf16;
#ifdef EPSIM_WITH_CUDA
      // The weights on the device, in the launch's dtype.
      DeviceBuffer d1, d2;
      if (gpu && dtype == "bf16") {
        d1 = DeviceBuffer(ToBf16(w1));
        d2 = DeviceBuffer(ToBf16(w2));
      } else if (gpu) {
        Fp8Weights q(w1, w2, g, d.hidden, d.ffn, h.ctx);
        d1 = std::move(q.gate_up);
        d2 = std::move(q.down);
      }
#endif
      for (const int64_t m : per_expert) {
        for (const std::string& distribution : distributions) {
          const int64_t n = g * m;
          const std::vector<int64_t> counts = Histogram(distribution, g, n);
          std::vector<int32_t> rows(g), begin(g);
          for (int e = 0; e < g; ++e) {
            rows[e] = static_cast<int32_t>(counts[e]);
            begin[e] = e == 0 ? 0 : begin[e - 1] + rows[e - 1];
          }
          if (!h.Check(HistogramIsRight(distribution, rows, begin, n), "expert",
                       "the " + distribution + " histogram of " + std::to_string(n) + " rows over " + std::to_string(g) +
                           " experts is not what it should be")) {
            continue;
          }
          CaseShape shape;
          shape.tokens = m;
          shape.hidden = d.hidden;
          shape.ffn = d.ffn;
          shape.experts = g;
          shape.distribution = distribution;
          shape.dtype = dtype;
          shape.rows = counts;
          // The work the simulator counts for this layer: its two grouped launches.
          const OpWork up = GroupedGemmWork(GateUpGemm(counts, d.hidden, d.ffn, work_dtype));
          const OpWork down = GroupedGemmWork(DownGemm(counts, d.hidden, d.ffn, work_dtype));
          const FitPoint work{up.flops + down.flops, up.bytes + down.bytes, static_cast<double>(m), 0};
          const double input_bytes = dtype == "fp8" ? 1.0 : gpu ? 2.0 : 4.0;
          const int rot = h.Rotations(n * d.hidden * input_bytes);
          std::vector<std::vector<float>> x;
          for (int r = 0; r < rot; ++r) x.push_back(RandomVector(n * d.hidden, 300 + r));
          if (!gpu) {
            std::vector<float> out(n * d.hidden), ws(n * 3 * d.ffn);
            h.Measure("expert", shape, work, rot, [&](int i) {
              kernels::cpu::ExpertFfn(x[i % rot].data(), rows.data(), begin.data(), g, d.hidden, d.ffn, w1.data(),
                                      w2.data(), out.data(), ws.data(), h.ctx);
            });
          }
#ifdef EPSIM_WITH_CUDA
          if (gpu && dtype == "bf16") {
            std::vector<DeviceBuffer> dx;
            for (int r = 0; r < rot; ++r) dx.emplace_back(ToBf16(x[r]));
            DeviceBuffer dout(2 * n * d.hidden), dws(kernels::cuda::ExpertFfnWorkspaceBytes(n, d.ffn, g));
            h.Measure("expert", shape, work, rot, [&](int i) {
              kernels::cuda::ExpertFfn(dx[i % rot].as<uint16_t>(), rows.data(), begin.data(), g, d.hidden, d.ffn,
                                       d1.as<uint16_t>(), d2.as<uint16_t>(), dout.as<uint16_t>(), dws.as<void>(), h.ctx);
            });
          } else if (gpu) {
            std::vector<DeviceBuffer> dx;
            for (int r = 0; r < rot; ++r) dx.push_back(QuantizeFp8(x[r], h.ctx));
            DeviceBuffer dout(2 * n * d.hidden), dws(kernels::cuda::ExpertFfnFp8WorkspaceBytes(n, d.ffn));
            h.Measure("expert", shape, work, rot, [&](int i) {
              kernels::cuda::ExpertFfnFp8(dx[i % rot].as<uint8_t>(), rows.data(), begin.data(), g, d.hidden, d.ffn,
                                          d1.as<uint8_t>(), d2.as<uint8_t>(), dout.as<uint16_t>(), dws.as<void>(),
                                          h.ctx);
            });
          }
#endif
          h.Progress("expert", ++done, total);
        }
      }
    }
  }
}

}  // namespace

EPSIM_REGISTER_OP(expert, "expert", "expert layer: gate/up, SwiGLU and down GEMMs over uneven rows per expert", 40, Check,
                  Run);

}  // namespace calib
}  // namespace epsim
