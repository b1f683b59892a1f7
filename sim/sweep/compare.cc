// epsim sweep: strategy comparison table (see compare.h).
#include "sim/sweep/compare.h"

#include <algorithm>
#include <cstdio>
#include <map>

#include "common/error.h"
#include "common/files.h"
#include "common/numbers.h"
#include "common/stats.h"
#include "sim/config/scenario.h"

namespace epsim {
namespace {

SweepField FieldOfFlag(const std::string& flag, const std::string& written) {
  for (const auto& [f, key] : ScenarioFlags()) {
    if (f != flag) continue;
    const size_t dot = key.rfind('.');
    return SweepField{key, flag, dot == std::string::npos ? key : key.substr(dot + 1), written};
  }
  throw ConfigError(kCommandLine, written, "", "unknown flag " + flag + " (see epsim --help)");
}

}  // namespace

SweepSpec CompareSweep(const CompareSpec& c) {
  SweepSpec spec;
  spec.base = c.scenario;
  for (const auto& [flag, value] : c.fixed) spec.fixed.emplace_back(FieldOfFlag(flag, flag), value);
  for (const auto& [flag, values] : c.axes) {
    SweepAxis axis;
    axis.written = flag;
    axis.fields.push_back(FieldOfFlag(flag, "--vary"));
    for (const std::string& v : values) axis.values.push_back({v});
    spec.axes.push_back(std::move(axis));
  }
  std::map<std::string, std::string> seen;  // scenario key -> how it was given
  for (const auto& [field, value] : spec.fixed) seen[field.key] = field.flag;
  for (const SweepAxis& axis : spec.axes) {
    const SweepField& field = axis.fields[0];
    if (seen.count(field.key) != 0)
      throw ConfigError(kCommandLine, "--vary", field.flag.substr(2), "varies " + field.flag + ", which is also given (give it once)");
    seen[field.key] = "--vary";
  }
  return spec;
}

std::string FormatCompareTable(const CompareSpec& spec, const CsvTable& csv) {
  const size_t run_col = csv.Column("run");
  const size_t step_col = csv.Column("step");
  std::vector<std::string> order;
  std::map<std::string, std::vector<size_t>> rows_of;
  for (size_t r = 0; r < csv.rows.size(); ++r) {
    const std::string& run = csv.rows[r][run_col];
    if (rows_of[run].empty()) order.push_back(run);
    rows_of[run].push_back(r);
  }
  auto values = [&](const std::vector<size_t>& rows, const char* name) {
    const size_t column = csv.Column(name);
    std::vector<double> v;
    for (size_t r : rows) v.push_back(csv.Number(r, column));
    return v;
  };
  auto mean = [&](const std::vector<size_t>& rows, const char* name) { return Mean(values(rows, name)); };
  std::string out;
  StrAppendFormat(&out, "# epsim compare: %s, %zu variants (results in %s/runs)\n", spec.scenario.c_str(),
                  order.size(), spec.out_dir.c_str());
  StrAppendFormat(&out, "#  %-58s %8s %8s %8s %8s %8s %9s %7s %8s %9s\n", "variant", "step", "p99", "dispatch",
                  "expert", "combine", "stall max", "token", "dropped", "a2a disp");
  StrAppendFormat(&out, "#  %-58s %8s %8s %8s %8s %8s %9s %7s %8s %9s\n", "", "(ms)", "(ms)", "(ms)", "(ms)",
                  "(ms)", "(ms)", "skew", "(%)", "(GB/s)");
  for (const std::string& run : order) {
    const std::vector<size_t>& rows = rows_of[run];
    std::string label;  // the swept columns: between run and step
    for (size_t c = run_col + 1; c < step_col; ++c)
      label += (label.empty() ? "" : " ") + csv.header[c] + "=" + csv.rows[rows[0]][c];
    const double dropped = mean(rows, "dropped_tokens"), assignments = mean(rows, "assignments");
    const std::vector<double> stall = values(rows, "stall_max_s");
    StrAppendFormat(&out, "   %-58s %8.3f %8.3f %8.3f %8.3f %8.3f %9.3f %7.2f %8.2f %9.1f\n", label.c_str(),
                    mean(rows, "step_time_s") * 1e3, PercentileNearestRank(values(rows, "step_time_s"), 99) * 1e3,
                    mean(rows, "dispatch_s") * 1e3, mean(rows, "expert_s") * 1e3, mean(rows, "combine_s") * 1e3,
                    *std::max_element(stall.begin(), stall.end()) * 1e3, mean(rows, "token_skew"),
                    assignments > 0 ? 100 * dropped / assignments : 0.0, mean(rows, "dispatch_GBps_per_gpu"));
  }
  return out;
}

int RunCompare(const CompareSpec& c, SimulateFn simulate) {
  const SweepSpec spec = CompareSweep(c);
  try {
    MakeDirectories(c.out_dir);
  } catch (const std::runtime_error& e) {
    throw ConfigError(kCommandLine, "--out", c.out_dir, e.what());
  }
  SweepOptions options;
  options.out_dir = c.out_dir;
  options.jobs = c.jobs;
  options.title = c.out_dir + "/sweep.yaml";
  const int status = RunSweep(spec, options, simulate);
  const std::string path = c.out_dir + "/sweep.csv";
  std::string text;
  if (!ReadFileIfPresent(path, &text)) throw std::runtime_error(path + ": no results");
  std::fputs(FormatCompareTable(c, ParseCsv(text, path)).c_str(), stdout);
  return status;
}

}  // namespace epsim
