// epsim-calibrate: measures the EP-layer kernels on this machine and writes a cost profile
// (fitted models with held-out errors) for the simulator, plus every raw sample as CSV.
//
//   epsim-calibrate --backend cpu --quick --out calibrate/profiles/cpu-dev.yaml
//   epsim-calibrate --backend cuda --quick --out /tmp/h200.yaml
//   mpirun -np 2 --oversubscribe epsim-calibrate --backend cpu --ops a2a --quick --out /tmp/a2a.yaml
//
// Exit codes: 0 measured and written; 1 a kernel gave a wrong result or the run failed
// (every operation is checked against naive loops before anything is timed; then nothing
// is written); 2 bad command line; 3 the backend cannot run here (no GPU, no cuBLAS).
// The profile and its samples CSV are written to temporary names and renamed at the end, so
// either both are complete or neither is there (the CSV is renamed first: the profile names it).
// EPSIM_CALIBRATE_CORRUPT_OP=OP is a test hook (calibrate/harness.h, CorruptOpForTest).
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <eigen3/Eigen/Core>

#include "calibrate/fit.h"
#include "calibrate/harness.h"
#include "calibrate/nccl_tests.h"
#include "calibrate/op_a2a.h"
#include "calibrate/profile/profile.h"
#include "common/command_line.h"
#include "common/error.h"
#include "common/files.h"
#include "common/numbers.h"
#include "kernels/all_to_all.h"
#include "kernels/ep_ops.h"
#ifdef EPSIM_WITH_CUDA
#include "kernels/ep_ops_cuda.h"
#endif

namespace epsim {
namespace {

struct Options {
  Backend backend = Backend::kCpu;
  SweepLevel level = SweepLevel::kFull;
  std::set<std::string> ops;
  std::string out;
  std::string name;
  int threads = 0;
  bool progress = true;
  std::vector<std::string> imports;  // nccl-tests outputs to fit instead of measuring
  std::string base;                  // with imports: the profile whose operations they join
};

const char kUsage[] =
    "usage: epsim-calibrate --backend cpu|cuda [--quick | --sweep tiny|quick|full]\n"
    "                       [--ops route,layout,permute,expert,combine,a2a] [--threads N]\n"
    "                       [--name NAME] [--no-progress] --out PROFILE.yaml\n"
    "       epsim-calibrate --import [alltoall_perf:|sendrecv_perf:]NCCL_TESTS_OUTPUT [--import ...]\n"
    "                       --base PROFILE.yaml [--name NAME] --out PROFILE.yaml\n"
    "The second form fits the all-to-all of nccl-tests runs on one box (measured or read) and writes\n"
    "it into a copy of the base profile, measuring nothing.\n"
    "Flags take `--flag value` or `--flag=value`. Exit status: 0 written, 1 a kernel was\n"
    "wrong or the run failed (nothing written), 2 bad command line, 3 the backend cannot run here.\n";

// The backend cannot run on this machine (no GPU, no cuBLAS, built without CUDA).
constexpr int kExitBackendUnavailable = 3;

// Parses the command line; ConfigError on anything wrong, and `help` set for --help.
Options ParseArgs(int argc, char** argv, bool* help) {
  FlagSpec flags;
  flags.with_value = {"--backend", "--sweep", "--ops", "--out", "--name", "--threads", "--import", "--base"};
  flags.switches = {"--quick", "--no-progress"};
  flags.repeatable = {"--import"};
  flags.help_hint = "epsim-calibrate --help";
  const CommandLine line = ParseCommandLine(argc, argv, 1, flags);
  *help = line.help;
  Options o;
  if (line.help) return o;
  std::set<std::string> known;
  for (const OpSpec& s : OpRegistry()) known.insert(s.name);
  for (const auto& [flag, v] : line.flags) {
    if (flag == "--backend") {
      if (v == "cpu") o.backend = Backend::kCpu;
      else if (v == "cuda") o.backend = Backend::kCuda;
      else throw ConfigError(kCommandLine, flag, v, "expected cpu or cuda");
    } else if (flag == "--quick") {
      o.level = SweepLevel::kQuick;
    } else if (flag == "--sweep") {
      if (v == "tiny") o.level = SweepLevel::kTiny;
      else if (v == "quick") o.level = SweepLevel::kQuick;
      else if (v == "full") o.level = SweepLevel::kFull;
      else throw ConfigError(kCommandLine, flag, v, "expected tiny, quick or full");
    } else if (flag == "--ops") {
      std::stringstream ss(v);
      std::string op;
      while (std::getline(ss, op, ',')) {
        if (!known.count(op)) throw ConfigError(kCommandLine, flag, op, "unknown operation");
        o.ops.insert(op);
      }
    } else if (flag == "--out") {
      o.out = v;
    } else if (flag == "--name") {
      o.name = v;
    } else if (flag == "--threads") {
      o.threads = static_cast<int>(FlagInt(flag, v, 1, 1024));
    } else if (flag == "--no-progress") {
      o.progress = false;
    } else if (flag == "--import") {
      o.imports.push_back(v);
    } else if (flag == "--base") {
      o.base = v;
    }
  }
  if (!o.imports.empty() && o.base.empty())
    throw ConfigError(kCommandLine, "--base", "", "missing: --import fits the all-to-all into a copy of a profile");
  if (o.imports.empty() && !o.base.empty())
    throw ConfigError(kCommandLine, "--base", o.base, "goes with --import");
  if (!o.imports.empty() && (line.Has("--backend") || line.Has("--ops") || line.Has("--sweep") || line.Has("--quick")))
    throw ConfigError(kCommandLine, "--import", o.imports[0], "measures nothing: --backend, --ops and the sweep do not apply");
  if (o.out.empty()) throw ConfigError(kCommandLine, "--out", "", "missing (the profile YAML to write)");
  // Refused now, not after minutes of measuring.
  const size_t slash = o.out.find_last_of('/');
  const std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : o.out.substr(0, slash);
  struct stat info;
  if (stat(dir.c_str(), &info) != 0 || !S_ISDIR(info.st_mode))
    throw ConfigError(kCommandLine, "--out", o.out, "folder " + dir + " does not exist");
  if (stat(o.out.c_str(), &info) == 0 && S_ISDIR(info.st_mode))
    throw ConfigError(kCommandLine, "--out", o.out, "is a folder, expected a .yaml file name");
  const std::string& corrupt = CorruptOpForTest();
  if (!corrupt.empty() && !known.count(corrupt))
    throw ConfigError("EPSIM_CALIBRATE_CORRUPT_OP", "", corrupt, "unknown operation (a test hook; unset it)");
  if (o.ops.empty()) o.ops = known;
  if (o.name.empty()) {
    std::string base = o.out.substr(o.out.find_last_of('/') + 1);
    o.name = base.substr(0, base.rfind(".yaml"));
  }
  return o;
}

std::string ReadFirstLine(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

std::string CpuModel() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown CPU";
}

bool CpuHasFlag(const std::string& flag) {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("flags", 0) == 0) return (" " + line + " ").find(" " + flag + " ") != std::string::npos;
  return false;
}

double ParseCacheSize(const std::string& s) {
  if (s.empty()) return 0;
  double v = std::atof(s.c_str());
  if (s.back() == 'K') v *= 1024;
  if (s.back() == 'M') v *= 1024 * 1024;
  return v;
}

std::string Fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", decimals, v);
  return buf;
}

