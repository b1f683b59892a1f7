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
// Form "alltoall": time = latency + bytes / bandwidth, fitted the same way (one branch).
#ifndef EPSIM_CALIBRATE_FIT_H_
#define EPSIM_CALIBRATE_FIT_H_

#include <cstdint>
#include <string>
#include <vector>

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
  bool linear_only = false;         // "alltoall": time = fixed + bytes / rate
};

// Fits the roofline form (or the linear alltoall form); throws std::invalid_argument when
// there are fewer than 2 points or a time is not positive.
FitResult FitRoofline(const std::vector<FitPoint>& points, const FitOptions& options);

}  // namespace epsim

#endif  // EPSIM_CALIBRATE_FIT_H_
