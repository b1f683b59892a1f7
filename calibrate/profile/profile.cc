// epsim: profile loading (see profile.h).
#include "calibrate/profile/profile.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/yaml.h"

namespace epsim {
namespace {

const std::vector<std::string>& KnownOps() {
  static const std::vector<std::string> kOps = {"route", "permute", "expert", "combine"};
  return kOps;
}

constexpr double kInf = std::numeric_limits<double>::infinity();

// The grouped_gemm form's kernel parameters (profile.h).
GroupedGemmModel ParseGroupedGemm(YamlMap& map) {
  GroupedGemmModel g;
  g.sms = static_cast<int>(map.Int("sms", 1));
  g.row_tile = static_cast<int>(map.Int("row_tile", 1));
  g.col_tile = static_cast<int>(map.Int("col_tile", 1));
  if (g.sms > 4096) map.Fail("sms", "more than 4096 SMs: not a GPU");
  if (g.row_tile > 4096) map.Fail("row_tile", "more than 4096 rows per tile");
  if (g.col_tile > 4096) map.Fail("col_tile", "more than 4096 columns per tile");
  g.peak_bf16_Fps = map.Positive("peak_bf16_TFLOPs") * 1e12;
  g.peak_fp8_Fps = map.PositiveOr("peak_fp8_TFLOPs", 0.0) * 1e12;
  g.efficiency = map.Positive("efficiency");
  if (g.efficiency > 1) map.Fail("efficiency", "a fraction of peak: at most 1");
  g.efficiency_fp8 = map.PositiveOr("efficiency_fp8", g.efficiency);
  if (g.efficiency_fp8 > 1) map.Fail("efficiency_fp8", "a fraction of peak: at most 1");
  if (map.Has("efficiency_fp8") && g.peak_fp8_Fps <= 0) map.Fail("efficiency_fp8", "without peak_fp8_TFLOPs");
  g.k_half = map.PositiveOr("k_half", 0.0, /*allow_zero=*/true);
  return g;
}

OpModel ParseOp(YamlMap map, const std::string& name) {
  OpModel op;
  op.name = name;
  op.form = map.String("form");
  if (op.form == "grouped_gemm" && name != "expert")
    map.Fail("form", "grouped_gemm models the expert operation only");
  if (op.form != "roofline" && op.form != "grouped_gemm")
    map.Fail("form", "unknown model form (expected roofline or grouped_gemm)");
  op.fixed_s = map.PositiveOr("fixed_us", 0.0, /*allow_zero=*/true) * 1e-6;
  if (op.IsGroupedGemm()) {
    op.gemm = ParseGroupedGemm(map);
    op.mem_rate_Bps = map.Positive("mem_rate_GBps") * 1e9;
    op.flop_rate_Fps = op.gemm.peak_bf16_Fps * op.gemm.efficiency;  // its long-K bf16 rate, for reports
  } else {
    if (!map.Has("flop_rate_TFLOPs") && !map.Has("mem_rate_GBps"))
      map.Fail("mem_rate_GBps", "missing: give flop_rate_TFLOPs, mem_rate_GBps or both");
    op.flop_rate_Fps = map.Has("flop_rate_TFLOPs") ? map.Positive("flop_rate_TFLOPs") * 1e12 : kInf;
    op.mem_rate_Bps = map.Has("mem_rate_GBps") ? map.Positive("mem_rate_GBps") * 1e9 : kInf;
    op.half_rate_tokens = map.PositiveOr("half_rate_tokens", 0.0, /*allow_zero=*/true);
  }
  op.valid_tokens_min = map.PositiveOr("valid_tokens_min", 0.0, /*allow_zero=*/true);
  op.valid_tokens_max = map.PositiveOr("valid_tokens_max", 0.0, /*allow_zero=*/true);
  op.heldout_error = map.PositiveOr("heldout_error", -1.0, /*allow_zero=*/true);
  op.heldout_error_p90 = map.PositiveOr("heldout_error_p90", -1.0, /*allow_zero=*/true);
  op.num_points = static_cast<int>(map.IntOr("num_points", 0, 0));
  op.num_outliers = static_cast<int>(map.IntOr("num_outliers", 0, 0));
  op.valid_shapes = map.StringOr("valid_shapes", "");
  op.note = map.StringOr("note", "");
  if (op.valid_tokens_max > 0 && op.valid_tokens_max < op.valid_tokens_min)
    map.Fail("valid_tokens_max", "must be >= valid_tokens_min");
  map.Ignore("sources");
  map.Finish();
  return op;
}

KeyValues ParseKeyValues(const YAML::Node& node, const std::string& file, const std::string& key) {
  KeyValues out;
  if (!node.IsMap()) throw ConfigError(file, key, "", "expected a mapping of names to values");
  for (const auto& kv : node) {
    // A complex key ("? [a, b]: 1") has no text: as<std::string>() would throw a YAML
    // exception that no caller expects.
    if (!kv.first.IsScalar()) throw ConfigError(file, key, "", "expected names as keys");
    const std::string name = kv.first.Scalar();
    if (!kv.second.IsScalar()) throw ConfigError(file, key + "." + name, "", "expected a scalar");
    out.push_back({name, kv.second.Scalar()});
  }
  return out;
}

constexpr int64_t kMaxAllToAllRanks = 65536;

// `version` 1 had `latency_us` (read as the fixed cost) and rows without `peers` (every
// other rank).
AllToAllModel ParseAllToAll(YamlMap map, int version) {
  AllToAllModel a;
  a.present = true;
  if (map.Has("skipped")) {
    a.skipped = map.String("skipped");
    map.Finish();
    return a;
  }
  if (map.String("form") != "alltoall") map.Fail("form", "unknown model form (expected alltoall)");
  a.backend = map.String("backend");
  a.source = map.StringOr("source", "");
  const int64_t ranks = map.Int("num_ranks", 2);
  if (ranks > kMaxAllToAllRanks) map.Fail("num_ranks", "more ranks than one measurement holds (at most 65536)");
  a.num_ranks = static_cast<int>(ranks);
  if (version == 1) {
    a.fixed_s = map.PositiveOr("latency_us", 0.0, /*allow_zero=*/true) * 1e-6;
  } else {
    a.fixed_s = map.PositiveOr("fixed_us", 0.0, /*allow_zero=*/true) * 1e-6;
    a.per_message_s = map.PositiveOr("per_message_us", 0.0, /*allow_zero=*/true) * 1e-6;
  }
  a.bandwidth_Bps = map.Positive("bandwidth_GBps") * 1e9;
  // Bounds no measurement comes near, so that a run never meets an absurd call: at most 1 s
  // per call or per message, at least 1 MB/s.
  const std::string fixed_key = version == 1 ? "latency_us" : "fixed_us";
  if (a.fixed_s > 1.0) map.Fail(fixed_key, "more than 1 s per call: not a measurement");
  if (a.per_message_s > 1.0) map.Fail("per_message_us", "more than 1 s per message: not a measurement");
  if (a.bandwidth_Bps < 1e6) map.Fail("bandwidth_GBps", "less than 1 MB/s: not a measurement");
  a.heldout_error = map.PositiveOr("heldout_error", -1.0, /*allow_zero=*/true);
  a.heldout_error_p90 = map.PositiveOr("heldout_error_p90", -1.0, /*allow_zero=*/true);
  a.valid_bytes_min = map.PositiveOr("valid_bytes_min", 0.0, /*allow_zero=*/true);
  a.valid_bytes_max = map.PositiveOr("valid_bytes_max", 0.0, /*allow_zero=*/true);
  map.Ignore("note");
  if (map.Has("table")) {
    const YAML::Node table = map.Node("table");
    if (!table.IsSequence()) map.Fail("table", "expected a list of measured cases");
    for (size_t i = 0; i < table.size(); ++i) {
      YamlMap row(table[i], map.file(), map.KeyPath("table") + "[" + std::to_string(i) + "]");
      AllToAllModel::Row r;
      r.bytes_per_peer = row.Positive("bytes_per_peer");
      r.skew = row.Positive("skew");
      const int64_t peers = version == 1 ? a.num_ranks - 1 : row.Int("peers", 1);
      if (peers > a.num_ranks - 1) row.Fail("peers", "more than num_ranks - 1");
      r.peers = static_cast<int>(peers);
      r.bytes_sent = row.Positive("bytes_sent");
      r.time_s = row.Positive("time_us") * 1e-6;
      row.Ignore("bandwidth_GBps");
      row.Finish();
      a.table.push_back(r);
    }
  }
  map.Finish();
  return a;
}

Profile FromYaml(const YAML::Node& root, const std::string& file) {
  YamlMap top(root, file, "");
  Profile p;
  p.file = file;
  p.schema_version = static_cast<int>(top.Int("schema_version", 0));
  if (p.schema_version < 1 || p.schema_version > kProfileSchemaVersion) {
    top.Fail("schema_version", "unknown profile schema version (this epsim reads versions 1 to " +
                                   std::to_string(kProfileSchemaVersion) + ")");
  }
  p.name = top.String("name");
  p.source = top.String("source");
  if (p.source != "datasheet" && p.source != "measured")
    top.Fail("source", "expected datasheet or measured");
  YamlMap device = top.Child("device");
  p.device_name = device.String("name");
  p.memory_bytes = device.SizeBytes("memory");
  device.Ignore("peak_bf16_TFLOPs");
  device.Ignore("peak_fp8_TFLOPs");
  device.Ignore("hbm_bandwidth");
  device.Ignore("sources");
  if (device.Has("properties"))
    p.device_properties = ParseKeyValues(device.Node("properties"), file, "device.properties");
  device.Finish();
  if (top.Has("software")) p.software = ParseKeyValues(top.Node("software"), file, "software");
  top.Ignore("sources");
  p.samples_csv = top.StringOr("samples_csv", "");
  top.Ignore("sweep");
  YamlMap ops = top.Child("operations");
  for (const std::string& op : KnownOps()) p.ops[op] = ParseOp(ops.Child(op), op);
  if (ops.Has("layout")) p.ops["layout"] = ParseOp(ops.Child("layout"), "layout");
  if (ops.Has("a2a")) p.a2a = ParseAllToAll(ops.Child("a2a"), p.schema_version);
  p.schema_version = kProfileSchemaVersion;  // read into this version's form
  ops.Finish();
  top.Finish();
  return p;
}

std::string Num(double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.6g", v);
  return buf;
}

// Quotes a free-text scalar for YAML.
std::string Quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

void FormatOp(std::ostringstream& o, const OpModel& op) {
  o << "  " << op.name << ":\n";
  o << "    form: " << op.form << "\n";
  o << "    fixed_us: " << Num(op.fixed_s * 1e6) << "\n";
  if (op.IsGroupedGemm()) {
    const GroupedGemmModel& g = op.gemm;
    o << "    sms: " << g.sms << "\n";
    o << "    row_tile: " << g.row_tile << "\n";
    o << "    col_tile: " << g.col_tile << "\n";
    o << "    peak_bf16_TFLOPs: " << Num(g.peak_bf16_Fps * 1e-12) << "\n";
    if (g.peak_fp8_Fps > 0) o << "    peak_fp8_TFLOPs: " << Num(g.peak_fp8_Fps * 1e-12) << "\n";
    o << "    efficiency: " << Num(g.efficiency) << "\n";
    if (g.peak_fp8_Fps > 0) o << "    efficiency_fp8: " << Num(g.efficiency_fp8) << "\n";
    o << "    k_half: " << Num(g.k_half) << "\n";
    o << "    mem_rate_GBps: " << Num(op.mem_rate_Bps * 1e-9) << "\n";
  } else {
    if (std::isfinite(op.flop_rate_Fps)) o << "    flop_rate_TFLOPs: " << Num(op.flop_rate_Fps * 1e-12) << "\n";
    if (std::isfinite(op.mem_rate_Bps)) o << "    mem_rate_GBps: " << Num(op.mem_rate_Bps * 1e-9) << "\n";
    o << "    half_rate_tokens: " << Num(op.half_rate_tokens) << "\n";
  }
  o << "    valid_tokens_min: " << Num(op.valid_tokens_min) << "\n";
  o << "    valid_tokens_max: " << Num(op.valid_tokens_max) << "\n";
  if (!op.valid_shapes.empty()) o << "    valid_shapes: " << Quote(op.valid_shapes) << "\n";
  if (op.heldout_error >= 0) o << "    heldout_error: " << Num(op.heldout_error) << "\n";
  if (op.heldout_error_p90 >= 0) o << "    heldout_error_p90: " << Num(op.heldout_error_p90) << "\n";
  if (op.num_points > 0) o << "    num_points: " << op.num_points << "\n";
  if (op.num_points > 0) o << "    num_outliers: " << op.num_outliers << "\n";
  if (!op.note.empty()) o << "    note: " << Quote(op.note) << "\n";
}

}  // namespace

CostParts OpModel::RooflineBreakdown(double flops, double bytes, double tokens) const {
  double flop_rate = flop_rate_Fps;
  if (half_rate_tokens > 0 && tokens > 0) flop_rate *= tokens / (tokens + half_rate_tokens);
  CostParts parts;
  parts.fixed_s = fixed_s;
  parts.compute_s = flops > 0 ? flops / flop_rate : 0.0;
  parts.memory_s = bytes > 0 ? bytes / mem_rate_Bps : 0.0;
  return parts;
}

GroupedGemmParts OpModel::GroupedGemmBreakdown(const GroupedGemm& launch) const {
  GroupedGemmParts parts;
  parts.work = GroupedGemmWork(launch);
  if (parts.work.tokens <= 0) return parts;  // no expert has rows: no launch
  const GroupedGemmModel& g = gemm;
  parts.fixed_s = fixed_s;
  parts.tiles = GroupedGemmTiles(launch, g.row_tile, g.col_tile);
  // K in `splits` slices (1: not split): compute and memory time.
  auto with_splits = [&](double splits, GroupedGemmParts& out) {
    out.splits = splits;
    out.waves = std::ceil(parts.tiles * splits / g.sms);
    const double k = launch.k / splits;
    const double k_efficiency = g.Efficiency(launch.dtype) * k / (k + g.k_half);
    const double tile_s = 2.0 * g.row_tile * g.col_tile * k / (g.PeakFps(launch.dtype) / g.sms * k_efficiency);
    out.compute_s = out.waves * tile_s;
    const double partials = splits > 1 ? 8.0 * splits * parts.work.tokens * launch.n : 0;
    out.memory_s = (parts.work.bytes + partials) / mem_rate_Bps;
  };
  with_splits(1, parts);
  // A library that splits K takes the split that runs fastest, up to one slice per idle SM.
  const double most = launch.split_k && parts.tiles < g.sms ? std::floor(g.sms / parts.tiles) : 1;
  for (double splits = 2; splits <= most; ++splits) {
    GroupedGemmParts split = parts;
    with_splits(splits, split);
    if (split.TimeS() < parts.TimeS()) parts = split;
  }
  return parts;
}

const OpModel& Profile::Op(const std::string& op) const {
  auto it = ops.find(op);
  if (it == ops.end()) throw ConfigError(file, "operations." + op, "", "missing operation");
  return it->second;
}

Profile LoadProfile(const std::string& path) { return FromYaml(LoadYamlFile(path), path); }

Profile ParseProfile(const std::string& yaml_text, const std::string& name) {
  return FromYaml(LoadYamlString(yaml_text, name), name);
}

std::string FormatProfile(const Profile& p, const std::string& header) {
  std::ostringstream o;
  o << header;
  o << "schema_version: " << p.schema_version << "\n";
  o << "name: " << Quote(p.name) << "\n";
  o << "source: " << p.source << "\n";
  o << "device:\n";
  o << "  name: " << Quote(p.device_name) << "\n";
  o << "  memory: " << static_cast<long long>(p.memory_bytes) << "B\n";
  if (!p.device_properties.empty()) {
    o << "  properties:\n";
    for (const auto& [k, v] : p.device_properties) o << "    " << k << ": " << Quote(v) << "\n";
  }
  if (!p.software.empty()) {
    o << "software:\n";
    for (const auto& [k, v] : p.software) o << "  " << k << ": " << Quote(v) << "\n";
  }
  if (!p.samples_csv.empty()) o << "samples_csv: " << Quote(p.samples_csv) << "\n";
  o << "operations:\n";
  for (const char* name : {"route", "layout", "permute", "expert", "combine"}) {
    auto it = p.ops.find(name);
    if (it != p.ops.end()) FormatOp(o, it->second);
  }
  const AllToAllModel& a = p.a2a;
  if (a.present) {
    o << "  a2a:\n";
    if (!a.skipped.empty()) {
      o << "    skipped: " << Quote(a.skipped) << "\n";
    } else {
      o << "    form: alltoall\n";
      o << "    backend: " << a.backend << "\n";
      if (!a.source.empty()) o << "    source: " << Quote(a.source) << "\n";
      o << "    num_ranks: " << a.num_ranks << "\n";
      o << "    fixed_us: " << Num(a.fixed_s * 1e6) << "\n";
      o << "    per_message_us: " << Num(a.per_message_s * 1e6) << "\n";
      o << "    bandwidth_GBps: " << Num(a.bandwidth_Bps * 1e-9) << "\n";
      if (a.heldout_error >= 0) o << "    heldout_error: " << Num(a.heldout_error) << "\n";
      if (a.heldout_error_p90 >= 0) o << "    heldout_error_p90: " << Num(a.heldout_error_p90) << "\n";
      o << "    valid_bytes_min: " << Num(a.valid_bytes_min) << "\n";
      o << "    valid_bytes_max: " << Num(a.valid_bytes_max) << "\n";
      o << "    table:\n";
      for (const AllToAllModel::Row& r : a.table) {
        o << "      - {bytes_per_peer: " << Num(r.bytes_per_peer) << ", skew: " << Num(r.skew)
          << ", peers: " << r.peers << ", bytes_sent: " << Num(r.bytes_sent) << ", time_us: " << Num(r.time_s * 1e6)
          << ", bandwidth_GBps: " << Num(r.bytes_sent / r.time_s * 1e-9) << "}\n";
      }
    }
  }
  return o.str();
}

}  // namespace epsim
