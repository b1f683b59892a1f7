// epsim tests: summary statistics (common/stats.h), against hand-worked values.
#include <gtest/gtest.h>

#include "common/stats.h"

namespace epsim {
namespace {

TEST(StatsTest, MeansAndSkew) {
  EXPECT_EQ(Mean({}), 0);
  EXPECT_EQ(Mean({1, 2, 6}), 3);
  EXPECT_EQ(MaxOverMean({1, 2, 6}), 2);
  EXPECT_EQ(MaxOverMean({0, 0}), 0);
}

TEST(StatsTest, NearestRankPercentiles) {
  const std::vector<double> v = {5, 1, 4, 2, 3};  // sorted 1 2 3 4 5
  EXPECT_EQ(PercentileNearestRank(v, 50), 3);      // ceil(2.5) = 3rd
  EXPECT_EQ(PercentileNearestRank(v, 99), 5);
  EXPECT_EQ(PercentileNearestRank(v, 0), 1);
  EXPECT_EQ(PercentileNearestRank({7, 8}, 50), 7);  // ceil(1) = 1st
}

TEST(StatsTest, InterpolatedQuantilesAndMedian) {
  EXPECT_EQ(Quantile({1, 2, 3, 4}, 0.5), 2.5);
  EXPECT_DOUBLE_EQ(Quantile({0, 10}, 0.1), 1.0);
  EXPECT_EQ(Median({3, 1, 2}), 2);
  EXPECT_EQ(Median({4, 1, 3, 2}), 2.5);
  EXPECT_EQ(Median({}), 0);
}

}  // namespace
}  // namespace epsim
