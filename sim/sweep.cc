// epsim: parameter sweeps (see sweep.h).
#include "sim/sweep.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <csignal>
#include <chrono>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <exception>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "sim/config.h"
#include "sim/data_files.h"
#include "sim/output_file.h"
#include "sim/scenario.h"
#include "sim/simulation.h"

namespace epsim {
namespace {

constexpr int64_t kMaxRuns = 1'000'000;
constexpr int64_t kMaxAxisValues = 100'000;
constexpr size_t kMaxIdChars = 160;

std::string Trim(const std::string& text) {
  size_t begin = text.find_first_not_of(" \t");
  if (begin == std::string::npos) return "";
  size_t end = text.find_last_not_of(" \t");
  return text.substr(begin, end - begin + 1);
}

std::string LastPart(const std::string& key) {
  const size_t dot = key.rfind('.');
  return dot == std::string::npos ? key : key.substr(dot + 1);
}

// A grid or `set:` key -> the scenario field it names.
SweepField ResolveField(const std::string& written, const std::string& file,
                        const std::string& section) {
  const std::string text = Trim(written);
  for (const auto& [flag, key] : ScenarioFlags()) {
    if (text == key || text == flag || text == flag.substr(2) || text == LastPart(key))
      return SweepField{key, flag, LastPart(key), text};
  }
  throw ConfigError(file, section, text,
                    "unknown scenario field (use a key like workload.routing or a flag like "
                    "--routing; epsim --help lists them)");
}

std::string ScalarText(const YAML::Node& node, const std::string& file, const std::string& key) {
  if (node.IsNull()) throw ConfigError(file, key, "", "empty value");
  if (!node.IsScalar()) throw ConfigError(file, key, "", "expected a single value");
  const std::string text = Trim(node.Scalar());
  if (text.empty()) throw ConfigError(file, key, "", "empty value");
  return text;
}

double NumberText(const YAML::Node& node, const std::string& file, const std::string& key) {
  const std::string text = ScalarText(node, file, key);
  char* end = nullptr;
  const double value = std::strtod(text.c_str(), &end);
  if (end == text.c_str() || *end != '\0' || !std::isfinite(value))
    throw ConfigError(file, key, text, "expected a number");
  return value;
}

bool IsWhole(double value) { return std::fabs(value) < 9e15 && value == std::floor(value); }

std::string FormatValue(double value, bool whole) {
  char buffer[64];
  if (whole) {
    std::snprintf(buffer, sizeof(buffer), "%lld", static_cast<long long>(std::llround(value)));
  } else {
    std::snprintf(buffer, sizeof(buffer), "%.12g", value);
  }
  return buffer;
}

// {from, to, step} | {from, to, times} | {values: [...]} for one field.
std::vector<std::string> ParseRange(const YAML::Node& node, const std::string& file,
                                    const std::string& key) {
  std::set<std::string> present;
  for (const auto& entry : node) {
    const std::string name = entry.first.Scalar();
    static const std::set<std::string> kKnown = {"from", "to", "step", "times", "values"};
    if (kKnown.count(name) == 0) {
      throw ConfigError(file, key + "." + name, "",
                        "unknown range key (expected from/to with step or times, or values)");
    }
    present.insert(name);
  }
  std::vector<std::string> out;
  if (present.count("values") != 0) {
    if (present.size() != 1)
      throw ConfigError(file, key, "", "`values` cannot be combined with from/to/step/times");
    const YAML::Node values = node["values"];
    if (!values.IsSequence()) throw ConfigError(file, key + ".values", "", "expected a list");
    for (const auto& v : values) out.push_back(ScalarText(v, file, key + ".values"));
    return out;
  }
  if (present.count("from") == 0 || present.count("to") == 0)
    throw ConfigError(file, key, "", "a range needs from and to (and step or times)");
  if ((present.count("step") != 0) == (present.count("times") != 0))
    throw ConfigError(file, key, "", "a range needs exactly one of step or times");
  const double from = NumberText(node["from"], file, key + ".from");
  const double to = NumberText(node["to"], file, key + ".to");
  if (to < from)
    throw ConfigError(file, key + ".to", FormatValue(to, IsWhole(to)), "must be >= from");
  if (present.count("step") != 0) {
    const double step = NumberText(node["step"], file, key + ".step");
    if (step <= 0) throw ConfigError(file, key + ".step", node["step"].Scalar(), "must be > 0");
    const bool whole = IsWhole(from) && IsWhole(step);
    const double count = std::floor((to - from) / step + 1e-9) + 1;
    if (count > kMaxAxisValues)
      throw ConfigError(file, key, "", "range gives more than 100000 values");
    for (int64_t i = 0; i < static_cast<int64_t>(count); ++i) out.push_back(FormatValue(from + i * step, whole));
  } else {
    const double times = NumberText(node["times"], file, key + ".times");
    if (times <= 1) throw ConfigError(file, key + ".times", node["times"].Scalar(), "must be > 1");
    if (from <= 0) throw ConfigError(file, key + ".from", node["from"].Scalar(), "must be > 0 with times");
    const bool whole = IsWhole(from) && IsWhole(times);
    for (double v = from; v <= to * (1 + 1e-12); v *= times) {
      out.push_back(FormatValue(v, whole));
      if (static_cast<int64_t>(out.size()) > kMaxAxisValues)
        throw ConfigError(file, key, "", "range gives more than 100000 values");
    }
  }
  return out;
}

SweepAxis ParseAxis(const std::string& written, const YAML::Node& node, const std::string& file) {
  SweepAxis axis;
  axis.written = Trim(written);
  const std::string key = "grid." + axis.written;
  // "topology, nodes": linked fields.
  std::stringstream parts(written);
  std::string part;
  while (std::getline(parts, part, ',')) {
    if (Trim(part).empty()) throw ConfigError(file, "grid", written, "empty field name in a linked key");
    axis.fields.push_back(ResolveField(part, file, "grid"));
  }
  if (axis.fields.empty()) throw ConfigError(file, "grid", written, "empty key");
  const size_t width = axis.fields.size();
  if (width == 1) {
    if (node.IsMap()) {
      for (auto& v : ParseRange(node, file, key)) axis.values.push_back({v});
    } else if (node.IsSequence()) {
      for (const auto& v : node) axis.values.push_back({ScalarText(v, file, key)});
    } else {
      axis.values.push_back({ScalarText(node, file, key)});
    }
  } else {
    YAML::Node list = node;
    if (node.IsMap()) {
      if (node.size() != 1 || !node["values"])
        throw ConfigError(file, key, "", "linked fields take a list of lists (or {values: ...})");
      list = node["values"];
    }
    if (!list.IsSequence())
      throw ConfigError(file, key, "", "linked fields take a list of lists, e.g. [[dgx-h100, 8], [gb200-nvl72, 18]]");
    for (const auto& point : list) {
      if (!point.IsSequence() || point.size() != width) {
        throw ConfigError(file, key, point.IsScalar() ? point.Scalar() : "",
                          "expected a list of " + std::to_string(width) + " values, one per field");
      }
      std::vector<std::string> values;
      for (const auto& v : point) values.push_back(ScalarText(v, file, key));
      axis.values.push_back(values);
    }
  }
  if (axis.values.empty()) throw ConfigError(file, key, "", "no values");
  std::set<std::vector<std::string>> seen;
  for (const auto& point : axis.values) {
    if (!seen.insert(point).second) {
      std::string text;
      for (const auto& v : point) text += (text.empty() ? "" : ", ") + v;
      throw ConfigError(file, key, text, "duplicate value");
    }
  }
  return axis;
}

SweepSpec ParseSweepNode(const YAML::Node& root, const std::string& file) {
  if (!root.IsMap()) throw ConfigError(file, "", "", "expected a mapping with base and grid");
  SweepSpec spec;
  spec.file = file;
  std::set<std::string> keys_used;  // scenario keys, to reject a field given twice
  auto claim = [&](const SweepField& f, const std::string& section) {
    if (!keys_used.insert(f.key).second)
      throw ConfigError(file, section + "." + f.written, "", "field " + f.key + " is set twice");
  };
  bool have_base = false;
  for (const auto& entry : root) {
    const std::string top = entry.first.Scalar();
    const YAML::Node& value = entry.second;
    if (top == "base") {
      spec.base = ScalarText(value, file, "base");
      have_base = true;
    } else if (top == "name") {
      ScalarText(value, file, "name");  // a label for people; not used
    } else if (top == "set") {
      if (value.IsNull()) continue;
      if (!value.IsMap()) throw ConfigError(file, "set", "", "expected a mapping of field: value");
      for (const auto& item : value) {
        SweepField f = ResolveField(item.first.Scalar(), file, "set");
        claim(f, "set");
        spec.fixed.emplace_back(f, ScalarText(item.second, file, "set." + f.written));
      }
    } else if (top == "grid") {
      if (value.IsNull()) continue;
      if (!value.IsMap()) throw ConfigError(file, "grid", "", "expected a mapping of field: values");
      for (const auto& item : value) {
        SweepAxis axis = ParseAxis(item.first.Scalar(), item.second, file);
        for (const auto& f : axis.fields) claim(f, "grid");
        spec.axes.push_back(std::move(axis));
      }
    } else {
      throw ConfigError(file, top, "", "unknown key (expected base, set, grid, name)");
    }
  }
  if (!have_base)
    throw ConfigError(file, "base", "", "missing required key (a scenario name, a path, or none)");
  int64_t runs = 1;
  for (const auto& axis : spec.axes) {
    runs *= static_cast<int64_t>(axis.values.size());
    if (runs > kMaxRuns)
      throw ConfigError(file, "grid", "", "more than 1000000 runs; split the sweep");
  }
  return spec;
}

std::string SanitizeIdPart(const std::string& text) {
  std::string out;
  for (char c : text) {
    const bool keep = std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '+';
    out += keep ? c : '-';
  }
  return out;
}

std::string Hex8(const std::string& text) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ull;
  }
  char buffer[20];
  std::snprintf(buffer, sizeof(buffer), "%08llx", static_cast<unsigned long long>(h & 0xffffffffull));
  return buffer;
}

