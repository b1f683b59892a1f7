// epsim report: fabric-check (see fabric_check.h).
#include "sim/report/fabric_check.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/numbers.h"
#include "sim/config/data_files.h"
#include "sim/engine/analytic_replay.h"
#include "sim/engine/fabric_layout.h"
#include "sim/engine/step_work.h"

namespace epsim {
namespace {

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

// Refuses what no NVLink all-to-all measurement of the calibrator's exchange on one domain
// of `topology` could be, naming the profile's key.
void CheckMeasurement(const Profile& profile, const std::string& profile_path, const Topology& topology) {
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
    throw ConfigError(profile_path, key + ".bandwidth_GBps", FormatG(a2a.bandwidth_Bps / 1e9),
                      "more than topology " + topology.name + "'s NVLink line rate (" +
                          FormatG(topology.scale_up.line_rate_Bps / 1e9) + " GB/s): measured on another device?");
  if (a2a.table.empty()) throw ConfigError(profile_path, key + ".table", "", "missing: no measured cases");

  // Each row must be the exchange epsim-calibrate runs, and within bounds no real
  // measurement comes near (so that the replay never sees an infinite or absurd exchange):
  // a message of at most 1 PB, a time from 1 ns to 1e6 s.
  for (size_t i = 0; i < a2a.table.size(); ++i) {
    const AllToAllModel::Row& row = a2a.table[i];
    const std::string row_key = key + ".table[" + std::to_string(i) + "]";
    if (!(row.bytes_per_peer * std::max(1.0, row.skew) <= 1e15))
      throw ConfigError(profile_path, row_key + ".bytes_per_peer", FormatG(row.bytes_per_peer),
                        "with skew " + FormatG(row.skew) + " a message exceeds 1 PB: not a measurement");
    const double sent = row.bytes_per_peer * (a2a.num_ranks - 2) + row.bytes_per_peer * row.skew;
    if (std::fabs(row.bytes_sent - sent) > 1e-3 * sent + 1)  // profiles print 6 significant digits
      throw ConfigError(profile_path, row_key + ".bytes_sent", FormatG(row.bytes_sent),
                        "expected " + FormatG(sent) + " (bytes_per_peer x (num_ranks - 2 + skew))");
    if (!(row.time_s >= 1e-9 && row.time_s <= 1e6))
      throw ConfigError(profile_path, row_key + ".time_us", FormatG(row.time_s * 1e6),
                        "outside 1 ns to 1e6 s: not a measurement");
  }
}

}  // namespace

std::string FabricCheckReport(const Profile& profile, const std::string& profile_path, const Topology& topology) {
  CheckMeasurement(profile, profile_path, topology);
  const AllToAllModel& a2a = profile.a2a;
  std::string out;
  const FabricLayout layout(topology, a2a.num_ranks);
  const double line_GBps = topology.scale_up.line_rate_Bps / 1e9;
  StrAppendFormat(&out, "# epsim fabric-check: profile %s (%s, device %s), NCCL all-to-all between %d GPUs\n",
         profile.name.c_str(), DisplayPath(profile_path).c_str(), profile.device_name.c_str(), a2a.num_ranks);
  StrAppendFormat(&out, "#   against topology %s (gpu %s): NVLink %.1f GB/s per GPU per direction (%.1f GB/s x %.3g), %.3g us\n",
         topology.name.c_str(), topology.gpu.c_str(), topology.scale_up.bandwidth_Bps / 1e9, line_GBps,
         topology.scale_up.efficiency, topology.scale_up.latency_s * 1e6);
  StrAppendFormat(&out, "#  bytes/peer    skew  bytes sent (MB)  measured (us)  model (us)    error  measured (GB/s)\n");
  for (const AllToAllModel::Row& row : a2a.table) {
    const StepTimeline t = AnalyticReplayStep(layout, MeasuredExchange(a2a.num_ranks, row.bytes_per_peer, row.skew));
    double model_s = 0;
    for (const GpuTimeline& g : t.gpus) model_s = std::max(model_s, g.dispatch_end);
    StrAppendFormat(&out, "  %11.0f %7.2f %16.3f %14.1f %11.1f %+7.1f%% %16.1f\n", row.bytes_per_peer, row.skew,
           row.bytes_sent / 1e6, row.time_s * 1e6, model_s * 1e6, 100 * (model_s - row.time_s) / row.time_s,
           row.bytes_sent / row.time_s / 1e9);
  }
  const double measured_GBps = a2a.bandwidth_Bps / 1e9;
  StrAppendFormat(&out,
         "# measured fit: %.1f GB/s per GPU, latency %.1f us; the topology models %.1f GB/s (measured / model = %.3f)\n",
         measured_GBps, a2a.latency_s * 1e6, topology.scale_up.bandwidth_Bps / 1e9,
         a2a.bandwidth_Bps / topology.scale_up.bandwidth_Bps);
  StrAppendFormat(&out,
         "# to model this device's all-to-all rate, set in the topology: scale_up.efficiency: %.3f "
         "(%.1f / %.1f GB/s line rate)\n",
         a2a.bandwidth_Bps / topology.scale_up.line_rate_Bps, measured_GBps, line_GBps);
  // The calibrator times each exchange on the host around the NCCL call and the stream
  // synchronizations, so its fitted latency is mostly launch and synchronization.
  StrAppendFormat(&out,
         "# the fitted latency (%.1f us) is timed on the host and includes NCCL's launch and stream "
         "synchronization: it is not a scale_up.latency (%.3g us per flow through the switch)\n",
         a2a.latency_s * 1e6, topology.scale_up.latency_s * 1e6);
  return out;
}

}  // namespace epsim
