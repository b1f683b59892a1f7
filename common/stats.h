// epsim common: summary statistics of samples (every one takes its vector by value).
#ifndef EPSIM_COMMON_STATS_H_
#define EPSIM_COMMON_STATS_H_

#include <vector>

namespace epsim {

// Arithmetic mean; 0 for no values.
double Mean(const std::vector<double>& values);
// max / mean, the skew of a load vector; 0 when the mean is not positive.
double MaxOverMean(const std::vector<double>& values);
// Nearest-rank percentile (q in [0, 100]): the smallest value with at least q% of the
// values at or below it, as reports give p50 / p99 over steps. 0 for no values.
double PercentileNearestRank(std::vector<double> values, double q);
// Linearly interpolated quantile (q in [0, 1]) between the sorted values, as timing
// harnesses report medians and p10 / p90 of samples. 0 for no values.
double Quantile(std::vector<double> values, double q);
// The middle value, or the mean of the two middle ones.
double Median(std::vector<double> values);

}  // namespace epsim

#endif  // EPSIM_COMMON_STATS_H_