bool ReadText(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in.good()) return false;
  std::stringstream buffer;
  buffer << in.rdbuf();
  *out = buffer.str();
  return true;
}

bool Exists(const std::string& path) {
  struct stat info;
  return stat(path.c_str(), &info) == 0;
}

std::string CsvField(const std::string& text) {
  if (text.find_first_of(",\"\n\r") == std::string::npos) return text;
  std::string out = "\"";
  for (char c : text) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

// ---- error mapping: a scenario error caused by a sweep value names the sweep file ----

std::string Why(const ConfigError& e) {
  std::string prefix = e.file().empty() ? "<input>" : e.file();
  if (!e.key().empty()) prefix += ": " + e.key();
  if (!e.value().empty()) prefix += ": '" + e.value() + "'";
  prefix += ": ";
  const std::string what = e.what();
  return what.rfind(prefix, 0) == 0 ? what.substr(prefix.size()) : what;
}

[[noreturn]] void RethrowForSweep(const ConfigError& e, const SweepSpec& spec, const SweepRun& run) {
  std::string flag;
  const std::string& file = e.file();
  if (file == "command line") {
    flag = e.key();
  } else if (file.rfind("command line (", 0) == 0 && file.back() == ')') {
    flag = file.substr(14, file.size() - 15);
  }
  if (!flag.empty()) {
    for (const auto& [field, value] : spec.fixed)
      if (field.flag == flag) throw ConfigError(spec.file, "set." + field.written, value, Why(e));
    for (const auto& axis : spec.axes) {
      for (const auto& field : axis.fields) {
        if (field.flag != flag) continue;
        std::string value;
        for (const auto& [f, v] : run.overrides)
          if (f == flag) value = v;
        throw ConfigError(spec.file, "grid." + field.written, value, Why(e));
      }
    }
  }
  throw ConfigError(spec.file, "run " + run.id, "", e.what());
}

// ---- processes ----

std::string SelfExe() {
  char exe[PATH_MAX];
  const ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  if (n <= 0) throw std::runtime_error("cannot read /proc/self/exe");
  exe[n] = '\0';
  return exe;
}

int Cores() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
  return std::max(1L, sysconf(_SC_NPROCESSORS_ONLN));
}

