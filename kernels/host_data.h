// epsim kernels: host-side vectors around the EP-layer operations, shared by the calibrator
// (calibrate/op_*.cc) and the kernel tests (tests/kernels/): the dispatch layout's output
// arrays held in vectors, bf16 <-> fp32 conversion of whole vectors, fp8 (E4M3) decoding and
// the per-expert transposes of fp8 weights, and the error measure both use to compare a bf16
// or fp8 kernel with its fp32 reference.
//
// One definition on purpose, as kernels/random_data.h: the calibrator's correctness checks
// and the tests then judge the kernels by the same measure.
#ifndef EPSIM_KERNELS_HOST_DATA_H_
#define EPSIM_KERNELS_HOST_DATA_H_

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "kernels/ep_ops.h"

namespace epsim {
namespace kernels {

// The output arrays of DispatchLayout for `num_slots` (token, expert) slots, held in
// vectors of the sizes LayoutOut documents; Out() points a LayoutOut at them.
struct LayoutBuffers {
  std::vector<int32_t> per_expert, dropped, expert_begin, copies_per_rank, tokens_per_rank,
      rank_begin, slot_to_row, row_to_slot;
  LayoutBuffers(int64_t num_slots, int num_experts, int num_ranks)
      : per_expert(num_experts), dropped(num_experts), expert_begin(num_experts),
        copies_per_rank(num_ranks), tokens_per_rank(num_ranks), rank_begin(num_ranks + 1),
        slot_to_row(num_slots), row_to_slot(num_slots) {}
  LayoutOut Out() {
    return {per_expert.data(),      dropped.data(),         expert_begin.data(),
            copies_per_rank.data(), tokens_per_rank.data(), rank_begin.data(),
            slot_to_row.data(),     row_to_slot.data()};
  }
};

// Every element rounded to bf16 (FloatToBf16: round to nearest even).
inline std::vector<uint16_t> ToBf16(const std::vector<float>& values) {
  std::vector<uint16_t> out(values.size());
  for (size_t i = 0; i < values.size(); ++i) out[i] = FloatToBf16(values[i]);
  return out;
}

// Every bf16 element widened to fp32 (exact).
inline std::vector<float> FromBf16(const std::vector<uint16_t>& values) {
  std::vector<float> out(values.size());
  for (size_t i = 0; i < values.size(); ++i) out[i] = Bf16ToFloat(values[i]);
  return out;
}

// One fp8 E4M3 value (OCP FP8 / __nv_fp8_e4m3: sign, 4 exponent bits with bias 7, 3
// mantissa bits; exponent 0 subnormal; S.1111.111 NaN, no infinities) widened to fp32 (exact).
inline float Fp8E4M3ToFloat(uint8_t bits) {
  const int exponent = (bits >> 3) & 0xF, mantissa = bits & 0x7;
  const float sign = (bits & 0x80) ? -1.0f : 1.0f;
  if (exponent == 0xF && mantissa == 0x7) return std::numeric_limits<float>::quiet_NaN();
  if (exponent == 0) return sign * std::ldexp(static_cast<float>(mantissa), -9);  // m / 8 x 2^-6
  return sign * std::ldexp(1.0f + mantissa / 8.0f, exponent - 7);
}

inline std::vector<float> FromFp8E4M3(const std::vector<uint8_t>& values) {
  std::vector<float> out(values.size());
  for (size_t i = 0; i < values.size(); ++i) out[i] = Fp8E4M3ToFloat(values[i]);
  return out;
}

// Row-major [batch][rows][cols] as [batch][cols][rows] (fp8 GEMMs take weights K-contiguous).
inline std::vector<float> TransposeEach(const std::vector<float>& values, int64_t batch, int64_t rows, int64_t cols) {
  std::vector<float> out(values.size());
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c) out[(b * cols + c) * rows + r] = values[(b * rows + r) * cols + c];
  return out;
}

// Largest |got - want| over the largest |want|: the bf16 error measure (an elementwise
// relative error is meaningless for sums that cancel). Infinite when the sizes differ or a
// difference is NaN, so that a check `error < limit` fails on them.
inline double NormalizedMaxError(const std::vector<float>& got, const std::vector<float>& want) {
  constexpr double kFail = std::numeric_limits<double>::infinity();
  if (got.size() != want.size()) return kFail;
  double error = 0, scale = 1e-30;
  for (size_t i = 0; i < got.size(); ++i) {
    const double diff = std::fabs(double(got[i]) - double(want[i]));
    if (std::isnan(diff)) return kFail;
    error = std::max(error, diff);
    scale = std::max(scale, std::fabs(double(want[i])));
  }
  return error / scale;
}

}  // namespace kernels
}  // namespace epsim

#endif  // EPSIM_KERNELS_HOST_DATA_H_
