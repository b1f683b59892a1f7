// epsim fuzzing: what each loader target does with one input, shared by the libFuzzer
// targets (tests/fuzz/fuzz_*.cc, built by tools/fuzz/build_and_run.sh) and the regression test that replays the inputs they found
// (tests/robustness/regression_test.cc).
//
// A loader may accept its input or refuse it with a ConfigError (which the CLI prints as one
// line and exit status 2). Anything else that escapes -- a YAML::Exception, std::out_of_range,
// std::bad_alloc -- would end `epsim` through std::terminate (SIGABRT), so it is a finding:
// these functions let it propagate. Sanitizer reports are findings too.
#ifndef EPSIM_TESTS_FUZZ_FUZZ_TARGETS_H_
#define EPSIM_TESTS_FUZZ_FUZZ_TARGETS_H_

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "calibrate/fit.h"
#include "calibrate/nccl_tests.h"
#include "calibrate/profile/profile.h"
#include "common/error.h"
#include "common/yaml.h"
#include "sim/config/inputs.h"
#include "sim/config/scenario.h"
#include "sim/config/topology.h"
#include "sim/report/fabric_check.h"
#include "sim/sweep/sweep_spec.h"
#include "sim/workload/placement.h"
#include "sim/workload/routing_plan.h"
#include "sim/workload/routing_spec.h"
#include "sim/workload/routing_trace.h"
#include "sim/workload/sampler.h"

