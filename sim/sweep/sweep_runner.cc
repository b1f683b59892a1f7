// epsim sweep: the sweep runner (see sweep_runner.h).
#include "sim/sweep/sweep_runner.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "common/csv.h"
#include "common/error.h"
#include "common/files.h"
#include "common/numbers.h"
#include "common/parallel.h"
#include "common/progress.h"
#include "sim/config/data_files.h"
#include "sim/config/inputs.h"
#include "sim/config/scenario.h"

namespace epsim {
namespace {

std::string Trim(const std::string& text) {
  const size_t begin = text.find_first_not_of(" \t\n");
  if (begin == std::string::npos) return "";
  const size_t end = text.find_last_not_of(" \t\n");
  return text.substr(begin, end - begin + 1);
}

std::string RunDir(const std::string& out_dir, const SweepRun& run) { return out_dir + "/runs/" + run.id; }

// ---- where the processes run ----

int EnvInt(const char* name, int fallback) {
  const char* text = std::getenv(name);
  int64_t value = 0;
  if (text == nullptr || !ParseInt64(text, &value) || value < 0 || value > INT_MAX) return fallback;
  return static_cast<int>(value);
}

// This process's place among the ranks of an mpirun (one rank outside MPI).
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

// Forks a child that calls `simulate` with `args` (after "epsim"), its output in `log`.
pid_t Spawn(const std::vector<std::string>& args, const std::string& log, SimulateFn simulate) {
  std::vector<std::string> words = {"epsim"};
  words.insert(words.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& w : words) argv.push_back(w.data());
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
    SetWorkerThreads(1);  // the sweep already runs a child per core
    const int status = simulate(static_cast<int>(argv.size()) - 1, argv.data());
    std::fflush(nullptr);
    _exit(status);
  }
  return pid;
}

std::string LastLine(const std::string& path) {
  std::string text;
  if (!ReadFileIfPresent(path, &text)) return "";
  std::string last;
  for (const std::string& line : SplitLines(text))
    if (!Trim(line).empty()) last = line;
  return last;
}

// A scenario error caused by a sweep value names the sweep file's key: a flag's error
// (ConfigError(kCommandLine, "--flag", ...)) is the swept or fixed field's; anything else
// is the run's. A sweep made from flags (epsim compare) keeps the flag's own error.
[[noreturn]] void RethrowForSweep(const ConfigError& e, const SweepSpec& spec, const SweepRun& run) {
  if (spec.file.empty()) throw e;  // no sweep file (epsim compare): the flag the user wrote
  const std::string& file = spec.file;
  if (e.file() == kCommandLine) {
    const std::string& flag = e.key();
    for (const auto& [field, value] : spec.fixed)
      if (field.flag == flag) throw ConfigError(file, "set." + field.written, value, e.why());
    for (const auto& axis : spec.axes) {
      for (const auto& field : axis.fields) {
        if (field.flag != flag) continue;
        std::string value;
        for (const auto& [f, v] : run.overrides)
          if (f == flag) value = v;
        throw ConfigError(file, "grid." + field.written, value, e.why());
      }
    }
  }
  throw ConfigError(file, "run " + run.id, "", e.what());
}

// Where a run stands.
enum class RunState : char { kPending, kDone, kFailed };

// Runs this rank's share of the runs, `jobs` at a time, and (rank 0) waits for the others'.
class Scheduler {
 public:
  Scheduler(const SweepSpec& spec, const std::vector<SweepRun>& runs, const std::string& base_path,
            const SweepOptions& options, const Ranks& ranks, int jobs, SimulateFn simulate)
      : spec_(spec), runs_(runs), base_path_(base_path), out_dir_(options.out_dir), ranks_(ranks),
        jobs_(jobs), simulate_(simulate), args_(runs.size()), state_(runs.size(), RunState::kPending),
        bar_("sweep", static_cast<int64_t>(runs.size()), ranks.rank == 0) {
    for (size_t i = 0; i < runs.size(); ++i) {
      args_[i] = SweepRunArgs(spec, runs[i]);
      if (SweepRunComplete(RunDir(out_dir_, runs[i]), args_[i])) {
        state_[i] = RunState::kDone;
        ++skipped_;
      } else if (static_cast<int>(i % ranks.size) == ranks.rank) {
        queue_.push_back(i);
      }
    }
    done_ = skipped_;
  }

  // Runs the local share; on error stops every running child and rethrows.
  void RunLocal() {
    try {
      RunQueue();
    } catch (...) {
      bar_.Finish();
      for (const auto& r : running_) kill(r.pid, SIGTERM);
      for (const auto& r : running_) waitpid(r.pid, nullptr, 0);
      throw;
    }
    if (ranks_.size > 1) {
      WriteFileAtomically(out_dir_ + "/.sweep/rank-" + std::to_string(ranks_.rank) + ".done", ranks_.job + "\n");
    }
  }

