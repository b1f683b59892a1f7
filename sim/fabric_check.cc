// epsim fabric-check (see fabric_check.h).
#include "sim/fabric_check.h"

#include <algorithm>
#include <cstdarg>
#include <cmath>
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "calibrate/profile.h"
#include "sim/analytic_replay.h"
#include "sim/config.h"
#include "sim/data_files.h"
#include "sim/fabric_layout.h"
#include "sim/step_work.h"
#include "sim/topology.h"

namespace epsim {
namespace {

void PrintUsage() {
  std::printf(
      "usage: epsim fabric-check --profile PROFILE --topology TOPOLOGY\n"
      "\n"
      "Replays the all-to-all PROFILE measured (epsim-calibrate --backend cuda on 2+ GPUs:\n"
      "NCCL between the GPUs of one box) on one NVLink domain of TOPOLOGY, prints measured\n"
      "against modeled time per case, and the scale_up.efficiency the measurement implies.\n"
      "PROFILE and TOPOLOGY are bundled names or paths to YAML files.\n");
}

// printf at the end of a string.
void Append(std::string& out, const char* format, ...) __attribute__((format(printf, 2, 3)));
void Append(std::string& out, const char* format, ...) {
  va_list args, again;
  va_start(args, format);
  va_copy(again, args);
  const int length = std::vsnprintf(nullptr, 0, format, args);
  va_end(args);
  if (length > 0) {
    const size_t at = out.size();
    out.resize(at + static_cast<size_t>(length) + 1);
    std::vsnprintf(&out[at], static_cast<size_t>(length) + 1, format, again);
    out.resize(at + static_cast<size_t>(length));
  }
  va_end(again);
}

// A number as %g prints it, for error messages.
std::string Text(double x) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", x);
  return text;
}

// Flows of one measured case, as epsim-calibrate's all-to-all sent them: rank r sends
// `base` bytes to every peer and `skew` x `base` to rank r + 1 (calibrate/op_a2a.cc).
StepWork MeasuredExchange(int ranks, double base, double skew) {
  StepWork work;
  for (int src = 0; src < ranks; ++src) {
    for (int dst = 0; dst < ranks; ++dst) {
      const double bytes = dst == (src + 1) % ranks ? std::floor(base * skew) : base;
      if (src != dst && bytes > 0) work.dispatch.push_back({src, dst, bytes});
    }
  }
  work.route_s.assign(ranks, 0);
  work.expert_s.assign(ranks, 0);
  work.reduce_s.assign(ranks, 0);
  return work;
}

int Run(int argc, char** argv) {
  std::string profile_ref, topology_ref;
  for (int i = 2; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      PrintUsage();
      return 0;
    }
    if (arg != "--profile" && arg != "--topology") throw ConfigError("command line", arg, "", "unknown flag");
    if (i + 1 >= argc) throw ConfigError("command line", arg, "", "missing value");
    std::string& value = arg == "--profile" ? profile_ref : topology_ref;
    if (!value.empty()) throw ConfigError("command line", arg, argv[i + 1], "given twice");
    value = argv[++i];
  }
  if (profile_ref.empty()) throw ConfigError("command line", "--profile", "", "missing (the measured profile)");
  if (topology_ref.empty()) throw ConfigError("command line", "--topology", "", "missing (the cluster to check)");
  const std::string profile_path = ResolveDataFile("calibrate/profiles", profile_ref, "command line", "--profile");
  const std::string topology_path = ResolveDataFile("topologies", topology_ref, "command line", "--topology");
  const Profile profile = LoadProfile(profile_path);
  const Topology topology = LoadTopology(topology_path);
  std::fputs(FabricCheckReport(profile, profile_path, topology).c_str(), stdout);
  return 0;
}

}  // namespace