int EnvInt(const char* name, int fallback) {
  const char* text = std::getenv(name);
  if (text == nullptr || *text == '\0') return fallback;
  char* end = nullptr;
  const long value = std::strtol(text, &end, 10);
  return (*end == '\0' && value >= 0) ? static_cast<int>(value) : fallback;
}

struct Ranks {
  int rank = 0, size = 1, local_size = 1;
  std::string job;  // shared by the ranks of one mpirun; "" outside MPI
};

Ranks DetectRanks() {
  Ranks r;
  r.size = EnvInt("OMPI_COMM_WORLD_SIZE", EnvInt("PMI_SIZE", 1));
  r.rank = EnvInt("OMPI_COMM_WORLD_RANK", EnvInt("PMI_RANK", 0));
  r.local_size = EnvInt("OMPI_COMM_WORLD_LOCAL_SIZE", EnvInt("MPI_LOCALNRANKS", r.size));
  if (r.size < 1 || r.rank >= r.size) {
    r.size = 1;
    r.rank = 0;
  }
  for (const char* name : {"PMIX_NAMESPACE", "OMPI_MCA_ess_base_jobid", "PMI_JOBID"}) {
    if (const char* value = std::getenv(name)) {
      r.job = value;
      break;
    }
  }
  return r;
}

