// epsim: profile loading (see profile.h).
#include "calibrate/profile.h"

#include <algorithm>
#include <string>
#include <vector>

#include "sim/config.h"

namespace epsim {
namespace {

const std::vector<std::string>& KnownOps() {
  static const std::vector<std::string> kOps = {"route", "permute", "expert", "combine"};
  return kOps;
}

OpModel ParseOp(YamlMap map, const std::string& name) {
  OpModel op;
  op.name = name;
  op.form = map.String("form");
  if (op.form != "roofline") map.Fail("form", "unknown model form (expected roofline)");
  op.fixed_s = map.PositiveOr("fixed_us", 0.0, /*allow_zero=*/true) * 1e-6;
  op.flop_rate_Fps = map.Positive("flop_rate_TFLOPs") * 1e12;
  op.mem_rate_Bps = map.Positive("mem_rate_GBps") * 1e9;
  op.half_rate_tokens = map.PositiveOr("half_rate_tokens", 0.0, /*allow_zero=*/true);
  op.valid_tokens_min = map.PositiveOr("valid_tokens_min", 0.0, /*allow_zero=*/true);
  op.valid_tokens_max = map.PositiveOr("valid_tokens_max", 0.0, /*allow_zero=*/true);
  op.heldout_error = map.PositiveOr("heldout_error", -1.0, /*allow_zero=*/true);
  if (op.valid_tokens_max > 0 && op.valid_tokens_max < op.valid_tokens_min)
    map.Fail("valid_tokens_max", "must be >= valid_tokens_min");
  map.Ignore("note");
  map.Ignore("sources");
  map.Finish();
  return op;
}

Profile FromYaml(const YAML::Node& root, const std::string& file) {
  YamlMap top(root, file, "");
  Profile p;
  p.file = file;
  p.schema_version = static_cast<int>(top.Int("schema_version", 0));
  if (p.schema_version != kProfileSchemaVersion) {
    top.Fail("schema_version", "unknown profile schema version (this epsim reads version " +
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
  device.Ignore("properties");
  device.Finish();
  top.Ignore("software");
  top.Ignore("sources");
  top.Ignore("samples_csv");
  YamlMap ops = top.Child("operations");
  for (const std::string& op : KnownOps()) p.ops[op] = ParseOp(ops.Child(op), op);
  ops.Ignore("layout");
  ops.Ignore("a2a");
  ops.Finish();
  top.Finish();
  return p;
}

}  // namespace

double OpModel::TimeS(double flops, double bytes, double tokens) const {
  double flop_rate = flop_rate_Fps;
  if (half_rate_tokens > 0 && tokens > 0) flop_rate *= tokens / (tokens + half_rate_tokens);
  const double compute = flops > 0 ? flops / flop_rate : 0.0;
  const double memory = bytes > 0 ? bytes / mem_rate_Bps : 0.0;
  return fixed_s + std::max(compute, memory);
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

}  // namespace epsim
