// epsim validation: the expert layer's grouped_gemm model (calibrate/profile/profile.h) with
// the bundled Hopper profiles, against GEMM measurements.
//
// 1. Its source: the nine cuBLASLt FP8 GEMMs measured on H100 (docs/calibration_sources.md
//    C.1, Azure) that efficiency_fp8, k_half and the floor were fitted to, and the 8192^3
//    bf16 GEMM on H200 the bf16 efficiency comes from: a check of the fit, not a validation.
// 2. Held out: DeepGEMM's published H800 FP8 tables (deepgemm_h800.yaml; fitted to nothing).
//    The model is meant for MoE experts: many experts in one grouped launch, each padded to
//    128 rows (the contiguous layout), or decode's masked layout. A dense GEMM of 64 or 128
//    rows is not that: DeepGEMM picks narrow N tiles to spread it over the SMs, which the
//    model's fixed 128 x 128 tiles do not, so it predicts those too slow (printed, pinned).
// 3. The other grouped GEMM rates the sources cite (C.1), fitted to nothing: printed.
// 4. Held out: dense bf16 GEMMs of few rows on H100 (vLLM #23280, docs/calibration_sources.md
//    G.2), the shape of the attention's projections in decode, against the model as they
//    price them (split K over idle SMs) and as a grouped launch (not split).
#include <gtest/gtest.h>

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "calibrate/profile/op_work.h"
#include "calibrate/profile/profile.h"

