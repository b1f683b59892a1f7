// epsim report: fabric-check (see fabric_check.h).
#include "sim/report/fabric_check.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/numbers.h"
#include "sim/config/data_files.h"
#include "sim/config/inputs.h"
#include "sim/engine/analytic_replay.h"
#include "sim/engine/fabric_layout.h"
#include "sim/engine/step_work.h"
#include "sim/traffic/comm_model.h"

namespace epsim {
namespace {

// One measured case as epsim-calibrate's all-to-all ran it (calibrate/op_a2a.cc): rank r
// sends `base` bytes to its next `peers` ranks, `skew` x `base` to rank r + 1; each rank pays
// its call's overhead, fixed + peers x per message, before its data moves.
StepWork MeasuredExchange(int ranks, const AllToAllModel::Row& row, const CommModel& model) {
  StepWork work;
  for (int src = 0; src < ranks; ++src) {
    for (int i = 1; i <= row.peers; ++i) {
      const int dst = (src + i) % ranks;
      const double bytes = i == 1 ? std::floor(row.bytes_per_peer * row.skew) : row.bytes_per_peer;
      if (bytes > 0) work.dispatch.push_back({src, dst, bytes});
    }
  }
  CallCost cost;
  cost.overhead_s.assign(ranks, model.fixed_s + row.peers * model.per_message_s);
  work.dispatch_cost = {cost};
  work.route_s.assign(ranks, 0);
  work.expert_s.assign(ranks, 0);
  work.reduce_s.assign(ranks, 0);
  return work;
}

// The slowest GPU's time in `work`'s exchange on `layout`.
double ExchangeTimeS(const FabricLayout& layout, const StepWork& work) {
  double time_s = 0;
  for (const GpuTimeline& g : AnalyticReplayStep(layout, work).gpus) time_s = std::max(time_s, g.dispatch_end);
  return time_s;
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
    const double sent = row.bytes_per_peer * (row.peers - 1) + row.bytes_per_peer * row.skew;
    if (std::fabs(row.bytes_sent - sent) > 1e-3 * sent + 1)  // profiles print 6 significant digits
      throw ConfigError(profile_path, row_key + ".bytes_sent", FormatG(row.bytes_sent),
                        "expected " + FormatG(sent) + " (bytes_per_peer x (peers - 1 + skew))");
    if (!(row.time_s >= 1e-9 && row.time_s <= 1e6))
      throw ConfigError(profile_path, row_key + ".time_us", FormatG(row.time_s * 1e6),
                        "outside 1 ns to 1e6 s: not a measurement");
  }
}

}  // namespace

std::string FabricCheckReport(const Profile& profile, const std::string& profile_path, const Topology& topology) {
  CheckMeasurement(profile, profile_path, topology);
  const AllToAllModel& a2a = profile.a2a;
  // The model with this profile: NVLink at the measured rate, nccl's terms as fitted; and
  // with the defaults: the topology's NVLink efficiency and nccl's default terms.
  Topology measured_fabric = topology;
  measured_fabric.scale_up.bandwidth_Bps = a2a.bandwidth_Bps;
  const FabricLayout measured_layout(measured_fabric, a2a.num_ranks), default_layout(topology, a2a.num_ranks);
  // The nccl terms exactly as a run would take them (comm_model.cc): with this profile, and
  // without its all-to-all.
  SimulationInputs with_profile;
  with_profile.topology = topology;
  with_profile.profile = profile;
  const CommModel measured = CommModelFor(with_profile, Phase::kDispatch);
  SimulationInputs without = with_profile;
  without.profile.a2a = AllToAllModel();
  const CommModel defaults = CommModelFor(without, Phase::kDispatch);
  const double line_GBps = topology.scale_up.line_rate_Bps / 1e9;
  std::string out;
  StrAppendFormat(&out, "# epsim fabric-check: profile %s (%s, device %s), NCCL all-to-all between %d GPUs%s\n",
                  profile.name.c_str(), DisplayPath(profile_path).c_str(), profile.device_name.c_str(), a2a.num_ranks,
                  a2a.source.empty() ? "" : (" (" + a2a.source + ")").c_str());
  StrAppendFormat(&out, "#   fit: %.3g us + %.3g us per peer + bytes sent / %.1f GB/s; against topology %s (gpu %s): "
                  "NVLink %.1f GB/s line rate x %.3g = %.1f GB/s, %.3g us\n",
                  a2a.fixed_s * 1e6, a2a.per_message_s * 1e6, a2a.bandwidth_Bps / 1e9, topology.name.c_str(),
                  topology.gpu.c_str(), line_GBps, topology.scale_up.efficiency, topology.scale_up.bandwidth_Bps / 1e9,
                  topology.scale_up.latency_s * 1e6);
  StrAppendFormat(&out, "#  bytes/peer    skew  peers  bytes sent (MB)  measured (us)  with profile (us)    error"
                  "  defaults (us)    error  measured (GB/s)\n");
  // Percent error of `model_s` against the measurement, to one decimal (no "-0.0").
  auto error_percent = [](double model_s, double measured_s) {
    const double e = 100 * (model_s - measured_s) / measured_s;
    return std::fabs(e) < 0.05 ? 0.0 : e;
  };
  for (const AllToAllModel::Row& row : a2a.table) {
    const double with_profile_s = ExchangeTimeS(measured_layout, MeasuredExchange(a2a.num_ranks, row, measured));
    const double default_s = ExchangeTimeS(default_layout, MeasuredExchange(a2a.num_ranks, row, defaults));
    StrAppendFormat(&out, "  %11.0f %7.2f %6d %16.3f %14.1f %18.1f %+7.1f%% %14.1f %+7.1f%% %16.1f\n", row.bytes_per_peer,
                    row.skew, row.peers, row.bytes_sent / 1e6, row.time_s * 1e6, with_profile_s * 1e6,
                    error_percent(with_profile_s, row.time_s), default_s * 1e6, error_percent(default_s, row.time_s),
                    row.bytes_sent / row.time_s / 1e9);
  }
  StrAppendFormat(&out,
                  "# with this profile the simulator runs %s's NVLink at %.1f GB/s (scale_up.efficiency %.3f of %.1f GB/s; "
                  "the topology's own: %.3g) and nccl at %.3g us + %.3g us per peer (without it: %.3g us + %.3g us, %s)\n",
                  topology.name.c_str(), a2a.bandwidth_Bps / 1e9, a2a.bandwidth_Bps / topology.scale_up.line_rate_Bps,
                  line_GBps, topology.scale_up.efficiency, measured.fixed_s * 1e6, measured.per_message_s * 1e6,
                  defaults.fixed_s * 1e6, defaults.per_message_s * 1e6, defaults.source.c_str());
  // The calibrator times each exchange on the host around the NCCL call and the stream
  // synchronizations, so its fixed cost includes launch, synchronization and one trip
  // through the switch, which the replay adds per flow.
  StrAppendFormat(&out,
                  "# the fitted fixed cost (%.3g us) is a whole call timed on the host (NCCL's launch, stream "
                  "synchronization, one trip through the switch): the simulator takes it less the %.3g us of "
                  "scale_up.latency it adds to every flow\n",
                  a2a.fixed_s * 1e6, topology.scale_up.latency_s * 1e6);
  return out;
}

}  // namespace epsim