std::string FabricCheckReport(const Profile& profile, const std::string& profile_path, const Topology& topology) {
  std::string out;
  const AllToAllModel& a2a = profile.a2a;
  const std::string key = "operations.a2a";
  if (!a2a.present) throw ConfigError(profile_path, key, "", "missing: this profile measured no all-to-all");
  if (!a2a.skipped.empty())
    throw ConfigError(profile_path, key + ".skipped", a2a.skipped, "the all-to-all was not measured");
  if (a2a.backend == "mpi")
    throw ConfigError(profile_path, key + ".backend", a2a.backend,
                      "measured between processes through host memory, not over NVLink: fabric-check "
                      "needs NCCL between GPUs (epsim-calibrate --backend cuda on 2+ GPUs)");
  if (a2a.backend != "nccl")
    throw ConfigError(profile_path, key + ".backend", a2a.backend, "unknown backend: fabric-check reads nccl");
  const int domain = std::min(topology.scale_up.domain_gpus, topology.total_gpus());
  if (a2a.num_ranks < 2 || a2a.num_ranks > domain)
    throw ConfigError(profile_path, key + ".num_ranks", std::to_string(a2a.num_ranks),
                      "must be 2 to the GPUs of one NVLink domain of topology " + topology.name + " (" +
                          std::to_string(domain) + ")");
  if (a2a.bandwidth_Bps > topology.scale_up.line_rate_Bps)
    throw ConfigError(profile_path, key + ".bandwidth_GBps", Text(a2a.bandwidth_Bps / 1e9),
                      "more than topology " + topology.name + "'s NVLink line rate (" +
                          Text(topology.scale_up.line_rate_Bps / 1e9) + " GB/s): measured on another device?");
  if (a2a.table.empty()) throw ConfigError(profile_path, key + ".table", "", "missing: no measured cases");

  // Each row must be the exchange epsim-calibrate runs, and within bounds no real
  // measurement comes near (so that the replay never sees an infinite or absurd exchange):
  // a message of at most 1 PB, a time from 1 ns to 1e6 s.
  for (size_t i = 0; i < a2a.table.size(); ++i) {
    const AllToAllModel::Row& row = a2a.table[i];
    const std::string row_key = key + ".table[" + std::to_string(i) + "]";
    if (!(row.bytes_per_peer * std::max(1.0, row.skew) <= 1e15))
      throw ConfigError(profile_path, row_key + ".bytes_per_peer", Text(row.bytes_per_peer),
                        "with skew " + Text(row.skew) + " a message exceeds 1 PB: not a measurement");
    const double sent = row.bytes_per_peer * (a2a.num_ranks - 2) + row.bytes_per_peer * row.skew;
    if (std::fabs(row.bytes_sent - sent) > 1e-3 * sent + 1)  // profiles print 6 significant digits
      throw ConfigError(profile_path, row_key + ".bytes_sent", Text(row.bytes_sent),
                        "expected " + Text(sent) + " (bytes_per_peer x (num_ranks - 2 + skew))");
    if (!(row.time_s >= 1e-9 && row.time_s <= 1e6))
      throw ConfigError(profile_path, row_key + ".time_us", Text(row.time_s * 1e6),
                        "outside 1 ns to 1e6 s: not a measurement");
  }
  const FabricLayout layout(topology, a2a.num_ranks);
  const double line_GBps = topology.scale_up.line_rate_Bps / 1e9;
  Append(out, "# epsim fabric-check: profile %s (%s, device %s), NCCL all-to-all between %d GPUs\n",
         profile.name.c_str(), DisplayPath(profile_path).c_str(), profile.device_name.c_str(), a2a.num_ranks);
  Append(out, "#   against topology %s (gpu %s): NVLink %.1f GB/s per GPU per direction (%.1f GB/s x %.3g), %.3g us\n",
         topology.name.c_str(), topology.gpu.c_str(), topology.scale_up.bandwidth_Bps / 1e9, line_GBps,
         topology.scale_up.efficiency, topology.scale_up.latency_s * 1e6);
  Append(out, "#  bytes/peer    skew  bytes sent (MB)  measured (us)  model (us)    error  measured (GB/s)\n");
  for (const AllToAllModel::Row& row : a2a.table) {
    const StepTimeline t = AnalyticReplayStep(layout, MeasuredExchange(a2a.num_ranks, row.bytes_per_peer, row.skew));
    double model_s = 0;
    for (const GpuTimeline& g : t.gpus) model_s = std::max(model_s, g.dispatch_end);
    Append(out, "  %11.0f %7.2f %16.3f %14.1f %11.1f %+7.1f%% %16.1f\n", row.bytes_per_peer, row.skew,
           row.bytes_sent / 1e6, row.time_s * 1e6, model_s * 1e6, 100 * (model_s - row.time_s) / row.time_s,
           row.bytes_sent / row.time_s / 1e9);
  }
  const double measured_GBps = a2a.bandwidth_Bps / 1e9;
  Append(out,
         "# measured fit: %.1f GB/s per GPU, latency %.1f us; the topology models %.1f GB/s (measured / model = %.3f)\n",
         measured_GBps, a2a.latency_s * 1e6, topology.scale_up.bandwidth_Bps / 1e9,
         a2a.bandwidth_Bps / topology.scale_up.bandwidth_Bps);
  Append(out,
         "# to model this device's all-to-all rate, set in the topology: scale_up.efficiency: %.3f "
         "(%.1f / %.1f GB/s line rate)\n",
         a2a.bandwidth_Bps / topology.scale_up.line_rate_Bps, measured_GBps, line_GBps);
  // The calibrator times each exchange on the host around the NCCL call and the stream
  // synchronizations, so its fitted latency is mostly launch and synchronization.
  Append(out,
         "# the fitted latency (%.1f us) is timed on the host and includes NCCL's launch and stream "
         "synchronization: it is not a scale_up.latency (%.3g us per flow through the switch)\n",
         a2a.latency_s * 1e6, topology.scale_up.latency_s * 1e6);
  return out;
}

int RunFabricCheckCommand(int argc, char** argv) {
  try {
    return Run(argc, argv);
  } catch (const ConfigError& e) {
    std::fprintf(stderr, "epsim fabric-check: error: %s\n", DisplayPath(e.what()).c_str());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "epsim fabric-check: error: %s\n", e.what());
    return 1;
  }
}

}  // namespace epsim
