// epsim tests: strict number parsing, units and formatting (common/numbers.h).
#include <gtest/gtest.h>

#include <stdexcept>

#include "common/numbers.h"

namespace epsim {
namespace {

TEST(NumbersTest, WholeNumbersTakeTheWholeText) {
  int64_t v = 0;
  EXPECT_TRUE(ParseInt64("42", &v));
  EXPECT_EQ(v, 42);
  EXPECT_TRUE(ParseInt64("-7", &v));
  EXPECT_EQ(v, -7);
  for (const char* bad : {"", "12abc", "1e3", "1.5", "99999999999999999999", "0x10 "}) {
    v = 5;
    EXPECT_FALSE(ParseInt64(bad, &v)) << bad;
    EXPECT_EQ(v, 5) << "untouched on failure: " << bad;
  }
}

TEST(NumbersTest, FiniteNumbersOnly) {
  double v = 0;
  EXPECT_TRUE(ParseFiniteDouble("1.25", &v));
  EXPECT_EQ(v, 1.25);
  EXPECT_TRUE(ParseFiniteDouble("1e-6", &v));
  EXPECT_EQ(v, 1e-6);
  for (const char* bad : {"", "nan", "inf", "1e999", "1.5x", " "}) EXPECT_FALSE(ParseFiniteDouble(bad, &v)) << bad;
}

TEST(NumbersTest, Formatting) {
  EXPECT_EQ(StrFormat("%d-%s", 3, "x"), "3-x");
  std::string out = "a";
  StrAppendFormat(&out, "%05.1f", 2.25);
  EXPECT_EQ(out, "a002.2");  // printf's round-half-even on the binary value 2.25
  EXPECT_EQ(FormatG(1.25), "1.25");
  EXPECT_EQ(FormatG(1e-6), "1e-06");
  // Longer than any fixed buffer: the whole text.
  EXPECT_EQ(StrFormat("%s", std::string(5000, 'z').c_str()).size(), 5000u);
}

TEST(UnitsTest, Bandwidth) {
  EXPECT_DOUBLE_EQ(ParseBandwidthBps("450GB/s"), 450e9);
  EXPECT_DOUBLE_EQ(ParseBandwidthBps("400Gbps"), 50e9);
  EXPECT_DOUBLE_EQ(ParseBandwidthBps("200Gb/s"), 25e9);
  EXPECT_DOUBLE_EQ(ParseBandwidthBps("3.35TB/s"), 3.35e12);
  EXPECT_THROW(ParseBandwidthBps("GB/s"), std::invalid_argument);
  EXPECT_THROW(ParseBandwidthBps("1e400GB/s"), std::invalid_argument);
}

TEST(UnitsTest, DurationAndSize) {
  EXPECT_DOUBLE_EQ(ParseDurationS("1.5us"), 1.5e-6);
  EXPECT_DOUBLE_EQ(ParseDurationS("130ns"), 130e-9);
  EXPECT_DOUBLE_EQ(ParseDurationS("2ms"), 2e-3);
  EXPECT_DOUBLE_EQ(ParseSizeBytes("80GB"), 80e9);
  EXPECT_DOUBLE_EQ(ParseSizeBytes("4KiB"), 4096);
  EXPECT_THROW(ParseDurationS("1 fortnight"), std::invalid_argument);
}

}  // namespace
}  // namespace epsim
