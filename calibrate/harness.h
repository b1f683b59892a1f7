// epsim calibration: the shared timing harness and the table of measured operations.
//
// Each operation lives in its own small file (op_route.cc, op_layout.cc, op_permute.cc,
// op_expert.cc, op_combine.cc, op_a2a.cc) and registers an OpSpec with EPSIM_REGISTER_OP:
// a correctness check against naive loops and a timed sweep. The CLI runs every check
// before any timing, so a wrong kernel stops the run in seconds and nothing is written; the
// harness owns the timing loop, so a new operation never touches it (nccl-tests' common.cu
// plus one file per collective). Timing: untimed warm-up, then repeats sized to a
// time budget per case; device events on the GPU, each call after an L2 flush; inputs
// rotated over enough copies to exceed the last-level cache (L3 on the CPU, L2 on the GPU),
// so small sizes are not flattered; every sample kept, median and 10-90% spread reported.
#ifndef EPSIM_CALIBRATE_HARNESS_H_
#define EPSIM_CALIBRATE_HARNESS_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "calibrate/fit.h"
#include "calibrate/profile/profile.h"
#include "kernels/ep_ops.h"

namespace epsim {

enum class Backend { kCpu, kCuda };
// How much to sweep: kTiny (tests, seconds), kQuick (minutes), kFull.
enum class SweepLevel { kTiny, kQuick, kFull };

// The shape of one measured case (fields an operation does not use stay 0).
struct CaseShape {
  int64_t tokens = 0;       // tokens per GPU (route, layout, combine) or rows (permute, expert)
  int64_t hidden = 0;
  int64_t ffn = 0;
  int64_t experts = 0;      // total (route, layout) or local experts in the group (expert)
  int64_t top_k = 0;
  int64_t ranks = 0;
  int64_t bytes_per_peer = 0;
  int64_t peers = 0;        // a2a: peers each rank sends to (its messages)
  double skew = 0;
  std::string distribution; // expert: how the rows spread over the experts (uniform, zipf, hot)
  std::string dtype;        // expert: the GEMMs' input type (bf16, fp8; empty: not a GEMM case)
  std::vector<int64_t> rows;  // expert: each expert's rows
};

// One measured case: its shape, the simulator's work features, and every sample.
struct Case {
  std::string op;
  CaseShape shape;
  FitPoint work;              // flops, bytes, tokens as calibrate/profile/op_work.h counts them;
                              // work.time_s = median of the samples
  std::vector<double> samples_s;
  double p10_s = 0, p90_s = 0;
  int rotations = 1;
};

class Harness {
 public:
  Backend backend = Backend::kCpu;
  SweepLevel level = SweepLevel::kQuick;
  kernels::ExecContext ctx;   // threads (CPU) or stream and cuBLAS handle (CUDA)
  int warmup = 1;
  int min_repeats = 3;
  int max_repeats = 50;
  double budget_per_case_s = 0.25;  // timed seconds per case (repeats are sized to it)
  double cache_bytes = 32e6;        // last-level cache to defeat
  double rotation_limit_bytes = 1e9;
  bool progress = true;

  // Times a case: fn(i) performs call i (use i % rotations to pick the input copy).
  // Appends to cases() and returns it.
  const Case& Measure(const std::string& op, const CaseShape& shape, const FitPoint& work,
                      int rotations, const std::function<void(int)>& fn);
  // Copies of a `bytes_per_copy` input set that together exceed twice the cache (at least 1,
  // at most 64, within rotation_limit_bytes).
  int Rotations(double bytes_per_copy) const;
  // Records a wrong kernel result ("op: what" in failures()); the CLI then exits non-zero
  // without writing anything. Returns ok.
  bool Check(bool ok, const std::string& op, const std::string& what);
  // The fault-injection test hook (see CorruptOpForTest): when it names `op`, changes one
  // element of `data` (the first; floats far off, integers by one bit), once per process.
  // The operations call it on their CPU kernel's output in their check, before comparing.
  void CorruptForTest(const std::string& op, float* data, size_t n);
  void CorruptForTest(const std::string& op, int32_t* data, size_t n);
  void CorruptForTest(const std::string& op, uint8_t* data, size_t n);
  // Records an operation (or part) not measured, with the reason.
  void Skip(const std::string& op, const std::string& why);
  // Progress bar on stderr (a terminal only).
  void Progress(const std::string& op, int done, int total) const;

  std::vector<Case>& cases() { return cases_; }
  const std::vector<Case>& cases() const { return cases_; }
  const std::vector<std::string>& failures() const { return failures_; }
  const std::vector<std::string>& skipped() const { return skipped_; }
  AllToAllModel& a2a() { return a2a_; }

  // Picks by level: tiny, quick, full.
  template <typename T>
  T ByLevel(T tiny, T quick, T full) const {
    return level == SweepLevel::kTiny ? tiny : level == SweepLevel::kQuick ? quick : full;
  }

 private:
  bool ShouldCorrupt(const std::string& op, size_t n);

  std::vector<Case> cases_;
  std::vector<std::string> failures_, skipped_;
  AllToAllModel a2a_;
  bool corrupted_ = false;
};

// One measured operation.
struct OpSpec {
  std::string name;          // "route", ... (the profile's operation key)
  std::string description;
  int order = 0;             // run order
  std::function<void(Harness&)> check;  // against naive loops / the CPU reference (Harness::Check)
  std::function<void(Harness&)> run;    // the timed sweep (Harness::Measure)
};

std::vector<OpSpec>& OpRegistry();

struct OpRegistrar {
  explicit OpRegistrar(OpSpec spec) { OpRegistry().push_back(std::move(spec)); }
};

#define EPSIM_REGISTER_OP(var, ...) static ::epsim::OpRegistrar var##_registrar(::epsim::OpSpec{__VA_ARGS__})

// Fault injection, for tests only: the operation named by the environment variable
// EPSIM_CALIBRATE_CORRUPT_OP (empty when unset), whose CPU kernel output then gets one
// element corrupted in its correctness check (Harness::CorruptForTest). It exists so that
// tests/calibrate/calibrate_cli_test.cc can show that a kernel giving a wrong result is
// caught: exit 1, one line naming the operation and the mismatch, no file written. The
// variable is read here and nowhere else.
const std::string& CorruptOpForTest();


}  // namespace epsim

#endif  // EPSIM_CALIBRATE_HARNESS_H_
