// epsim fuzzing: what each loader target does with one input, shared by the libFuzzer
// targets (tools/fuzz/fuzz_*.cc) and the regression test that replays the inputs they found
// (tests/robustness/regression_test.cc).
//
// A loader may accept its input or refuse it with a ConfigError (which the CLI prints as one
// line and exit status 2). Anything else that escapes -- a YAML::Exception, std::out_of_range,
// std::bad_alloc -- would end `epsim` through std::terminate (SIGABRT), so it is a finding:
// these functions let it propagate. Sanitizer reports are findings too.
#ifndef EPSIM_TOOLS_FUZZ_FUZZ_TARGETS_H_
#define EPSIM_TOOLS_FUZZ_FUZZ_TARGETS_H_

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "calibrate/profile.h"
#include "sim/config.h"
#include "sim/scenario.h"
#include "sim/simulation.h"
#include "sim/sweep.h"
#include "sim/topology.h"

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
  static const std::string path = [] {
    const char* dir = std::getenv("TEST_TMPDIR");
    return std::string(dir != nullptr ? dir : "/tmp") + "/epsim_fuzz_scenario." +
           std::to_string(getpid()) + ".yaml";
  }();
  std::vector<std::pair<std::string, std::string>> overrides;
  if (text.rfind("--", 0) == 0) {
    const size_t newline = text.find('\n');
    std::istringstream flags(text.substr(0, newline));
    std::string flag, value;
    while (flags >> flag && flags >> value) overrides.emplace_back(flag, value);
    text = newline == std::string::npos ? "" : text.substr(newline + 1);
  }
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) throw std::runtime_error("cannot write " + path);
  std::fwrite(text.data(), 1, text.size(), f);
  std::fclose(f);
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
// epsim-calibrate writes, the simulator must read back).
inline void RunProfileInput(const std::string& text) {
  epsim::Profile profile;
  try {
    profile = epsim::ParseProfile(text, "fuzz.yaml");
  } catch (const epsim::ConfigError&) {
    return;
  }
  for (const char* op : {"route", "permute", "expert", "combine"})
    (void)profile.Op(op).TimeS(1e9, 1e6, 128);
  const std::string written = epsim::FormatProfile(profile, "# fuzz round trip\n");
  try {
    epsim::ParseProfile(written, "roundtrip.yaml");
  } catch (const epsim::ConfigError& e) {
    throw Finding(std::string("round trip refused: ") + e.what() + "\n--- written ---\n" + written);
  }
}

// The target named `kind` ("topology", "scenario", "sweep", "profile"); false if unknown.
inline bool RunInput(const std::string& kind, const std::string& text) {
  if (kind == "topology") RunTopologyInput(text);
  else if (kind == "scenario") RunScenarioInput(text);
  else if (kind == "sweep") RunSweepInput(text);
  else if (kind == "profile") RunProfileInput(text);
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

#endif  // EPSIM_TOOLS_FUZZ_FUZZ_TARGETS_H_