pid_t Spawn(const std::string& exe, const std::vector<std::string>& args, const std::string& log,
            SimulateFn simulate) {
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(exe.c_str()));
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::fflush(nullptr);
  const pid_t pid = fork();
  if (pid < 0) throw std::runtime_error(std::string("fork failed: ") + std::strerror(errno));
  if (pid == 0) {
    const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int null_fd = open("/dev/null", O_RDONLY);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    if (null_fd >= 0) dup2(null_fd, 0);
    if (simulate != nullptr) {
      const int status = simulate(static_cast<int>(argv.size()) - 1, argv.data());
      std::fflush(nullptr);
      _exit(status);
    }
    execv(exe.c_str(), argv.data());
    std::fprintf(stderr, "epsim sweep: cannot run %s: %s\n", exe.c_str(), std::strerror(errno));
    _exit(127);
  }
  return pid;
}

std::string LastLine(const std::string& path) {
  std::string text;
  if (!ReadText(path, &text)) return "";
  std::stringstream in(text);
  std::string line, last;
  while (std::getline(in, line))
    if (!Trim(line).empty()) last = line;
  return last;
}

std::string FormatDuration(double s) {
  char buffer[32];
  if (!std::isfinite(s) || s < 0) return "--";
  const long total = std::lround(s);
  if (total >= 3600) {
    std::snprintf(buffer, sizeof(buffer), "%ldh%02ldm", total / 3600, (total / 60) % 60);
  } else {
    std::snprintf(buffer, sizeof(buffer), "%ldm%02lds", total / 60, total % 60);
  }
  return buffer;
}

// Runs done / total, rate and time left, on stderr: redrawn in place on a terminal, a line
// every 10% (or 30 s) otherwise.
class ProgressBar {
 public:
  ProgressBar(int64_t total, bool enabled)
      : total_(total), enabled_(enabled), tty_(isatty(2) != 0),
        start_(std::chrono::steady_clock::now()) {}

  // done includes skipped runs; executed counts runs finished in this session.
  void Update(int64_t done, int64_t failed, int64_t skipped, int64_t executed, bool force = false) {
    if (!enabled_) return;
    const auto now = std::chrono::steady_clock::now();
    const double since_draw = std::chrono::duration<double>(now - last_draw_).count();
    if (tty_) {
      if (!force && since_draw < 0.2) return;
    } else {
      const int64_t decile = total_ > 0 ? (10 * (done + failed)) / total_ : 10;
      const bool changed = done + failed != last_count_;
      if (!force && !(changed && (decile != last_decile_ || since_draw >= 30))) return;
      last_decile_ = decile;
    }
    last_count_ = done + failed;
    last_draw_ = now;
    const double elapsed = std::chrono::duration<double>(now - start_).count();
    const double rate = elapsed > 0 ? executed / elapsed : 0;
    const int64_t left = total_ - done - failed;
    const double eta = rate > 0 ? left / rate : (left == 0 ? 0 : -1);
    constexpr int kWidth = 24;
    const int filled = total_ > 0 ? static_cast<int>(kWidth * (done + failed) / total_) : kWidth;
    std::string bar = "[" + std::string(filled, '#') + std::string(kWidth - filled, '.') + "]";
    char line[256];
    std::snprintf(line, sizeof(line), "sweep %s %lld/%lld runs, %.2f runs/s, %s left, %s elapsed",
                  bar.c_str(), static_cast<long long>(done + failed), static_cast<long long>(total_),
                  rate, FormatDuration(eta).c_str(), FormatDuration(elapsed).c_str());
    std::string text = line;
    if (skipped > 0) text += ", " + std::to_string(skipped) + " already done";
    if (failed > 0) text += ", " + std::to_string(failed) + " failed";
    if (tty_) {
      std::fprintf(stderr, "\r\033[K%s", text.c_str());
      drawn_ = true;
    } else {
      std::fprintf(stderr, "%s\n", text.c_str());
    }
    std::fflush(stderr);
  }

  // Prints a message line above the bar.
  void Message(const std::string& text) {
    if (tty_ && drawn_) std::fprintf(stderr, "\r\033[K");
    std::fprintf(stderr, "%s\n", text.c_str());
    std::fflush(stderr);
    last_draw_ = {};
  }

  void Finish() {
    if (enabled_ && tty_ && drawn_) std::fprintf(stderr, "\n");
    drawn_ = false;
  }

 private:
  int64_t total_;
  bool enabled_, tty_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point start_, last_draw_{};
  int64_t last_decile_ = -1, last_count_ = -1;
};

struct Options {
  std::string sweep_file, out_dir;
  int jobs = 0;
  bool dry_run = false;
};