namespace epsim {
namespace {

// TFLOP/s the model gives `groups` experts of `m` rows on profile `p`'s expert model.
double ModelTflops(const Profile& p, int groups, int64_t m, double n, double k, GemmDtype dtype) {
  const GroupedGemm launch{std::vector<int64_t>(static_cast<size_t>(groups), m), n, k, dtype};
  return 2.0 * groups * m * n * k / p.Op("expert").GroupedGemmS(launch) / 1e12;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return (v[v.size() / 2] + v[(v.size() - 1) / 2]) / 2;
}

TEST(GemmValidationTest, TheFitReproducesItsSource) {
  const Profile h100 = LoadProfile("calibrate/profiles/h100.yaml");
  // docs/calibration_sources.md C.1: cuBLASLt FP8, ND H100 v5, m, n, k, TFLOPS.
  const double azure[][4] = {{1024, 1024, 1024, 274.1},    {2048, 2048, 2048, 1011.3},   {4096, 4096, 4096, 1216.9},
                             {8192, 8192, 8192, 1290.1},    {16384, 16384, 16384, 1377.3}, {32768, 32768, 32768, 1382.2},
                             {1024, 2145, 1024, 410.7},     {6144, 12288, 12288, 1351.4}, {802816, 192, 768, 663.8}};
  std::printf("\n# cuBLASLt FP8 on H100 (the fit's source, C.1): model vs measured TFLOP/s\n");
  double squares = 0;
  for (const auto& r : azure) {
    const double model = ModelTflops(h100, 1, static_cast<int64_t>(r[0]), r[1], r[2], GemmDtype::kFp8);
    const double error = r[3] / model - 1;  // time error: model time / measured time - 1
    std::printf("   %7.0f x %6.0f x %6.0f  %7.1f  %7.1f  %+6.1f%%\n", r[0], r[1], r[2], model, r[3], 100 * error);
    EXPECT_LT(std::fabs(error), 0.07) << r[0] << " " << r[1] << " " << r[2];
    squares += error * error;
  }
  EXPECT_LT(std::sqrt(squares / 9), 0.04);
  // The bf16 efficiency: 788 TFLOP/s for 8192^3 on H200 (epsim issue 2).
  const Profile h200 = LoadProfile("calibrate/profiles/h200.yaml");
  EXPECT_NEAR(ModelTflops(h200, 1, 8192, 8192, 8192, GemmDtype::kBf16), 788, 0.01 * 788);
}

TEST(GemmValidationTest, DeepGemmOnH800HeldOut) {
  const Profile h800 = LoadProfile("calibrate/profiles/h800.yaml");
  const YAML::Node ref = YAML::LoadFile("tests/validation/deepgemm_h800.yaml");
  std::printf("\n# DeepGEMM FP8 on H800 (held out): model vs published TFLOP/s; error in time\n");
  std::printf("#  layout      groups      M      N      K    model  published   error\n");
  for (const char* layout : {"contiguous", "masked", "normal"}) {
    std::vector<double> errors;
    for (const YAML::Node& r : ref["results"][layout]) {
      const int groups = r[0].as<int>();
      const int64_t m = r[1].as<int64_t>();
      const double n = r[2].as<double>(), k = r[3].as<double>(), published = r[4].as<double>();
      const double model = ModelTflops(h800, groups, m, n, k, GemmDtype::kFp8);
      const double error = published / model - 1;
      std::printf("   %-10s %6d %6lld %6.0f %6.0f %8.0f %10.0f %+7.0f%%\n", layout, groups, static_cast<long long>(m), n, k,
                  model, published, 100 * error);
      errors.push_back(error);
    }
    std::vector<double> magnitudes;
    for (double e : errors) magnitudes.push_back(std::fabs(e));
    const double median = Median(magnitudes), worst = *std::max_element(magnitudes.begin(), magnitudes.end());
    std::printf("#  %s: median |error| %.1f%%, max %.1f%%\n", layout, 100 * median, 100 * worst);
    // What the model does today.
    if (std::string(layout) == "contiguous") {
      EXPECT_LT(worst, 0.10);
    } else if (std::string(layout) == "masked") {
      EXPECT_LT(worst, 0.25);
    } else {
      // Large M within 25%; 64 and 128 rows too slow, by up to about 3x (header).
      for (size_t i = 0; i < errors.size(); ++i) {
        const int64_t m = ref["results"]["normal"][i][1].as<int64_t>();
        if (m >= 4096) {
          EXPECT_LT(std::fabs(errors[i]), 0.25) << i;
        } else {
          EXPECT_LT(errors[i], 3.0) << i;
        }
      }
    }
  }
}

TEST(GemmValidationTest, OtherCitedGroupedGemmRates) {
  // docs/calibration_sources.md C.1, fitted to nothing; printed with the model's rate.
  const Profile h200 = LoadProfile("calibrate/profiles/h200.yaml"), h100 = LoadProfile("calibrate/profiles/h100.yaml");
  // TileOPs#1567, H200 BF16, GLM-5 "up": N 4096, K 6144, 256 experts, M 262144 rows (1024 each):
  // 596 (3WG) to 658 (DeepGEMM) TFLOP/s, "clock-bound (sustained ~1.4 GHz ... vs 1.98 GHz peak)".
  const double tileops = ModelTflops(h200, 256, 1024, 4096, 6144, GemmDtype::kBf16);
  // grouped_gemm#37, H100 BF16, 128 experts, K 2048, N 1536, 65536 tokens (512 each):
  // cuBLAS 129.5, CUTLASS cooperative 160.5 TFLOP/s (uniform).
  const double qwen = ModelTflops(h100, 128, 512, 1536, 2048, GemmDtype::kBf16);
  std::printf("\n# other grouped GEMM rates the sources cite (C.1): model vs measured TFLOP/s\n");
  std::printf("   TileOPs H200 bf16 256 x 1024 x 4096 x 6144: model %.0f, measured 596-658\n", tileops);
  std::printf("   grouped_gemm#37 H100 bf16 128 x 512 x 1536 x 2048: model %.0f, measured 129.5 (cuBLAS) - 160.5 (CUTLASS)\n",
              qwen);
  EXPECT_GT(tileops, 596);  // above the clock-bound measurements, pinned
  EXPECT_LT(tileops, 900);
  EXPECT_GT(qwen, 3 * 160.5);  // a 3-4x disagreement with that source, pinned (see README, Accuracy)
}

TEST(GemmValidationTest, DenseGemmsOfFewRowsOnH100HeldOut) {
  const Profile h100 = LoadProfile("calibrate/profiles/h100.yaml");
  const OpModel& model = h100.Op("expert");
  // G.2: torch bf16 (cuBLAS), N 2112, K 7168: batch and TFLOP/s.
  const double vllm[][2] = {{1, 3.059417}, {16, 49.595406}, {64, 163.467729}, {128, 275.740510},
                            {1024, 619.771938}, {4096, 715.781529}};
  std::printf("\n# dense bf16 GEMMs on H100, N 2112, K 7168 (vLLM, held out): time in us\n");
  std::printf("#      M  measured  split K (error)  not split (error)\n");
  for (const auto& [m, tflops] : vllm) {
    const double measured = 2 * m * 2112 * 7168 / (tflops * 1e12);
    const std::vector<int64_t> rows = {static_cast<int64_t>(m)};
    const double split = model.GroupedGemmS({rows, 2112, 7168, GemmDtype::kBf16, true});
    const double whole = model.GroupedGemmS({rows, 2112, 7168, GemmDtype::kBf16, false});
    std::printf("   %5.0f  %8.2f  %7.2f (%+4.0f%%)  %8.2f (%+4.0f%%)\n", m, measured * 1e6, split * 1e6,
                100 * (split / measured - 1), whole * 1e6, 100 * (whole / measured - 1));
    // Pinned as measured: 1.19-1.40x slow up to 128 rows (the grouped kernel's 3 us launch
    // floor on a 10 us GEMM), 1.6x at 1024 (136 tiles in 2 waves, which cuBLAS's wider tiles
    // avoid), 1.13x at 4096; not split, up to 4.2x slow.
    EXPECT_GT(split / measured, 1.0) << m;
    EXPECT_LT(split / measured, m <= 128 ? 1.45 : 1.65) << m;
    if (m <= 128) {
      EXPECT_GT(whole / split, 2.4) << m;
    }
  }
}

}  // namespace
}  // namespace epsim