std::string ShapeText(const Case& c) {
  const CaseShape& s = c.shape;
  std::string out;
  auto add = [&](const char* k, double v) {
    if (v > 0) out += std::string(out.empty() ? "" : " ") + k + "=" + Fixed(v, v == std::floor(v) ? 0 : 1);
  };
  if (c.op == "a2a") {
    add("P", s.ranks);
    add("peers", s.peers);
    add("bytes", s.bytes_per_peer);
    add("skew", s.skew);
    return out;
  }
  add(c.op == "permute" || c.op == "expert" ? "M" : "T", s.tokens);
  add("H", s.hidden);
  add("F", s.ffn);
  add(c.op == "expert" ? "G" : "E", s.experts);
  add("k", s.top_k);
  if (!s.distribution.empty()) out += " " + s.distribution;
  if (!s.dtype.empty()) out += " " + s.dtype;
  return out;
}

std::string FormatCsv(const std::vector<Case>& cases, const std::string& backend) {
  std::ostringstream out;
  out << "op,backend,tokens,hidden,ffn,experts,top_k,ranks,peers,bytes_per_peer,skew,distribution,rows,dtype,flops,bytes,"
         "rotations,sample,time_s\n";
  char buf[512];
  for (const Case& c : cases) {
    std::string rows;  // expert: each expert's rows, ';' between them
    for (const int64_t r : c.shape.rows) rows += (rows.empty() ? "" : ";") + std::to_string(r);
    for (size_t i = 0; i < c.samples_s.size(); ++i) {
      std::snprintf(buf, sizeof(buf), "%s,%s,%lld,%lld,%lld,%lld,%lld,%lld,%lld,%lld,%g,", c.op.c_str(),
                    backend.c_str(), static_cast<long long>(c.shape.tokens), static_cast<long long>(c.shape.hidden),
                    static_cast<long long>(c.shape.ffn), static_cast<long long>(c.shape.experts),
                    static_cast<long long>(c.shape.top_k), static_cast<long long>(c.shape.ranks),
                    static_cast<long long>(c.shape.peers), static_cast<long long>(c.shape.bytes_per_peer),
                    c.shape.skew);
      out << buf << c.shape.distribution << "," << rows << "," << c.shape.dtype;
      std::snprintf(buf, sizeof(buf), ",%.6g,%.6g,%d,%zu,%.6e\n", c.work.flops, c.work.bytes, c.rotations, i,
                    c.samples_s[i]);
      out << buf;
    }
  }
  return out.str();
}