void PrintSweepUsage(FILE* out) {
  std::fprintf(out,
               "usage: epsim sweep SWEEP.yaml --out DIR [--jobs N] [--dry-run]\n"
               "\n"
               "Runs every point of the sweep file's grid as `epsim simulate BASE --flag value ...\n"
               "--out DIR/runs/<run-id>` in parallel processes and writes DIR/sweep.csv, one row\n"
               "per (run, step). Runs already complete in DIR are skipped (resume). Under\n"
               "`mpirun -np N` each rank takes runs i with i mod N == rank; rank 0 writes sweep.csv.\n"
               "\n"
               "  --out DIR    results folder (required)\n"
               "  --jobs N     parallel runs per process (default: cores / local ranks)\n"
               "  --dry-run    list the runs and their arguments, run nothing\n"
               "\n"
               "sweep file:\n"
               "  base: default                  # scenario name, path, or none\n"
               "  set: {tokens_per_gpu: 512}     # fixed fields (optional)\n"
               "  grid:\n"
               "    workload.routing: [uniform, zipf:0.5, zipf:1.0]\n"
               "    capacity_factor: [1.0, 1.25, none]\n"
               "    gpus: {from: 16, to: 64, step: 16}      # or {from: 8, to: 64, times: 2}\n"
               "    \"topology, nodes\": [[dgx-h100, 8], [gb200-nvl72, 18]]   # linked fields\n");
}

Options ParseSweepArgs(int argc, char** argv) {
  Options o;
  for (int i = 2; i < argc; ++i) {
    std::string arg = argv[i];
    std::string value;
    const auto eq = arg.find('=');
    if (arg.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
    } else if ((arg == "--out" || arg == "--jobs") ) {
      if (i + 1 >= argc) throw ConfigError("command line", arg, "", "missing value");
      value = argv[++i];
    }
    if (arg == "--out") {
      if (value.empty()) throw ConfigError("command line", arg, value, "empty folder name");
      o.out_dir = value;
    } else if (arg == "--jobs") {
      char* end = nullptr;
      const long jobs = std::strtol(value.c_str(), &end, 10);
      if (value.empty() || *end != '\0' || jobs < 1 || jobs > 4096)
        throw ConfigError("command line", arg, value, "expected a whole number from 1 to 4096");
      o.jobs = static_cast<int>(jobs);
    } else if (arg == "--dry-run") {
      o.dry_run = true;
    } else if (arg.rfind("--", 0) == 0) {
      throw ConfigError("command line", arg, value, "unknown flag (see epsim sweep --help)");
    } else if (o.sweep_file.empty()) {
      o.sweep_file = arg;
    } else {
      throw ConfigError("command line", "", arg, "unexpected argument (one sweep file)");
    }
  }
  if (o.sweep_file.empty()) throw ConfigError("command line", "", "", "missing the sweep file (epsim sweep SWEEP.yaml --out DIR)");
  if (o.out_dir.empty() && !o.dry_run) throw ConfigError("command line", "--out", "", "missing (epsim sweep SWEEP.yaml --out DIR)");
  return o;
}

// The base scenario as a path for `epsim simulate` ("none" stays "none"). A relative path
// is tried as given, then beside the sweep file.
std::string ResolveBase(const SweepSpec& spec) {
  if (spec.base == "none") return "none";
  try {
    return ResolveDataFile("scenarios", spec.base, spec.file, "base");
  } catch (const ConfigError&) {
    const size_t slash = spec.file.rfind('/');
    const bool is_path = spec.base.find('/') != std::string::npos ||
                         (spec.base.size() > 5 && spec.base.substr(spec.base.size() - 5) == ".yaml");
    if (slash != std::string::npos && is_path && spec.base[0] != '/') {
      const std::string beside = spec.file.substr(0, slash + 1) + spec.base;
      if (std::ifstream(beside).good()) return beside;
    }
    throw;
  }
}

void RemoveIfPresent(const std::string& path) { std::remove(path.c_str()); }

std::string RunDir(const std::string& out_dir, const SweepRun& run) {
  return out_dir + "/runs/" + run.id;
}

}  // namespace

// ---- public API ----

int64_t SweepSpec::NumRuns() const {
  int64_t runs = 1;
  for (const auto& axis : axes) runs *= static_cast<int64_t>(axis.values.size());
  return runs;
}

std::vector<std::string> SweepSpec::Columns() const {
  std::vector<std::string> columns;
  for (const auto& axis : axes)
    for (const auto& f : axis.fields) columns.push_back(f.column);
  return columns;
}

SweepSpec LoadSweepFile(const std::string& path) {
  return ParseSweepNode(LoadYamlFile(path), path);
}

SweepSpec ParseSweepText(const std::string& text, const std::string& name) {
  return ParseSweepNode(LoadYamlString(text, name), name);
}

