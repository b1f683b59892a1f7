// common/parallel: every part runs once, on any thread count; errors come back as on one
// thread; the ranges tile the items.
#include "common/parallel.h"

#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <string>
#include <vector>

namespace epsim {
namespace {

class ParallelTest : public ::testing::Test {
 protected:
  void TearDown() override { SetWorkerThreads(Cores()); }
};

TEST_F(ParallelTest, RunsEveryPartOnceOnAnyThreadCount) {
  for (const int threads : {1, 2, 3, 8}) {
    SetWorkerThreads(threads);
    EXPECT_EQ(WorkerThreads(), threads);
    for (const int parts : {0, 1, 2, 7, 100}) {
      std::vector<std::atomic<int>> calls(parts);
      ParallelFor(parts, [&](int part) { ++calls[part]; });
      for (int part = 0; part < parts; ++part) EXPECT_EQ(calls[part].load(), 1) << threads << " threads, part " << part;
    }
  }
}

TEST_F(ParallelTest, RangesTileTheItemsOnAnyThreadCount) {
  for (const int threads : {1, 3}) {
    SetWorkerThreads(threads);
    for (const size_t count : {0, 1, 5, 1000}) {
      std::vector<std::atomic<int>> calls(count);
      std::atomic<int> ranges{0};
      ParallelForRanges(count, [&](size_t begin, size_t end) {
        ++ranges;
        EXPECT_LE(begin, end);
        for (size_t i = begin; i < end; ++i) ++calls[i];
      });
      for (size_t i = 0; i < count; ++i) EXPECT_EQ(calls[i].load(), 1) << threads << " threads, item " << i;
      EXPECT_EQ(ranges.load(), RangesFor(count));
    }
  }
}

TEST_F(ParallelTest, AFewRangesPerThreadAtMostOnePerItem) {
  SetWorkerThreads(3);
  EXPECT_EQ(RangesFor(1000), 12);
  EXPECT_EQ(RangesFor(5), 5);
  EXPECT_EQ(RangesFor(0), 1);
}

TEST_F(ParallelTest, RethrowsTheLowestFailingPart) {
  for (const int threads : {1, 4}) {
    SetWorkerThreads(threads);
    try {
      ParallelFor(20, [&](int part) {
        if (part == 5 || part == 13) throw std::runtime_error("part " + std::to_string(part));
      });
      ADD_FAILURE() << "no exception";
    } catch (const std::runtime_error& e) {
      EXPECT_STREQ(e.what(), "part 5") << threads << " threads";
    }
  }
}

TEST_F(ParallelTest, AtLeastOneThread) {
  SetWorkerThreads(0);
  EXPECT_EQ(WorkerThreads(), 1);
  EXPECT_GE(Cores(), 1);
}

TEST_F(ParallelTest, PartRangesTileTheItemsInOrder) {
  // 10 items in 4 parts: sizes 3, 3, 2, 2.
  EXPECT_EQ(PartRange(10, 4, 0), std::make_pair(size_t{0}, size_t{3}));
  EXPECT_EQ(PartRange(10, 4, 1), std::make_pair(size_t{3}, size_t{6}));
  EXPECT_EQ(PartRange(10, 4, 2), std::make_pair(size_t{6}, size_t{8}));
  EXPECT_EQ(PartRange(10, 4, 3), std::make_pair(size_t{8}, size_t{10}));
  for (const size_t count : {0, 1, 5, 64, 1001}) {
    for (const int parts : {1, 2, 3, 7, 64}) {
      size_t next = 0;
      for (int p = 0; p < parts; ++p) {
        const auto [begin, end] = PartRange(count, parts, p);
        EXPECT_EQ(begin, next);
        EXPECT_LE(end - begin, count / parts + 1);
        EXPECT_GE(end - begin, count / parts);
        next = end;
      }
      EXPECT_EQ(next, count);
    }
  }
}

}  // namespace
}  // namespace epsim
