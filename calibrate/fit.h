// epsim calibration: fitting a cost model to measured times, with Eigen.
//
// Form "roofline" (calibrate/profile/profile.h, OpModel):
//   time = fixed + max(flops / (flop_rate * tokens / (tokens + half_rate_tokens)),
//                      bytes / mem_rate)
// Writing a = 1/flop_rate, c = half_rate_tokens/flop_rate, b = 1/mem_rate, the compute term
// is a*flops + c*flops/tokens: linear in (fixed, a, c, b) once each sample is assigned to the
// compute or the memory branch. The fit alternates branch assignment and a non-negative
// least-squares solve on relative residuals (every size counts alike), starting from every
// split of the samples by arithmetic intensity, inside Huber iteratively reweighted least
// squares so a few disturbed samples cannot drag the fit. Samples whose residual is beyond
// 3 robust standard deviations are reported as outliers. The held-out error is from k-fold
// cross-validation: each point predicted by a fit that did not see it.
//
// Form "alltoall" (FitAllToAll): time = fixed + messages x per_message + bytes / bandwidth,
// a non-negative relative least-squares fit of the three terms, the same k-fold held-out error.
#ifndef EPSIM_CALIBRATE_FIT_H_
#define EPSIM_CALIBRATE_FIT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "calibrate/profile/profile.h"

namespace epsim {

// One measured case: the model's features and the median time of its samples.
struct FitPoint {
  double flops = 0;
  double bytes = 0;
  double tokens = 0;
  double time_s = 0;
};

struct RooflineParams {
  double fixed_s = 0;
  double flop_rate_Fps = 0;     // +inf when no point constrains it (see *_bound)
  double mem_rate_Bps = 0;
  double half_rate_tokens = 0;
  double Time(const FitPoint& p) const;
};

struct FitResult {
  RooflineParams params;
  // A rate that no point was bound by is replaced by the lowest rate consistent with every
  // point (it never exceeds a measured time); these flags say so. A rate with no work at all
  // behind it (every flops 0) stays +inf and `*_unused` is set.
  bool flop_rate_bound = false, flop_rate_unused = false;
  bool mem_rate_bound = false, mem_rate_unused = false;
  double train_error_median = 0;    // |model - measured| / measured on the fitted points
  double heldout_error_median = -1; // the same on held-out points (k-fold); -1: too few
  double heldout_error_p90 = -1;
  int folds = 0;
  std::vector<int> outliers;        // indices of points flagged as outliers
};

struct FitOptions {
  int folds = 5;
  double huber_k = 1.345;           // in robust standard deviations
  double outlier_sigmas = 3.0;
  uint32_t seed = 1;
};

// Fits the roofline form; throws std::invalid_argument when there are fewer than 2 points or
// a time is not positive.
FitResult FitRoofline(const std::vector<FitPoint>& points, const FitOptions& options);

// One measured all-to-all: a rank sends `messages` messages (to as many peers) of `bytes`
// to others in all, in `time_s` (the slowest rank's median).
struct AllToAllPoint {
  double messages = 0;
  double bytes = 0;
  double time_s = 0;
};

struct AllToAllFit {
  double fixed_s = 0;
  double per_message_s = 0;
  double bandwidth_Bps = 0;
  // Every point had the same number of messages, so the per-message cost cannot be told
  // from the fixed cost: it is 0 and the fixed cost holds both.
  bool per_message_unresolved = false;
  double heldout_error_median = -1;
  double heldout_error_p90 = -1;
  double Time(const AllToAllPoint& p) const { return fixed_s + p.messages * per_message_s + p.bytes / bandwidth_Bps; }
};

// Fits fixed, per-message and bandwidth terms (each >= 0, the bandwidth finite) minimizing the
// relative error; throws std::invalid_argument with fewer than 2 points, a time that is not
// positive, or no point moving bytes.
AllToAllFit FitAllToAll(const std::vector<AllToAllPoint>& points, int folds = 5, uint32_t seed = 1);

// Form "grouped_gemm" (FitGroupedGemm): one measured expert layer, gate/up then down over
// the experts' uneven rows (calibrate/profile/op_work.h), in `time_s`.
struct GroupedGemmPoint {
  std::vector<int64_t> rows;
  double hidden = 0;
  double ffn = 0;
  double time_s = 0;
  GemmDtype dtype = GemmDtype::kBf16;
};

// The kernel's grid, as the device reports it: the fit leaves it alone.
struct GemmGrid {
  int sms = 1;
  int row_tile = 1;
  int col_tile = 1;
};

struct GroupedGemmFit {
  // A grouped_gemm model (profile.h): fixed, the long-K rate as peak_bf16 with efficiency 1
  // (a calibration measures rates, not the datasheet peak), k_half, mem_rate; with fp8
  // points, their long-K rate as peak_fp8 (efficiency_fp8 1), the rest shared.
  OpModel model;
  bool rate_bound = false;      // no bf16 launch was compute-bound: the lowest rate no case contradicts
  bool mem_bound = false;       // no launch was memory-bound: likewise for mem_rate
  bool rate_fp8_bound = false;  // no fp8 launch was compute-bound: likewise for the fp8 rate
  double train_error_median = 0;
  double heldout_error_median = -1;
  double heldout_error_p90 = -1;
  int folds = 0;
};

// Fits fixed, rate, k_half (over a grid of 0 to 4096) and mem_rate to the bf16 points,
// minimizing the relative error of each layer's time, then the fp8 rate to the fp8 points
// with the other terms fixed (one kernel family on one GPU: the tensor-core rate is what fp8
// changes). Held-out errors cover both dtypes. Throws std::invalid_argument with fewer than
// 2 bf16 points, a time that is not positive, or a point without rows.
GroupedGemmFit FitGroupedGemm(const std::vector<GroupedGemmPoint>& points, const GemmGrid& grid, int folds = 5,
                              uint32_t seed = 1);

}  // namespace epsim

#endif  // EPSIM_CALIBRATE_FIT_H_