// The other swept dimensions of an op, as free text for the profile.
std::string ShapesSwept(const std::vector<const Case*>& cases) {
  auto range = [&](const char* name, int64_t CaseShape::*field) -> std::string {
    int64_t lo = INT64_MAX, hi = 0;
    for (const Case* c : cases) {
      const int64_t v = c->shape.*field;
      if (v <= 0) continue;
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
    if (hi == 0) return "";
    return std::string(name) + " " + std::to_string(lo) + (lo == hi ? "" : "-" + std::to_string(hi)) + "; ";
  };
  std::string s = range("hidden", &CaseShape::hidden) + range("ffn", &CaseShape::ffn) +
                  range("experts", &CaseShape::experts) + range("top_k", &CaseShape::top_k) +
                  range("ranks", &CaseShape::ranks);
  if (s.size() >= 2) s.resize(s.size() - 2);
  return s;
}

// Sets up the backend: the harness's execution context and what the profile says of the
// device and software. Returns kExitOk, or kExitBackendUnavailable with the reason printed.
int SetUpBackend(const Options& opt, Harness& h, Profile& profile, void** stream) {
  if (opt.backend == Backend::kCpu) {
    h.ctx.num_threads = opt.threads > 0 ? opt.threads : std::max(1u, std::thread::hardware_concurrency());
    const double l3 = ParseCacheSize(ReadFirstLine("/sys/devices/system/cpu/cpu0/cache/index3/size"));
    if (l3 > 0) h.cache_bytes = l3;
    h.rotation_limit_bytes = 1e9;
    profile.device_name = CpuModel();
    profile.memory_bytes = static_cast<double>(sysconf(_SC_PHYS_PAGES)) * sysconf(_SC_PAGESIZE);
    struct utsname u;
    uname(&u);
    profile.device_properties = {{"threads", std::to_string(h.ctx.num_threads)},
                                 {"l3_cache_bytes", std::to_string(static_cast<long long>(h.cache_bytes))},
                                 {"avx2_fma", CpuHasFlag("avx2") && CpuHasFlag("fma") ? "yes" : "no"},
                                 {"avx512f", CpuHasFlag("avx512f") ? "yes" : "no"},
                                 {"kernel", std::string(u.sysname) + " " + u.release}};
    return kExitOk;
  }
#ifdef EPSIM_WITH_CUDA
  std::string why;
  if (kernels::cuda::DeviceCount(&why) == 0 || !kernels::cuda::CublasAvailable(&why)) {
    std::fprintf(stderr, "epsim-calibrate: --backend cuda: %s\n", why.c_str());
    return kExitBackendUnavailable;
  }
  kernels::cuda::SetDevice(0);
  *stream = kernels::cuda::StreamCreate();
  h.ctx.cuda_stream = *stream;
  h.ctx.cublas = kernels::cuda::CublasCreate(*stream);
  profile.device_properties = kernels::cuda::DeviceProperties(0);
  // The clock the SMs run at now, against the rated sm_clock_MHz (measured again after the
  // sweep): a throttled or clock-capped GPU shows here, not only in slow kernels.
  profile.device_properties.push_back({"sm_clock_measured_start_MHz", StrFormat("%.0f", kernels::cuda::MeasuredSmClockMHz(*stream))});
  for (const auto& [k, v] : profile.device_properties) {
    if (k == "name") profile.device_name = v;
    if (k == "memory_bytes") profile.memory_bytes = std::atof(v.c_str());
    if (k == "l2_cache_bytes") h.cache_bytes = std::max(1e6, std::atof(v.c_str()));
  }
  h.rotation_limit_bytes = 4e9;
  profile.software.push_back({"cuda_runtime", kernels::cuda::RuntimeVersion()});
  profile.software.push_back({"cuda_driver", kernels::cuda::DriverVersion()});
  profile.software.push_back({"cublas", kernels::cuda::CublasVersion()});
  profile.software.push_back({"expert_gemm", kernels::cuda::ExpertGemmMethod()});
  std::string no_fp8;
  const bool fp8 = kernels::cuda::Fp8GemmAvailable(&no_fp8);
  profile.software.push_back({"cublaslt", kernels::cuda::CublasLtVersion()});
  profile.software.push_back({"expert_gemm_fp8", fp8 ? "cublasLtMatmul: one call per expert, E4M3, per-tensor scales"
                                                     : "none (" + no_fp8 + ")"});
  const std::string nccl = kernels::NcclAllToAll::Version();
  profile.software.push_back({"nccl", nccl.empty() ? "not found" : nccl});
  return kExitOk;
#else
  (void)h;
  (void)profile;
  (void)stream;
  std::fprintf(stderr, "epsim-calibrate: --backend cuda: this binary was built without CUDA (no nvcc at build time)\n");
  return kExitBackendUnavailable;
#endif
}

void PrintPreamble(const Options& opt, const Harness& h, const Profile& profile, const std::string& ops_text,
                   const std::string& csv) {
  std::printf("# epsim-calibrate: backend %s, sweep %s\n", opt.backend == Backend::kCpu ? "cpu" : "cuda",
              h.ByLevel("tiny", "quick", "full"));
  std::printf("# device: %s, memory %.1f GB\n", profile.device_name.c_str(), profile.memory_bytes * 1e-9);
  for (const auto& [k, v] : profile.device_properties) std::printf("#   %s: %s\n", k.c_str(), v.c_str());
  for (const auto& [k, v] : profile.software) std::printf("# %s: %s\n", k.c_str(), v.c_str());
  std::printf("# ops: %s\n", ops_text.c_str());
  std::printf("# timing: %d warm-up, %d-%d repeats within %.2f s per case, inputs rotated to exceed %.0f MB of cache\n",
              h.warmup, h.min_repeats, h.max_repeats, h.budget_per_case_s, h.cache_bytes * 1e-6);
  std::printf("# out: %s, samples: %s\n", opt.out.c_str(), csv.c_str());
  if (!CorruptOpForTest().empty())
    std::printf("# fault injection: one output element of %s is corrupted (EPSIM_CALIBRATE_CORRUPT_OP)\n",
                CorruptOpForTest().c_str());
  std::fflush(stdout);
}

// Every selected operation against its reference, then the timing, op by op; a failure
// stops the run before the next phase. Returns false (and says why on rank 0) on a failure.
bool CheckThenTime(const Options& opt, const std::vector<OpSpec>& specs, Harness& h,
                   kernels::MpiAllToAll* mpi, int rank) {
  for (const bool timing : {false, true}) {
    for (const OpSpec& s : specs) {
      if (!opt.ops.count(s.name)) continue;
      if (rank != 0 && s.name != "a2a") continue;  // other MPI ranks only join the all-to-all
      try {
        if (timing) s.run(h);
        else if (s.check) s.check(h);
      } catch (const std::exception& e) {
        h.Check(false, s.name, std::string("error: ") + e.what());
      }
    }
    // All ranks agree, so none waits in a collective for a rank that stopped.
    const bool failed = mpi ? mpi->MaxOverRanks(h.failures().empty() ? 0 : 1) > 0 : !h.failures().empty();
    if (!failed) continue;
    if (rank != 0) return false;
    for (const std::string& f : h.failures()) std::fprintf(stderr, "epsim-calibrate: %s; nothing written\n", f.c_str());
    if (h.failures().empty()) std::fprintf(stderr, "epsim-calibrate: another MPI rank failed; nothing written\n");
    return false;
  }
  return true;
}

// One measured case against its model's time, as the fit table prints it.
void PrintCase(const Case& c, double model_s) {
  const double spread = c.work.time_s > 0 ? (c.p90_s - c.p10_s) / c.work.time_s * 100 : 0;
  std::printf("%-8s %-34s %12.2f %9.1f %12.2f %8.1f\n", c.op.c_str(), ShapeText(c).c_str(), c.work.time_s * 1e6,
              spread, model_s * 1e6, (model_s / c.work.time_s - 1) * 100);
}

// Fits the all-to-all cases into `a` (the simulator's nccl form, sim/traffic/comm_model.h),
// printing each case against the fit.
void FitAllToAllCases(const std::vector<const Case*>& cases, AllToAllModel& a) {
  std::vector<AllToAllPoint> points;
  for (const Case* c : cases) points.push_back({static_cast<double>(c->shape.peers), c->work.bytes, c->work.time_s});
  const AllToAllFit fit = FitAllToAll(points);
  a.present = true;
  a.fixed_s = fit.fixed_s;
  a.per_message_s = fit.per_message_s;
  a.bandwidth_Bps = fit.bandwidth_Bps;
  a.heldout_error = fit.heldout_error_median;
  a.heldout_error_p90 = fit.heldout_error_p90;
  a.valid_bytes_min = 1e300;
  a.valid_bytes_max = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    const Case& c = *cases[i];
    a.valid_bytes_min = std::min(a.valid_bytes_min, c.work.bytes);
    a.valid_bytes_max = std::max(a.valid_bytes_max, c.work.bytes);
    a.table.push_back({double(c.shape.bytes_per_peer), c.shape.skew, static_cast<int>(c.shape.peers), c.work.bytes,
                       c.work.time_s});
    PrintCase(c, fit.Time(points[i]));
  }
  if (fit.per_message_unresolved)
    std::printf("# a2a: every case had the same peers: the per-message cost is in the fixed cost\n");
}