  // Rank 0 of several: until every other rank's run is done or failed.
  void WaitForOtherRanks() {
    while (ScanOtherRanks() > 0) {
      bar_.Update(done_, failed_, skipped_, executed_);
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
    bar_.Update(done_, failed_, skipped_, executed_, true);
  }

  void Finish() {
    bar_.Update(done_, failed_, skipped_, executed_, true);
    bar_.Finish();
  }

  int64_t done() const { return done_; }
  int64_t failed() const { return failed_; }
  int64_t skipped() const { return skipped_; }

 private:
  struct Running {
    pid_t pid;
    size_t run;
  };

  void Start(size_t i) {
    const std::string dir = RunDir(out_dir_, runs_[i]);
    MakeDirectories(dir);
    for (const char* name : {"/summary.json", "/steps.csv", "/gpus.csv", "/experts.csv", "/links.csv", "/failed"})
      std::remove((dir + name).c_str());
    WriteFileAtomically(dir + "/sweep_args.txt", args_[i]);
    WriteFileAtomically(dir + "/sweep_build.txt", BuildFingerprint());
    std::vector<std::string> child = {"simulate", base_path_};
    for (const auto& [flag, value] : runs_[i].overrides) {
      child.push_back(flag);
      child.push_back(value);
    }
    child.push_back("--out");
    child.push_back(dir);
    running_.push_back({Spawn(child, dir + "/epsim.log", simulate_), i});
  }

  void Failed(size_t i, const std::string& why) {
    state_[i] = RunState::kFailed;
    ++failed_;
    if (ranks_.rank == 0) bar_.Message("epsim sweep: run " + runs_[i].id + " failed: " + why);
  }

  void Done(size_t i) {
    state_[i] = RunState::kDone;
    ++done_;
  }

  // Collects the children that ended; returns whether any did.
  bool Reap() {
    bool changed = false;
    for (size_t r = 0; r < running_.size();) {
      int status = 0;
      const pid_t got = waitpid(running_[r].pid, &status, WNOHANG);
      if (got == 0) {
        ++r;
        continue;
      }
      const size_t i = running_[r].run;
      const std::string dir = RunDir(out_dir_, runs_[i]);
      running_.erase(running_.begin() + static_cast<long>(r));
      ++executed_;
      changed = true;
      if (got > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0 && SweepRunComplete(dir, args_[i])) {
        Done(i);
        continue;
      }
      std::string why = LastLine(dir + "/epsim.log");
      if (got > 0 && WIFSIGNALED(status)) why = "killed by signal " + std::to_string(WTERMSIG(status));
      if (why.empty()) why = "exit status " + std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : -1);
      WriteFileAtomically(dir + "/failed", ranks_.job + "\n" + why + "\n");
      Failed(i, why + " (log: " + dir + "/epsim.log)");
    }
    return changed;
  }

