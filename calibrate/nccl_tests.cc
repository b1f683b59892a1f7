// epsim calibration: nccl-tests output (see nccl_tests.h).
#include "calibrate/nccl_tests.h"

#include <algorithm>
#include <set>
#include <sstream>

#include "common/csv.h"
#include "common/error.h"
#include "common/files.h"
#include "common/numbers.h"
#include "common/yaml.h"

namespace epsim {
namespace {

constexpr const char* kTests[] = {"alltoall_perf", "sendrecv_perf"};

std::vector<std::string> Words(const std::string& text) {
  std::vector<std::string> words;
  std::istringstream in(text);
  for (std::string w; in >> w;) words.push_back(w);
  return words;
}

// The test named in `text` (a file name or a "Collective test starting" line), or "".
std::string TestIn(const std::string& text) {
  for (const char* test : kTests)
    if (text.find(test) != std::string::npos) return test;
  if (text.find("alltoall") != std::string::npos) return "alltoall_perf";
  if (text.find("sendrecv") != std::string::npos) return "sendrecv_perf";
  return "";
}

}  // namespace

NcclTestsRun ReadNcclTests(const std::string& spec) {
  NcclTestsRun run;
  std::string named_test;
  run.file = spec;
  for (const char* test : kTests) {
    const std::string prefix = std::string(test) + ":";
    if (spec.rfind(prefix, 0) == 0) {
      named_test = test;
      run.file = spec.substr(prefix.size());
    }
  }
  const std::string& file = run.file;
  auto bad = [&](size_t line, const std::string& text, const std::string& why) {
    const size_t start = std::min(text.find_first_not_of(" \t"), text.size());
    throw ConfigError(file, "line " + std::to_string(line + 1), OneLine(text.substr(start), 80), why);
  };
  const std::vector<std::string> lines = SplitLines(ReadFileBounded(file, kMaxConfigFileBytes, "nccl-tests output"));
  std::string started_test;
  std::set<std::string> hosts;
  std::vector<std::string> columns;
  size_t header_line = 0;
  bool in_output = false;  // after "# nThread": what comes before (UCX warnings, the command) is not the tests'
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string& line = lines[i];
    if (line.rfind("# Collective test starting:", 0) == 0) started_test = TestIn(line);
    if (line.rfind("# nThread", 0) == 0) {
      // Two runs appended to one file would count each rank twice.
      if (in_output) bad(i, line, "a second nccl-tests run in one file: give each run its own file");
      in_output = true;
    }
    if (!in_output) continue;
    if (line.rfind("#", 0) == 0) {
      const std::vector<std::string> words = Words(line.substr(1));
      if (words.size() >= 7 && words[0] == "Rank") {
        ++run.num_ranks;
        const auto on = std::find(words.begin(), words.end(), "on");
        if (on != words.end() && on + 1 != words.end()) hosts.insert(*(on + 1));
        if (run.num_ranks == 1) {
          // "... device 0 [0x03] NVIDIA H20-3e": the name after the bus id.
          for (size_t w = 0; w + 1 < words.size(); ++w) {
            if (words[w].front() != '[') continue;
            for (size_t v = w + 1; v < words.size(); ++v) run.device += (run.device.empty() ? "" : " ") + words[v];
            break;
          }
        }
      } else if (!words.empty() && words[0] == "size" && columns.empty()) {
        if (std::find(words.begin(), words.end(), "time") == words.end())
          bad(i, line, "a column header without a time column");
        columns = words;
        header_line = i;
      }
      continue;
    }
    const std::vector<std::string> cells = Words(line);
    double first = 0;
    // Not a row: NCCL's own log lines (NCCL_DEBUG=INFO) may come between the rows.
    if (cells.empty() || columns.empty() || !ParseFiniteDouble(cells[0], &first)) continue;
    if (cells.size() != columns.size()) {
      std::string names;
      for (const std::string& c : columns) names += (names.empty() ? "" : " ") + c;
      bad(i, line, "expected " + std::to_string(columns.size()) + " columns (" + names + "), got " +
                       std::to_string(cells.size()) + " (truncated?)");
    }
    const size_t time_column = std::find(columns.begin(), columns.end(), "time") - columns.begin();
    double size = 0, time_us = 0;
    if (!ParseFiniteDouble(cells[0], &size) || size < 0) bad(i, line, "size: '" + cells[0] + "' is not a byte count");
    if (!ParseFiniteDouble(cells[time_column], &time_us) || time_us <= 0)
      bad(i, line, "time: '" + cells[time_column] + "' is not a time in us");
    if (size == 0) continue;  // the harness alone: no NCCL call
    AllToAllModel::Row row;
    row.time_s = time_us * 1e-6;
    row.skew = 1;
    row.bytes_per_peer = size;  // sendrecv; alltoall below, once the ranks are known
    row.peers = 1;
    row.bytes_sent = size;
    run.rows.push_back(row);
  }
  if (run.num_ranks == 0) throw ConfigError(file, "", "", "not nccl-tests output (no \"# Using devices\" block of ranks)");
  if (run.num_ranks < 2) throw ConfigError(file, "", "", "ran on 1 GPU: an all-to-all needs 2 or more");
  if (columns.empty())
    throw ConfigError(file, "", "", "no column header with size and time (\"#  size  count  type ... time\")");
  if (run.rows.empty()) throw ConfigError(file, "line " + std::to_string(header_line + 1), "", "no rows after the header");
  run.num_hosts = static_cast<int>(hosts.size());
  run.test = !named_test.empty() ? named_test : !started_test.empty() ? started_test : TestIn(file);
  if (run.test.empty()) {
    throw ConfigError(file, "", "",
                      "cannot tell which test made it: name it alltoall_perf:FILE or sendrecv_perf:FILE");
  }
  if (run.test == "alltoall_perf") {
    const double n = run.num_ranks;
    for (AllToAllModel::Row& row : run.rows) {
      row.bytes_per_peer = row.bytes_sent / n;
      row.peers = run.num_ranks - 1;
      row.bytes_sent = row.bytes_per_peer * (n - 1);
    }
  }
  return run;
}

}  // namespace epsim