// The grid the expert layer's kernels run on: CPU, one row and one column per "tile" over
// the threads (the reference kernel has no tiles); CUDA, the device's SMs and 128 x 128
// tiles, cuBLAS's usual Hopper tile (an assumption: it picks its own per shape).
GemmGrid ExpertGrid(const Harness& h, const Profile& profile) {
  if (h.backend == Backend::kCpu) return {std::max(1, h.ctx.num_threads), 1, 1};
  int sms = 1;
  for (const auto& [k, v] : profile.device_properties)
    if (k == "multiprocessors") sms = std::max(1, std::atoi(v.c_str()));
  return {sms, 128, 128};
}

// Fits the expert layers into a grouped_gemm model, printing each case against it.
OpModel FitExpertCases(const std::vector<const Case*>& cases, const GemmGrid& grid) {
  std::vector<GroupedGemmPoint> points;
  for (const Case* c : cases)
    points.push_back({c->shape.rows, static_cast<double>(c->shape.hidden), static_cast<double>(c->shape.ffn),
                      c->work.time_s, c->shape.dtype == "fp8" ? GemmDtype::kFp8 : GemmDtype::kBf16});
  const GroupedGemmFit fit = FitGroupedGemm(points, grid);
  OpModel m = fit.model;
  double tmin = 1e300, tmax = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    tmin = std::min(tmin, cases[i]->work.tokens);
    tmax = std::max(tmax, cases[i]->work.tokens);
    const GroupedGemmPoint& p = points[i];
    PrintCase(*cases[i], m.GroupedGemmS(GateUpGemm(p.rows, p.hidden, p.ffn, p.dtype)) +
                             m.GroupedGemmS(DownGemm(p.rows, p.hidden, p.ffn, p.dtype)));
  }
  m.valid_tokens_min = tmin;
  m.valid_tokens_max = tmax;
  m.valid_shapes = ShapesSwept(cases) + "; rows per expert uniform, zipf and hot";
  m.heldout_error = fit.heldout_error_median;
  m.heldout_error_p90 = fit.heldout_error_p90;
  m.num_points = static_cast<int>(cases.size());
  const bool fp8 = m.gemm.peak_fp8_Fps > 0;
  std::string note = std::string("expert layer, ") + (fp8 ? "bf16 and fp8" : "bf16") +
                     ": gate/up and down grouped over uneven rows. peak_bf16_TFLOPs is the fitted long-K rate "
                     "(efficiency 1): a calibration measures rates, not the datasheet peak.";
  if (fp8)
    note += " peak_fp8_TFLOPs likewise, fitted to the fp8 cases with the bf16 fit's fixed cost, k_half and mem_rate "
            "(cuBLASLt, one call per expert, per-tensor scales).";
  if (grid.row_tile == 1) note += " CPU: no tiles, one 'SM' per thread.";
  if (fit.rate_bound) note += " The rate is a lower bound: no launch was compute-bound.";
  if (fit.mem_bound) note += " mem_rate is a lower bound: no launch was memory-bound.";
  if (fit.rate_fp8_bound) note += " The fp8 rate is a lower bound: no fp8 launch was compute-bound.";
  m.note = note;
  return m;
}