std::vector<SweepRun> ExpandSweep(const SweepSpec& spec) {
  const int64_t total = spec.NumRuns();
  std::vector<SweepRun> runs;
  runs.reserve(static_cast<size_t>(total));
  std::vector<size_t> at(spec.axes.size(), 0);
  for (int64_t index = 0; index < total; ++index) {
    SweepRun run;
    run.index = index;
    for (const auto& [field, value] : spec.fixed) run.overrides.emplace_back(field.flag, value);
    std::string id;
    for (size_t a = 0; a < spec.axes.size(); ++a) {
      const SweepAxis& axis = spec.axes[a];
      for (size_t f = 0; f < axis.fields.size(); ++f) {
        const std::string& value = axis.values[at[a]][f];
        run.values.push_back(value);
        run.overrides.emplace_back(axis.fields[f].flag, value);
        id += (id.empty() ? "" : "_") + axis.fields[f].column + "=" + SanitizeIdPart(value);
      }
    }
    run.id = id.empty() ? "base" : id;
    runs.push_back(std::move(run));
    // Row-major: the last axis varies fastest.
    for (size_t a = spec.axes.size(); a-- > 0;) {
      if (++at[a] < spec.axes[a].values.size()) break;
      at[a] = 0;
    }
  }
  // Ids must be unique folder names: add a hash of the exact values where sanitizing made
  // two ids equal or an id too long.
  std::map<std::string, int> count;
  for (const auto& run : runs) ++count[run.id];
  for (auto& run : runs) {
    if (count[run.id] > 1 || run.id.size() > kMaxIdChars) {
      std::string exact;
      for (const auto& v : run.values) exact += v + '\x1f';
      run.id = run.id.substr(0, std::min(run.id.size(), kMaxIdChars)) + "-" + Hex8(exact);
    }
  }
  return runs;
}

std::string SweepRunArgs(const SweepSpec& spec, const SweepRun& run) {
  std::string text = "base " + spec.base + "\n";
  for (const auto& [flag, value] : run.overrides) text += flag + " " + value + "\n";
  return text;
}

bool SweepRunComplete(const std::string& run_dir, const std::string& args) {
  // summary.json is written first; the CSVs after it.
  for (const char* name : {"/summary.json", "/steps.csv", "/gpus.csv", "/experts.csv"})
    if (!Exists(run_dir + name)) return false;
  std::string stored;
  if (!ReadText(run_dir + "/sweep_args.txt", &stored)) return true;  // made by hand: trust it
  return stored == args;
}

std::string GatherSweepCsv(const SweepSpec& spec, const std::vector<SweepRun>& runs,
                           const std::string& out_dir, std::vector<std::string>* missing) {
  std::string header, csv;
  for (const SweepRun& run : runs) {
    const std::string dir = RunDir(out_dir, run);
    std::string steps;
    if (!Exists(dir + "/summary.json") || !ReadText(dir + "/steps.csv", &steps)) {
      if (missing != nullptr) missing->push_back(run.id);
      continue;
    }
    std::stringstream in(steps);
    std::string line;
    std::getline(in, line);
    if (header.empty()) {
      header = line;
    } else if (line != header) {
      throw std::runtime_error(dir + "/steps.csv: columns differ from the other runs' (made by another epsim version?)");
    }
    std::string prefix = CsvField(run.id);
    for (const auto& v : run.values) prefix += "," + CsvField(v);
    while (std::getline(in, line)) {
      if (!line.empty()) csv += prefix + "," + line + "\n";
    }
  }
  std::string head = "run";
  for (const auto& c : spec.Columns()) head += "," + c;
  if (header.empty()) header = "step";
  return head + "," + header + "\n" + csv;
}