namespace epsim_fuzz {

// Inputs above this size only slow the fuzzer down; real configuration files are < 8 KiB.
constexpr size_t kMaxInputBytes = 64 * 1024;
// Sweep grids up to this size are expanded; ExpandSweep of the 1,000,000 runs the loader
// allows takes seconds and hundreds of MB, which would only report as a fuzzer timeout.
constexpr int64_t kMaxExpandedRuns = 2000;

// A finding that is not a crash by itself (e.g. a profile that does not survive its own
// round trip): the fuzz targets abort on it, the regression test fails.
class Finding : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

// A per-process scratch file for loaders that read a path ("epsim_fuzz_<name>.<pid><ext>" in
// TEST_TMPDIR or /tmp), holding `text`.
inline const std::string& WriteScratch(const std::string& name, const std::string& ext,
                                       const std::string& text, std::string* path_cache) {
  if (path_cache->empty()) {
    const char* dir = std::getenv("TEST_TMPDIR");
    *path_cache = std::string(dir != nullptr ? dir : "/tmp") + "/epsim_fuzz_" + name + "." +
                  std::to_string(getpid()) + ext;
  }
  FILE* f = std::fopen(path_cache->c_str(), "wb");
  if (f == nullptr) throw std::runtime_error("cannot write " + *path_cache);
  std::fwrite(text.data(), 1, text.size(), f);
  std::fclose(f);
  return *path_cache;
}

// ParseTopology on the text; what the simulator derives from an accepted topology must be
// computable.
inline void RunTopologyInput(const std::string& text) {
  try {
    epsim::Topology t = epsim::ParseTopology(text, "fuzz.yaml");
    for (int g = 0; g < t.total_gpus() && g < 4096; g += 1 + t.total_gpus() / 64) {
      (void)t.NodeOf(g);
      (void)t.DomainOf(g);
      if (t.scale_out.nics_per_node > 0) (void)t.NicOf(g);
    }
    epsim::CheckGpusFit(t, 64, "fuzz.yaml", "workload.gpus");
  } catch (const epsim::ConfigError&) {
  }
}

// LoadScenario reads a path, so the text is written to a per-process file first; an accepted
// scenario then goes through ResolveInputs (bundled topology and profile, cross-file checks,
// the memory estimate), as `epsim simulate` does before it runs anything. A first
// line that starts with "--" holds "--flag value" pairs: command-line overrides, so that
// flag parsing and the file/flag merge are fuzzed too.
inline void RunScenarioInput(std::string text) {
  static std::string path;
  std::vector<std::pair<std::string, std::string>> overrides;
  if (text.rfind("--", 0) == 0) {
    const size_t newline = text.find('\n');
    std::istringstream flags(text.substr(0, newline));
    std::string flag, value;
    while (flags >> flag && flags >> value) overrides.emplace_back(flag, value);
    text = newline == std::string::npos ? "" : text.substr(newline + 1);
  }
  WriteScratch("scenario", ".yaml", text, &path);
  try {
    epsim::Scenario s = epsim::LoadScenario(path, overrides);
    (void)s.Fields();
    (void)epsim::Scenario::TokenBytes(s.dispatch_dtype, s.hidden);
    (void)epsim::ResolveInputs(s);
  } catch (const epsim::ConfigError&) {
  }
}

// ParseSweepText, then the grid expansion and run arguments of small grids.
inline void RunSweepInput(const std::string& text) {
  try {
    epsim::SweepSpec spec = epsim::ParseSweepText(text, "fuzz.yaml");
    (void)spec.Columns();
    if (spec.NumRuns() <= kMaxExpandedRuns) {
      for (const epsim::SweepRun& run : epsim::ExpandSweep(spec)) (void)epsim::SweepRunArgs(spec, run);
    }
  } catch (const epsim::ConfigError&) {
  }
}

// ParseProfile; a profile it accepts must survive FormatProfile -> ParseProfile (what
// epsim-calibrate writes, the simulator must read back), and its all-to-all goes through
// `epsim fabric-check` on one 8-GPU NVLink box (refused with a ConfigError, or replayed).
inline void RunProfileInput(const std::string& text) {
  epsim::Profile profile;
  try {
    profile = epsim::ParseProfile(text, "fuzz.yaml");
  } catch (const epsim::ConfigError&) {
    return;
  }
  for (const char* op : {"route", "permute", "expert", "combine"})
    (void)profile.Op(op).TimeS(1e9, 1e6, 128);
  static const epsim::Topology box = epsim::ParseTopology(
      "name: box\ngpu: h100\nnodes: 1\ngpus_per_node: 8\n"
      "scale_up: {domain_gpus: 8, bandwidth: 450GB/s, latency: 1us}\n",
      "box.yaml");
  try {
    (void)epsim::FabricCheckReport(profile, "fuzz.yaml", box);
  } catch (const epsim::ConfigError&) {
  }
  const std::string written = epsim::FormatProfile(profile, "# fuzz round trip\n");
  try {
    epsim::ParseProfile(written, "roundtrip.yaml");
  } catch (const epsim::ConfigError& e) {
    throw Finding(std::string("round trip refused: ") + e.what() + "\n--- written ---\n" + written);
  }
}

// A routing trace CSV (`workload.routing: trace:FILE`) through LoadRoutingTrace, which
// accepts it or refuses it with a ConfigError naming the file, line and column. A first line "# experts E top_k K" sets the model the trace
// is read for (E in [1, 4096], K in [1, min(E, 16)]; default 32 and 4, as the seeds in
// tests/fuzz/corpus/routing_trace/ assume). An accepted trace must be self-consistent and
// drive SampleRouting for its first steps (on min(E, 4) GPUs, 8 tokens each) with every
// assignment accounted for: anything else is a finding.
inline void RunRoutingTraceInput(std::string text) {
  int experts = 32, top_k = 4;
  if (text.rfind("# experts ", 0) == 0) {
    const size_t newline = text.find('\n');
    long e = 0, k = 0;
    if (std::sscanf(text.substr(0, newline).c_str(), "# experts %ld top_k %ld", &e, &k) == 2) {
      experts = static_cast<int>(std::clamp<long>(e, 1, 4096));
      top_k = static_cast<int>(std::clamp<long>(k, 1, std::min(experts, 16)));
    }
    text = newline == std::string::npos ? "" : text.substr(newline + 1);
  }
  static std::string path;
  WriteScratch("trace", ".csv", text, &path);
  epsim::RoutingSpec spec;
  try {
    epsim::LoadRoutingTrace(spec, path, experts, top_k);
  } catch (const epsim::ConfigError&) {
    return;
  }
  // What the sampler relies on.
  const int steps = spec.TraceSteps();
  if (spec.kind != epsim::RoutingSpec::Kind::kTrace || steps < 1) throw Finding("accepted a trace without steps");
  if (spec.IsTokenTrace()) {
    if (spec.trace_top_k != top_k || spec.trace_step_begin.size() != static_cast<size_t>(steps) + 1 ||
        spec.trace_step_begin.front() != 0 ||
        static_cast<size_t>(spec.trace_step_begin.back()) * top_k != spec.trace_choices.size())
      throw Finding("per-token trace: step index and choices disagree");
    for (size_t s = 0; s + 1 < spec.trace_step_begin.size(); ++s)
      if (spec.trace_step_begin[s + 1] <= spec.trace_step_begin[s]) throw Finding("per-token trace: an empty step");
    for (int32_t e : spec.trace_choices)
      if (e < 0 || e >= experts) throw Finding("per-token trace: expert " + std::to_string(e) + " out of range");
  } else {
    // Every layer's counts (a trace with a layer column; else the one set).
    std::vector<std::vector<std::vector<double>>> layers = spec.trace_layer_weights;
    if (layers.empty()) layers.push_back(spec.trace_weights);
    if (spec.IsLayeredTrace() && spec.trace_weights != layers[0]) throw Finding("layered trace: layer 0 is not the default");
    for (const std::vector<std::vector<double>>& layer : layers) {
      if (layer.empty()) throw Finding("layered trace: a layer without steps");
      for (const std::vector<double>& w : layer) {
        double total = 0;
        for (double x : w) {
          if (!(x >= 0) || !std::isfinite(x)) throw Finding("counts trace: a weight not finite and >= 0");
          total += x;
        }
        if (w.size() != static_cast<size_t>(experts) || !(total > 0) || !std::isfinite(total))
          throw Finding("counts trace: a step without a usable distribution");
      }
    }
    if (spec.IsLayeredTrace()) spec = spec.ForLayer(static_cast<int>(layers.size()) - 1);  // sample the last layer's
  }
  epsim::RoutingParams params;
  params.spec = spec;
  params.tokens_per_gpu = 8;
  params.top_k = top_k;
  params.seed = 1;
  const epsim::Placement placement = epsim::Placement::Contiguous(experts, std::min(experts, 4));
  for (int step = 0; step < std::min(steps, 3); ++step) {
    epsim::RoutingPlan plan;
    try {
      plan = epsim::SampleRouting(params, placement, step);
    } catch (const std::invalid_argument& e) {
      throw Finding(std::string("accepted by the loader, refused by SampleRouting: ") + e.what());
    }
    int64_t assigned = 0;
    for (int e = 0; e < experts; ++e) assigned += plan.expert_kept[e] + plan.expert_dropped[e];
    if (assigned != int64_t{8} * placement.num_gpus() * top_k || plan.assignments != assigned)
      throw Finding("SampleRouting lost assignments: " + std::to_string(assigned) + " of " +
                    std::to_string(int64_t{8} * placement.num_gpus() * top_k));
  }
}

// nccl-tests output through ReadNcclTests (`epsim-calibrate --import`, read as alltoall_perf
// output), which accepts it or refuses it with a ConfigError naming the file and line; what
// it accepts must be rows the all-to-all fit takes: 2 or more ranks, every row with peers in
// 1..ranks-1 and positive, finite bytes and time; the fit of 2+ rows must be finite.
inline void RunNcclTestsInput(const std::string& text) {
  static std::string path;
  WriteScratch("nccl_tests", ".txt", text, &path);
  epsim::NcclTestsRun run;
  try {
    run = epsim::ReadNcclTests("alltoall_perf:" + path);
  } catch (const epsim::ConfigError&) {
    return;
  }
  if (run.num_ranks < 2 || run.rows.empty()) throw Finding("accepted a run without 2 ranks and a row");
  std::vector<epsim::AllToAllPoint> points;
  for (const epsim::AllToAllModel::Row& row : run.rows) {
    if (row.peers < 1 || row.peers > run.num_ranks - 1 || !(row.bytes_sent > 0) || !std::isfinite(row.bytes_sent) ||
        !(row.time_s > 0) || !std::isfinite(row.time_s))
      throw Finding("accepted a row the fit cannot take");
    points.push_back({static_cast<double>(row.peers), row.bytes_sent, row.time_s});
  }
  if (points.size() < 2) return;
  const epsim::AllToAllFit fit = epsim::FitAllToAll(points);
  if (!std::isfinite(fit.fixed_s) || !std::isfinite(fit.per_message_s) || !(fit.bandwidth_Bps > 0))
    throw Finding("the fit of accepted rows is not finite");
}

// The target named `kind` ("topology", "scenario", "sweep", "profile", "routing_trace",
// "nccl_tests"); false if unknown.
inline bool RunInput(const std::string& kind, const std::string& text) {
  if (kind == "topology") RunTopologyInput(text);
  else if (kind == "scenario") RunScenarioInput(text);
  else if (kind == "sweep") RunSweepInput(text);
  else if (kind == "profile") RunProfileInput(text);
  else if (kind == "routing_trace") RunRoutingTraceInput(text);
  else if (kind == "nccl_tests") RunNcclTestsInput(text);
  else return false;
  return true;
}

// The body of each LLVMFuzzerTestOneInput.
inline int FuzzOne(const char* kind, const uint8_t* data, size_t size) {
  if (size > kMaxInputBytes) return 0;
  try {
    RunInput(kind, std::string(reinterpret_cast<const char*>(data), size));
  } catch (const Finding& e) {
    std::fprintf(stderr, "finding: %s\n", e.what());
    std::abort();
  }
  return 0;
}

}  // namespace epsim_fuzz

#endif  // EPSIM_TESTS_FUZZ_FUZZ_TARGETS_H_