// Fits each measured op into `profile` (and the all-to-all into h.a2a()), printing every
// case against its model and the outliers. Returns the number of points fitted.
int FitOperations(const std::vector<OpSpec>& specs, Harness& h, Profile& profile) {
  std::printf("\n%-8s %-34s %12s %9s %12s %8s\n", "op", "shape", "median_us", "p10-p90%", "model_us", "err%");
  int total_points = 0;
  for (const OpSpec& s : specs) {
    std::vector<const Case*> cases;
    for (const Case& c : h.cases())
      if (c.op == s.name) cases.push_back(&c);
    if (cases.size() < 2) continue;
    if (s.name == "a2a") {
      total_points += static_cast<int>(cases.size());
      FitAllToAllCases(cases, h.a2a());
      continue;
    }
    if (s.name == "expert") {
      total_points += static_cast<int>(cases.size());
      profile.ops["expert"] = FitExpertCases(cases, ExpertGrid(h, profile));
      continue;
    }
    std::vector<FitPoint> points;
    for (const Case* c : cases) points.push_back(c->work);
    const FitResult fit = FitRoofline(points, FitOptions{});
    total_points += static_cast<int>(points.size());
    double tmin = 1e300, tmax = 0;
    for (const Case* c : cases) {
      tmin = std::min(tmin, c->work.tokens);
      tmax = std::max(tmax, c->work.tokens);
      PrintCase(*c, fit.params.Time(c->work));
    }
    for (int i : fit.outliers)
      std::printf("# %s: outlier: %s measured %.2f us, model %.2f us\n", s.name.c_str(), ShapeText(*cases[i]).c_str(),
                  cases[i]->work.time_s * 1e6, fit.params.Time(cases[i]->work) * 1e6);
    OpModel m;
    m.name = s.name;
    m.fixed_s = fit.params.fixed_s;
    m.flop_rate_Fps = fit.params.flop_rate_Fps;
    m.mem_rate_Bps = fit.params.mem_rate_Bps;
    m.half_rate_tokens = fit.params.half_rate_tokens;
    m.valid_tokens_min = tmin;
    m.valid_tokens_max = tmax;
    m.valid_shapes = ShapesSwept(cases);
    m.heldout_error = fit.heldout_error_median;
    m.heldout_error_p90 = fit.heldout_error_p90;
    m.num_points = static_cast<int>(points.size());
    m.num_outliers = static_cast<int>(fit.outliers.size());
    std::string note = s.description + ".";
    if (fit.flop_rate_bound) note += " flop_rate is a lower bound: no case was compute-bound.";
    if (fit.mem_rate_bound) note += " mem_rate is a lower bound: no case was memory-bound.";
    if (fit.flop_rate_unused) note += " No FLOPs in the simulator's model of this operation.";
    m.note = note;
    profile.ops[s.name] = m;
  }
  return total_points;
}

