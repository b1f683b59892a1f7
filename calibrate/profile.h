// epsim: cost profiles, the only thing that passes between the calibrator and the simulator.
//
// A profile says how long each EP-layer operation takes on one device, as a model of the
// shape: a datasheet profile (`source: datasheet`, every figure cited) or a measured one
// (`source: measured`, fitted by epsim-calibrate). Schema: calibrate/profiles/README.md.
#ifndef EPSIM_CALIBRATE_PROFILE_H_
#define EPSIM_CALIBRATE_PROFILE_H_

#include <map>
#include <string>

namespace epsim {

constexpr int kProfileSchemaVersion = 1;

// One operation's cost model, form "roofline":
//   time = fixed + max(flops / flop_rate(tokens), bytes / mem_rate)
//   flop_rate(tokens) = flop_rate * tokens / (tokens + half_rate_tokens)
// where half_rate_tokens models small-M GEMM inefficiency (0: none).
struct OpModel {
  std::string name;
  std::string form = "roofline";
  double fixed_s = 0;
  double flop_rate_Fps = 0;      // achieved FLOP/s at large shapes
  double mem_rate_Bps = 0;       // achieved bytes/s (read + written)
  double half_rate_tokens = 0;
  double valid_tokens_min = 0;   // shapes the model was fitted or stated for
  double valid_tokens_max = 0;   // 0: no upper bound stated
  double heldout_error = -1;     // median relative error on held-out samples; -1: none

  double TimeS(double flops, double bytes, double tokens) const;
  bool InRange(double tokens) const {
    return tokens >= valid_tokens_min && (valid_tokens_max <= 0 || tokens <= valid_tokens_max);
  }
};

struct Profile {
  int schema_version = kProfileSchemaVersion;
  std::string file;
  std::string name;              // short name, e.g. "h100"
  std::string source;            // "datasheet" or "measured"
  std::string device_name;       // e.g. "NVIDIA H100 SXM5 80GB"
  double memory_bytes = 0;       // device memory
  std::map<std::string, OpModel> ops;

  // The model of `op`; throws ConfigError naming the file if absent.
  const OpModel& Op(const std::string& op) const;
};

// Loads a profile; refuses unknown schema versions and malformed models (ConfigError).
Profile LoadProfile(const std::string& path);
Profile ParseProfile(const std::string& yaml_text, const std::string& name);

}  // namespace epsim

#endif  // EPSIM_CALIBRATE_PROFILE_H_
