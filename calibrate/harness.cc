// epsim calibration: timing harness (see harness.h).
#include "calibrate/harness.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "common/stats.h"

#ifdef EPSIM_WITH_CUDA
#include "kernels/ep_ops_cuda.h"
#endif

namespace epsim {

std::vector<OpSpec>& OpRegistry() {
  static std::vector<OpSpec> registry;
  return registry;
}

int Harness::Rotations(double bytes_per_copy) const {
  if (bytes_per_copy <= 0) return 1;
  int n = static_cast<int>(std::ceil(2 * cache_bytes / bytes_per_copy));
  n = std::min<int>(n, static_cast<int>(rotation_limit_bytes / bytes_per_copy));
  return std::max(1, std::min(n, 64));
}

const Case& Harness::Measure(const std::string& op, const CaseShape& shape, const FitPoint& work,
                             int rotations, const std::function<void(int)>& fn) {
  Case c;
  c.op = op;
  c.shape = shape;
  c.work = work;
  c.rotations = rotations;
  if (backend == Backend::kCuda) {
#ifdef EPSIM_WITH_CUDA
    // One timed call sizes the repeats, then device events time each call.
    const double first = kernels::cuda::TimeOnStream(fn, warmup, 1, ctx.cuda_stream)[0];
    const int repeats = std::max(min_repeats, std::min(max_repeats, static_cast<int>(budget_per_case_s / std::max(first, 1e-7))));
    c.samples_s = kernels::cuda::TimeOnStream(fn, 0, repeats, ctx.cuda_stream);
#endif
  } else {
    using Clock = std::chrono::steady_clock;
    int call = 0;
    double first = 0;
    for (int i = 0; i < std::max(1, warmup); ++i) {
      const auto t0 = Clock::now();
      fn(call++);
      first = std::chrono::duration<double>(Clock::now() - t0).count();
    }
    const int repeats = std::max(min_repeats, std::min(max_repeats, static_cast<int>(budget_per_case_s / std::max(first, 1e-7))));
    for (int i = 0; i < repeats; ++i) {
      const auto t0 = Clock::now();
      fn(call++);
      c.samples_s.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
    }
  }
  c.work.time_s = Median(c.samples_s);
  c.p10_s = Quantile(c.samples_s, 0.1);
  c.p90_s = Quantile(c.samples_s, 0.9);
  cases_.push_back(std::move(c));
  return cases_.back();
}

bool Harness::Check(bool ok, const std::string& op, const std::string& what) {
  if (!ok) failures_.push_back(op + ": " + what);  // reported by the CLI after the checks
  return ok;
}

const std::string& CorruptOpForTest() {
  static const std::string op = [] {
    const char* v = std::getenv("EPSIM_CALIBRATE_CORRUPT_OP");
    return std::string(v != nullptr ? v : "");
  }();
  return op;
}

bool Harness::ShouldCorrupt(const std::string& op, size_t n) {
  // Once per process: one wrong element is enough for the check to catch, and the test
  // can then expect exactly one failure line.
  if (corrupted_ || n == 0 || op != CorruptOpForTest()) return false;
  corrupted_ = true;
  return true;
}

void Harness::CorruptForTest(const std::string& op, float* data, size_t n) {
  if (!ShouldCorrupt(op, n)) return;
  // Off by ten times the largest magnitude: beyond any tolerance, relative or absolute.
  float largest = 0;
  for (size_t i = 0; i < n; ++i) largest = std::max(largest, std::fabs(data[i]));
  data[0] += 1.0f + 10.0f * largest;
}

void Harness::CorruptForTest(const std::string& op, int32_t* data, size_t n) {
  if (ShouldCorrupt(op, n)) data[0] ^= 1;  // always a different value
}

void Harness::CorruptForTest(const std::string& op, uint8_t* data, size_t n) {
  if (ShouldCorrupt(op, n)) data[0] ^= 1;
}

void Harness::Skip(const std::string& op, const std::string& why) {
  skipped_.push_back(op + ": " + why);
  std::fprintf(stderr, "epsim-calibrate: skipped %s: %s\n", op.c_str(), why.c_str());
}

void Harness::Progress(const std::string& op, int done, int total) const {
  if (!progress || !isatty(2) || total <= 0) return;
  const int width = 30, filled = width * done / total;
  std::fprintf(stderr, "\r  %-8s [%s%s] %3d/%-3d", op.c_str(), std::string(filled, '#').c_str(),
               std::string(width - filled, ' ').c_str(), done, total);
  if (done == total) std::fprintf(stderr, "\r%*s\r", width + 24, "");
  std::fflush(stderr);
}

}  // namespace epsim