// A held-out error in percent, or "-" when there were too few cases to hold any out.
std::string HeldOutPercent(double error) { return error >= 0 ? Fixed(error * 100, 1) : "-"; }

void PrintFitSummary(const Profile& profile, const AllToAllModel& a) {
  std::printf("\n%-8s %10s %10s %10s %10s %9s %9s %7s %8s\n", "op", "fixed_us", "TFLOP/s", "GB/s", "half_tok",
              "heldout%", "p90%", "points", "outliers");
  for (const auto& [name, m] : profile.ops) {
    std::printf("%-8s %10.2f %10s %10s %10.1f %9s %9s %7d %8d\n", name.c_str(), m.fixed_s * 1e6,
                std::isfinite(m.flop_rate_Fps) ? Fixed(m.flop_rate_Fps * 1e-12, 4).c_str() : "-",
                std::isfinite(m.mem_rate_Bps) ? Fixed(m.mem_rate_Bps * 1e-9, 2).c_str() : "-", m.half_rate_tokens,
                HeldOutPercent(m.heldout_error).c_str(), HeldOutPercent(m.heldout_error_p90).c_str(), m.num_points,
                m.num_outliers);
  }
  if (a.present && a.skipped.empty())
    std::printf("%-8s %10.2f %10s %10.2f %10s %9s %9s %7zu %8s   (%s, %d ranks; %.2f us per peer)\n", "a2a",
                a.fixed_s * 1e6, "-", a.bandwidth_Bps * 1e-9, "-", HeldOutPercent(a.heldout_error).c_str(),
                HeldOutPercent(a.heldout_error_p90).c_str(), a.table.size(), "-", a.backend.c_str(), a.num_ranks,
                a.per_message_s * 1e6);
}