  void RunQueue() {
    auto last_scan = std::chrono::steady_clock::now();
    while (!queue_.empty() || !running_.empty()) {
      while (!queue_.empty() && static_cast<int>(running_.size()) < jobs_) {
        Start(queue_.front());
        queue_.pop_front();
      }
      const bool changed = Reap();
      const auto now = std::chrono::steady_clock::now();
      if (ranks_.rank == 0 && ranks_.size > 1 && now - last_scan > std::chrono::milliseconds(250)) {
        // Count the other ranks' finished runs too (a stat per run, a few times a second).
        last_scan = now;
        for (size_t i = 0; i < runs_.size(); ++i) {
          if (state_[i] != RunState::kPending || static_cast<int>(i % ranks_.size) == ranks_.rank) continue;
          if (SweepRunComplete(RunDir(out_dir_, runs_[i]), args_[i])) {
            Done(i);
            ++executed_;
          }
        }
      }
      bar_.Update(done_, failed_, skipped_, executed_);
      // Short runs (tens of ms) must not wait long for their slot to refill.
      if (!changed && !running_.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }

  // A marker file written by a rank of this mpirun (not left by an earlier one).
  bool MarkerIsOurs(const std::string& path) const {
    std::string text;
    if (!ReadFileIfPresent(path, &text)) return false;
    return ranks_.job.empty() || text.rfind(ranks_.job + "\n", 0) == 0;
  }

  // One look at the other ranks' runs; returns how many are still pending.
  int64_t ScanOtherRanks() {
    int64_t pending = 0;
    for (size_t i = 0; i < runs_.size(); ++i) {
      if (state_[i] != RunState::kPending) continue;
      const std::string dir = RunDir(out_dir_, runs_[i]);
      const int owner = static_cast<int>(i % ranks_.size);
      if (SweepRunComplete(dir, args_[i])) {
        Done(i);
        ++executed_;
      } else if (MarkerIsOurs(dir + "/failed")) {
        std::string text;
        ReadFileIfPresent(dir + "/failed", &text);
        const size_t nl = text.find('\n');
        const std::string why = Trim(nl == std::string::npos ? text : text.substr(nl + 1));
        Failed(i, why + " (rank " + std::to_string(owner) + ", log: " + dir + "/epsim.log)");
      } else if (MarkerIsOurs(out_dir_ + "/.sweep/rank-" + std::to_string(owner) + ".done")) {
        // Its rank finished; a last look, since files may land just before the marker.
        if (SweepRunComplete(dir, args_[i])) {
          Done(i);
          ++executed_;
        } else {
          Failed(i, "rank " + std::to_string(owner) + " ended without its results");
        }
      } else {
        ++pending;
      }
    }
    return pending;
  }

  const SweepSpec& spec_;
  const std::vector<SweepRun>& runs_;
  const std::string base_path_, out_dir_;
  const Ranks ranks_;
  const int jobs_;
  const SimulateFn simulate_;
  std::vector<std::string> args_;  // each run's sweep_args.txt
  std::vector<RunState> state_;
  std::deque<size_t> queue_;       // this rank's runs still to start
  std::vector<Running> running_;
  ProgressBar bar_;
  int64_t executed_ = 0, done_ = 0, failed_ = 0, skipped_ = 0;
};

// DIR/runs and DIR/.sweep, and the sweep file as DIR/sweep.yaml (leader rank only).
void PrepareOutput(const SweepSpec& spec, const std::string& out_dir, bool leader) {
  MakeDirectories(out_dir + "/runs");
  MakeDirectories(out_dir + "/.sweep");
  if (!leader) return;
  const std::string copy = out_dir + "/sweep.yaml";
  if (spec.file.empty()) return WriteFileAtomically(copy, FormatSweepFile(spec));
  char a[PATH_MAX], b[PATH_MAX];
  const bool same = realpath(spec.file.c_str(), a) != nullptr && realpath(copy.c_str(), b) != nullptr &&
                    std::strcmp(a, b) == 0;
  std::string text;
  if (!same && ReadFileIfPresent(spec.file, &text)) WriteFileAtomically(copy, text);
}

}  // namespace

bool IsLeaderRank() { return DetectRanks().rank == 0; }

std::string ResolveSweepBase(const SweepSpec& spec) {
  if (spec.base == "none") return "none";
  const std::string file = spec.file.empty() ? kCommandLine : spec.file;
  try {
    return ResolveDataFile("scenarios", spec.base, file, spec.file.empty() ? "scenario" : "base");
  } catch (const ConfigError&) {
    const size_t slash = spec.file.rfind('/');
    if (slash != std::string::npos && IsPathReference(spec.base) && spec.base[0] != '/') {
      const std::string beside = spec.file.substr(0, slash + 1) + spec.base;
      if (std::ifstream(beside).good()) return beside;
    }
    throw;
  }
}

void CheckSweepRuns(const SweepSpec& spec, const std::string& base_path, const std::vector<SweepRun>& runs) {
  for (const SweepRun& run : runs) {
    try {
      ResolveInputs(LoadScenario(base_path == "none" ? "" : base_path, run.overrides));
    } catch (const ConfigError& e) {
      RethrowForSweep(e, spec, run);
    }
  }
}

const std::string& BuildFingerprint() {
  static const std::string fingerprint = [] {
    std::ifstream exe(SelfExePath(), std::ios::binary);
    if (!exe) return std::string();
    uint64_t hash = 14695981039346656037ull;  // FNV-1a, 64 bits
    char buffer[1 << 16];
    while (exe.read(buffer, sizeof(buffer)) || exe.gcount() > 0) {
      for (std::streamsize i = 0; i < exe.gcount(); ++i) {
        hash ^= static_cast<unsigned char>(buffer[i]);
        hash *= 1099511628211ull;
      }
    }
    return StrFormat("%016llx", static_cast<unsigned long long>(hash));
  }();
  return fingerprint;
}

bool SweepRunComplete(const std::string& run_dir, const std::string& args) {
  // summary.json is written first; the CSVs after it.
  for (const char* name : {"/summary.json", "/steps.csv", "/gpus.csv", "/experts.csv", "/links.csv"})
    if (!PathExists(run_dir + name)) return false;
  std::string stored, build;
  if (!ReadFileIfPresent(run_dir + "/sweep_args.txt", &stored)) return true;  // made by hand: trust it
  // Made by the same arguments and by this very build (another build may give other numbers).
  return stored == args && ReadFileIfPresent(run_dir + "/sweep_build.txt", &build) && build == BuildFingerprint();
}

std::string GatherSweepCsv(const SweepSpec& spec, const std::vector<SweepRun>& runs,
                           const std::string& out_dir, std::vector<std::string>* missing) {
  std::string header, csv;
  for (const SweepRun& run : runs) {
    const std::string dir = RunDir(out_dir, run);
    std::string steps;
    if (!PathExists(dir + "/summary.json") || !ReadFileIfPresent(dir + "/steps.csv", &steps)) {
      if (missing != nullptr) missing->push_back(run.id);
      continue;
    }
    const std::vector<std::string> lines = SplitLines(steps);
    const std::string first = lines.empty() ? "" : lines[0];
    if (header.empty()) {
      header = first;
    } else if (first != header) {
      throw std::runtime_error(dir + "/steps.csv: columns differ from the other runs' (made by another epsim version?)");
    }
    std::string prefix = CsvField(run.id);
    for (const auto& v : run.values) prefix += "," + CsvField(v);
    for (size_t i = 1; i < lines.size(); ++i)
      if (!lines[i].empty()) csv += prefix + "," + lines[i] + "\n";
  }
  std::string head = "run";
  for (const auto& c : spec.Columns()) head += "," + CsvField(c);
  if (header.empty()) header = "step";
  return head + "," + header + "\n" + csv;
}

int RunSweep(const SweepSpec& spec, const SweepOptions& options, SimulateFn simulate) {
  const Ranks ranks = DetectRanks();
  const bool leader = ranks.rank == 0;
  const std::string base_path = ResolveSweepBase(spec);
  const std::vector<SweepRun> runs = ExpandSweep(spec);
  // Every run's scenario is checked here, so that a bad value stops the sweep before it
  // starts, with the sweep file's key named.
  CheckSweepRuns(spec, base_path, runs);

  const int jobs = options.jobs > 0 ? options.jobs : std::max(1, Cores() / std::max(1, ranks.local_size));
  std::string axes_text;
  for (const auto& axis : spec.axes)
    axes_text += (axes_text.empty() ? "" : " x ") + axis.written + " " + std::to_string(axis.values.size());
  if (leader) {
    std::printf("# epsim sweep: %s, base %s, %zu runs (%s)\n", options.title.c_str(), spec.base.c_str(),
                runs.size(), axes_text.empty() ? "no grid" : axes_text.c_str());
    std::printf("# out %s, %d parallel runs per process, %d process%s\n",
                options.out_dir.empty() ? "-" : options.out_dir.c_str(), jobs, ranks.size,
                ranks.size == 1 ? "" : "es (MPI ranks)");
  }
  if (options.dry_run) {
    if (leader) {
      for (const SweepRun& run : runs) {
        std::printf("%s:", run.id.c_str());
        for (const auto& [flag, value] : run.overrides) std::printf(" %s %s", flag.c_str(), value.c_str());
        std::printf("\n");
      }
    }
    return kExitOk;
  }
  std::fflush(stdout);

  PrepareOutput(spec, options.out_dir, leader);
  Scheduler scheduler(spec, runs, base_path, options, ranks, jobs, simulate);
  scheduler.RunLocal();
  if (!leader) return kExitOk;  // failures are recorded in the run folders; rank 0 reports them
  if (ranks.size > 1) scheduler.WaitForOtherRanks();
  scheduler.Finish();

  std::vector<std::string> missing;
  const std::string csv = GatherSweepCsv(spec, runs, options.out_dir, &missing);
  WriteFileAtomically(options.out_dir + "/sweep.csv", csv);
  const int64_t rows = static_cast<int64_t>(std::count(csv.begin(), csv.end(), '\n')) - 1;
  std::printf("# %lld of %zu runs complete (%lld already done), %lld failed; %lld rows in %s/sweep.csv\n",
              static_cast<long long>(scheduler.done()), runs.size(), static_cast<long long>(scheduler.skipped()),
              static_cast<long long>(scheduler.failed()), static_cast<long long>(rows), options.out_dir.c_str());
  if (scheduler.failed() > 0 || !missing.empty()) {
    std::fprintf(stderr, "epsim sweep: %zu of %zu runs have no results; sweep.csv holds the others\n",
                 missing.size(), runs.size());
    return kExitRunFailed;
  }
  return kExitOk;
}

}  // namespace epsim