int RunSweepCommand(int argc, char** argv, SimulateFn simulate) {
  for (int i = 2; i < argc; ++i) {
    if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0) {
      PrintSweepUsage(stdout);
      return 0;
    }
  }
  const Ranks ranks = DetectRanks();
  const bool leader = ranks.rank == 0;
  Options opt;
  SweepSpec spec;
  std::vector<SweepRun> runs;
  std::string base_path;
  try {
    opt = ParseSweepArgs(argc, argv);
    spec = LoadSweepFile(opt.sweep_file);
    base_path = ResolveBase(spec);
    runs = ExpandSweep(spec);
    // Every run's scenario is checked here, so that a bad value stops the sweep before it
    // starts, with the sweep file's key named.
    for (const SweepRun& run : runs) {
      try {
        ResolveInputs(LoadScenario(base_path == "none" ? "" : base_path, run.overrides));
      } catch (const ConfigError& e) {
        RethrowForSweep(e, spec, run);
      }
    }
  } catch (const ConfigError& e) {
    if (leader) std::fprintf(stderr, "epsim sweep: error: %s\n", e.what());
    return 2;
  }

  const int jobs = opt.jobs > 0 ? opt.jobs : std::max(1, Cores() / std::max(1, ranks.local_size));
  std::string axes_text;
  for (const auto& axis : spec.axes)
    axes_text += (axes_text.empty() ? "" : " x ") + axis.written + " " + std::to_string(axis.values.size());
  if (leader) {
    std::printf("# epsim sweep: %s, base %s, %zu runs (%s)\n", opt.sweep_file.c_str(),
                spec.base.c_str(), runs.size(), axes_text.empty() ? "no grid" : axes_text.c_str());
    std::printf("# out %s, %d parallel runs per process, %d process%s\n", opt.out_dir.empty() ? "-" : opt.out_dir.c_str(),
                jobs, ranks.size, ranks.size == 1 ? "" : "es (MPI ranks)");
  }
  if (opt.dry_run) {
    if (leader) {
      for (const SweepRun& run : runs) {
        std::printf("%s:", run.id.c_str());
        for (const auto& [flag, value] : run.overrides) std::printf(" %s %s", flag.c_str(), value.c_str());
        std::printf("\n");
      }
    }
    return 0;
  }
  std::fflush(stdout);

  std::string exe;
  try {
    exe = SelfExe();
    MakeDirectories(opt.out_dir + "/runs");
    MakeDirectories(opt.out_dir + "/.sweep");
    if (leader) {
      std::string text;
      char a[PATH_MAX], b[PATH_MAX];
      const std::string copy = opt.out_dir + "/sweep.yaml";
      const bool same = realpath(opt.sweep_file.c_str(), a) != nullptr &&
                        realpath(copy.c_str(), b) != nullptr && std::strcmp(a, b) == 0;
      if (!same && ReadText(opt.sweep_file, &text)) WriteFileAtomically(copy, text);
    }
  } catch (const std::exception& e) {
    if (leader) std::fprintf(stderr, "epsim sweep: error: %s\n", e.what());
    return 1;
  }

  // This rank's share.
  std::deque<size_t> queue;
  std::vector<std::string> args(runs.size());
  for (size_t i = 0; i < runs.size(); ++i) {
    args[i] = SweepRunArgs(spec, runs[i]);
    if (static_cast<int>(i % ranks.size) != ranks.rank) continue;
    if (!SweepRunComplete(RunDir(opt.out_dir, runs[i]), args[i])) queue.push_back(i);
  }
  // Progress over the whole grid (rank 0) or over this rank's share (no bar on others).
  int64_t skipped_all = 0;
  std::vector<char> state(runs.size(), 0);  // 0 pending, 1 done, 2 failed
  for (size_t i = 0; i < runs.size(); ++i) {
    if (SweepRunComplete(RunDir(opt.out_dir, runs[i]), args[i])) {
      state[i] = 1;
      ++skipped_all;
    }
  }
  ProgressBar bar(static_cast<int64_t>(runs.size()), leader);
  int64_t executed = 0, done = skipped_all, failed = 0;
  std::vector<std::string> failures;

  struct Running {
    pid_t pid;
    size_t run;
  };
  std::vector<Running> running;
  auto last_scan = std::chrono::steady_clock::now();
  const std::string failed_marker = "/failed";
  auto report_failure = [&](size_t i, const std::string& why) {
    const std::string line = "epsim sweep: run " + runs[i].id + " failed: " + why;
    failures.push_back(line);
    if (leader) bar.Message(line);
  };
  try {
    while (!queue.empty() || !running.empty()) {
      while (!queue.empty() && static_cast<int>(running.size()) < jobs) {
        const size_t i = queue.front();
        queue.pop_front();
        const std::string dir = RunDir(opt.out_dir, runs[i]);
        MakeDirectories(dir);
        for (const char* name : {"/summary.json", "/steps.csv", "/gpus.csv", "/experts.csv", "/failed"})
          RemoveIfPresent(dir + name);
        WriteFileAtomically(dir + "/sweep_args.txt", args[i]);
        std::vector<std::string> child = {"simulate", base_path};
        for (const auto& [flag, value] : runs[i].overrides) {
          child.push_back(flag);
          child.push_back(value);
        }
        child.push_back("--out");
        child.push_back(dir);
        running.push_back({Spawn(exe, child, dir + "/epsim.log", simulate), i});
      }
      bool changed = false;
      for (size_t r = 0; r < running.size();) {
        int status = 0;
        const pid_t got = waitpid(running[r].pid, &status, WNOHANG);
        if (got == 0) {
          ++r;
          continue;
        }
        const size_t i = running[r].run;
        const std::string dir = RunDir(opt.out_dir, runs[i]);
        running.erase(running.begin() + static_cast<long>(r));
        ++executed;
        changed = true;
        const bool ok = got > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0 &&
                        SweepRunComplete(dir, args[i]);
        if (ok) {
          state[i] = 1;
          ++done;
        } else {
          std::string why = LastLine(dir + "/epsim.log");
          if (got > 0 && WIFSIGNALED(status)) why = "killed by signal " + std::to_string(WTERMSIG(status));
          if (why.empty()) why = "exit status " + std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : -1);
          WriteFileAtomically(dir + failed_marker, ranks.job + "\n" + why + "\n");
          state[i] = 2;
          ++failed;
          report_failure(i, why + " (log: " + dir + "/epsim.log)");
        }
      }
      const auto now = std::chrono::steady_clock::now();
      if (leader && ranks.size > 1 && now - last_scan > std::chrono::milliseconds(250)) {
        // Count the other ranks' runs too (a stat per run: a few times a second at most).
        last_scan = now;
        for (size_t i = 0; i < runs.size(); ++i) {
          if (state[i] != 0 || static_cast<int>(i % ranks.size) == ranks.rank) continue;
          if (SweepRunComplete(RunDir(opt.out_dir, runs[i]), args[i])) {
            state[i] = 1;
            ++done;
            ++executed;
          }
        }
      }
      bar.Update(done, failed, skipped_all, executed);
      // Short runs (tens of ms) must not wait long for their slot to refill.
      if (!changed && !running.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    if (ranks.size > 1) {
      WriteFileAtomically(opt.out_dir + "/.sweep/rank-" + std::to_string(ranks.rank) + ".done",
                          ranks.job + "\n");
    }
    if (!leader) return 0;  // failures are recorded in the run folders; rank 0 reports them

    // Rank 0: wait for the other ranks' runs.
    if (ranks.size > 1) {
      auto marker_is_ours = [&](const std::string& path) {
        std::string text;
        if (!ReadText(path, &text)) return false;
        return ranks.job.empty() || text.rfind(ranks.job + "\n", 0) == 0;
      };
      for (;;) {
        int64_t pending = 0;
        for (size_t i = 0; i < runs.size(); ++i) {
          if (state[i] != 0) continue;
          const std::string dir = RunDir(opt.out_dir, runs[i]);
          const int owner = static_cast<int>(i % ranks.size);
          if (SweepRunComplete(dir, args[i])) {
            state[i] = 1;
            ++done;
            ++executed;
          } else if (marker_is_ours(dir + failed_marker)) {
            std::string text;
            ReadText(dir + failed_marker, &text);
            const size_t nl = text.find('\n');
            std::string why = Trim(nl == std::string::npos ? text : text.substr(nl + 1));
            if (!why.empty() && why.back() == '\n') why.pop_back();
            state[i] = 2;
            ++failed;
            report_failure(i, why + " (rank " + std::to_string(owner) + ", log: " + dir + "/epsim.log)");
          } else if (marker_is_ours(opt.out_dir + "/.sweep/rank-" + std::to_string(owner) + ".done")) {
            // Its rank finished; a last look, since files may land just before the marker.
            if (SweepRunComplete(dir, args[i])) {
              state[i] = 1;
              ++done;
              ++executed;
            } else {
              state[i] = 2;
              ++failed;
              report_failure(i, "rank " + std::to_string(owner) + " ended without its results");
            }
          } else {
            ++pending;
          }
        }
        bar.Update(done, failed, skipped_all, executed, pending == 0);
        if (pending == 0) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(250));
      }
    }
    bar.Update(done, failed, skipped_all, executed, true);
    bar.Finish();

    std::vector<std::string> missing;
    const std::string csv = GatherSweepCsv(spec, runs, opt.out_dir, &missing);
    WriteFileAtomically(opt.out_dir + "/sweep.csv", csv);
    int64_t rows = 0;
    for (char c : csv) rows += c == '\n';
    std::printf("# %lld of %zu runs complete (%lld already done), %lld failed; %lld rows in %s/sweep.csv\n",
                static_cast<long long>(done), runs.size(), static_cast<long long>(skipped_all),
                static_cast<long long>(failed), static_cast<long long>(rows - 1), opt.out_dir.c_str());
    if (failed > 0 || !missing.empty()) {
      std::fprintf(stderr, "epsim sweep: %zu of %zu runs have no results; sweep.csv holds the others\n",
                   missing.size(), runs.size());
      return 1;
    }
  } catch (const std::exception& e) {
    bar.Finish();
    for (const auto& r : running) kill(r.pid, SIGTERM);
    for (const auto& r : running) waitpid(r.pid, nullptr, 0);
    std::fprintf(stderr, "epsim sweep: error: %s\n", e.what());
    return 1;
  }
  return 0;
}

}  // namespace epsim