// The samples CSV, then the profile, each written atomically (the CSV first: the profile
// names it; no samples are left without their profile).
void WriteOutputs(const Options& opt, const Harness& h, const Profile& profile, const std::string& csv,
                  double elapsed_s) {
  const std::string backend_name = opt.backend == Backend::kCpu ? "cpu" : "cuda";
  std::ostringstream header;
  header << "# Measured cost profile written by epsim-calibrate (" << backend_name << " backend, "
         << h.ByLevel("tiny", "quick", "full") << " sweep, " << Fixed(elapsed_s, 0)
         << " s). Schema: calibrate/profiles/README.md.\n"
         << "# Work (flops, bytes) is counted as the simulator counts it (calibrate/profile/op_work.h,\n"
         << "# bf16 activations), so the rates are per simulator FLOP and byte; times are this device's.\n"
         << "# heldout_error: median |model - measured| / measured over 5-fold held-out cases.\n";
  const std::string profile_text = FormatProfile(profile, header.str());
  WriteFileAtomically(csv, FormatCsv(h.cases(), backend_name));
  try {
    WriteFileAtomically(opt.out, profile_text);
  } catch (const std::exception&) {
    std::remove(csv.c_str());
    throw;
  }
}

// --import: the nccl-tests outputs fitted into a copy of the --base profile.
int Import(const Options& opt) {
  Profile profile = LoadProfile(opt.base);
  std::vector<NcclTestsRun> runs;
  std::vector<AllToAllPoint> points;
  AllToAllModel a;
  a.present = true;
  a.backend = "nccl";
  for (const std::string& spec : opt.imports) {
    const NcclTestsRun run = ReadNcclTests(spec);
    if (run.num_hosts > 1) {
      throw ConfigError(run.file, "", "", "measured across " + std::to_string(run.num_hosts) +
                                              " hosts: that measures the NICs, and --import fits one box's NVLink");
    }
    if (a.num_ranks != 0 && run.num_ranks != a.num_ranks) {
      throw ConfigError(run.file, "", "", "ran on " + std::to_string(run.num_ranks) + " GPUs, " +
                                              runs.front().file + " on " + std::to_string(a.num_ranks) +
                                              ": import runs of one box");
    }
    a.num_ranks = run.num_ranks;
    a.source += (a.source.empty() ? "nccl-tests: " : ", ") + run.test + " " + run.file;
    for (const AllToAllModel::Row& row : run.rows) {
      a.table.push_back(row);
      points.push_back({static_cast<double>(row.peers), row.bytes_sent, row.time_s});
    }
    std::printf("# %s: %s on %d GPUs (%s), %zu sizes\n", run.file.c_str(), run.test.c_str(), run.num_ranks,
                run.device.empty() ? "device not named" : run.device.c_str(), run.rows.size());
    runs.push_back(run);
  }
  const AllToAllFit fit = FitAllToAll(points);
  a.fixed_s = fit.fixed_s;
  a.per_message_s = fit.per_message_s;
  a.bandwidth_Bps = fit.bandwidth_Bps;
  a.heldout_error = fit.heldout_error_median;
  a.heldout_error_p90 = fit.heldout_error_p90;
  a.valid_bytes_min = 1e300;
  for (const AllToAllPoint& p : points) {
    a.valid_bytes_min = std::min(a.valid_bytes_min, p.bytes);
    a.valid_bytes_max = std::max(a.valid_bytes_max, p.bytes);
  }
  profile.a2a = a;
  profile.name = opt.name;
  // A base that was itself imported names its source already: this import replaces it.
  profile.software.erase(std::remove_if(profile.software.begin(), profile.software.end(),
                                        [](const auto& kv) { return kv.first == "a2a_from"; }),
                         profile.software.end());
  profile.software.push_back({"a2a_from", a.source});
  std::printf("# fit: %.3g us + %.3g us per peer + bytes sent / %.1f GB/s, held-out error %s%% (p90 %s%%)%s\n",
              a.fixed_s * 1e6, a.per_message_s * 1e6, a.bandwidth_Bps / 1e9, HeldOutPercent(a.heldout_error).c_str(),
              HeldOutPercent(a.heldout_error_p90).c_str(),
              fit.per_message_unresolved ? "; every case had the same peers, so the fixed cost holds the per-peer one" : "");
  const std::string header = "# Profile written by epsim-calibrate --import: the operations of " + opt.base +
                             " and the all-to-all fitted\n# from " + a.source +
                             " (calibrate/nccl_tests.h). Schema: calibrate/profiles/README.md.\n";
  WriteFileAtomically(opt.out, FormatProfile(profile, header));
  std::printf("# wrote %s\n", opt.out.c_str());
  return kExitOk;
}

int Run(const Options& opt) {
  Harness h;
  h.backend = opt.backend;
  h.level = opt.level;
  h.progress = opt.progress;
  h.budget_per_case_s = h.ByLevel(0.02, 0.25, 1.0);
  h.max_repeats = h.ByLevel(5, 30, 100);
  Profile profile;
  profile.name = opt.name;
  profile.source = "measured";
  const std::string backend_name = opt.backend == Backend::kCpu ? "cpu" : "cuda";
  profile.software.push_back({"epsim_calibrate_backend", backend_name});
  profile.software.push_back({"compiler", std::string("gcc ") + __VERSION__});
  profile.software.push_back({"eigen", std::to_string(EIGEN_WORLD_VERSION) + "." + std::to_string(EIGEN_MAJOR_VERSION) +
                                           "." + std::to_string(EIGEN_MINOR_VERSION)});
  void* stream = nullptr;  // the CUDA backend's stream
  if (const int status = SetUpBackend(opt, h, profile, &stream); status != kExitOk) return status;
  kernels::MpiAllToAll* mpi = opt.backend == Backend::kCpu ? calib::SharedMpi() : nullptr;
  const int rank = mpi ? mpi->rank() : 0;
  if (mpi) profile.software.push_back({"mpi", mpi->Version()});

  std::string csv = opt.out;
  csv = (csv.size() > 5 && csv.substr(csv.size() - 5) == ".yaml" ? csv.substr(0, csv.size() - 5) : csv) + ".csv";
  profile.samples_csv = csv.substr(csv.find_last_of('/') + 1);
  std::vector<OpSpec> specs = OpRegistry();
  std::sort(specs.begin(), specs.end(), [](const OpSpec& a, const OpSpec& b) { return a.order < b.order; });
  std::string ops_text;
  for (const OpSpec& s : specs)
    if (opt.ops.count(s.name)) ops_text += (ops_text.empty() ? "" : ",") + s.name;
  if (rank == 0) PrintPreamble(opt, h, profile, ops_text, csv);

  const auto start = std::chrono::steady_clock::now();
  if (!CheckThenTime(opt, specs, h, mpi, rank)) return kExitRunFailed;
  if (rank != 0) return kExitOk;
  const double elapsed_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
#ifdef EPSIM_WITH_CUDA
  if (stream)
    profile.device_properties.push_back({"sm_clock_measured_end_MHz", StrFormat("%.0f", kernels::cuda::MeasuredSmClockMHz(stream))});
#endif

  const int total_points = FitOperations(specs, h, profile);
  PrintFitSummary(profile, h.a2a());
  if (!h.a2a().present && opt.ops.count("a2a")) {
    h.a2a().present = true;
    for (const std::string& sk : h.skipped())
      if (sk.rfind("a2a:", 0) == 0) h.a2a().skipped = sk.substr(5);
  }
  for (const std::string& sk : h.skipped()) std::printf("# skipped %s\n", sk.c_str());
  profile.a2a = h.a2a();

  std::vector<std::string> missing;
  for (const char* op : {"route", "permute", "expert", "combine"})
    if (!profile.ops.count(op)) missing.push_back(op);
  WriteOutputs(opt, h, profile, csv, elapsed_s);
  std::printf("\n# %zu cases, %d fitted, %zu wrong results, %zu skipped, %.0f s; wrote %s and %s\n", h.cases().size(),
              total_points, h.failures().size(), h.skipped().size(), elapsed_s, opt.out.c_str(), csv.c_str());
  if (!missing.empty()) {
    std::string list;
    for (const std::string& m : missing) list += (list.empty() ? "" : ",") + m;
    std::printf("# note: the profile lacks %s, which the simulator needs: it will not load it\n", list.c_str());
  }
#ifdef EPSIM_WITH_CUDA
  if (stream) {
    kernels::cuda::CublasDestroy(h.ctx.cublas);
    kernels::cuda::StreamDestroy(stream);
  }
#endif
  return kExitOk;
}

}  // namespace
}  // namespace epsim

int main(int argc, char** argv) {
  return epsim::RunReportingErrors("epsim-calibrate", [&] {
    bool help = false;
    const epsim::Options options = epsim::ParseArgs(argc, argv, &help);
    if (help) {
      std::fputs(epsim::kUsage, stdout);
      return static_cast<int>(epsim::kExitOk);
    }
    return options.imports.empty() ? epsim::Run(options) : epsim::Import(options);
  });
}
