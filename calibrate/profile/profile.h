// epsim: cost profiles, the only thing that passes between the calibrator and the simulator.
//
// A profile says how long each EP-layer operation takes on one device, as a model of the
// shape: a datasheet profile (`source: datasheet`, every figure cited) or a measured one
// (`source: measured`, fitted by epsim-calibrate). Schema: calibrate/profiles/README.md.
#ifndef EPSIM_CALIBRATE_PROFILE_PROFILE_H_
#define EPSIM_CALIBRATE_PROFILE_PROFILE_H_

#include <algorithm>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "calibrate/profile/op_work.h"

namespace epsim {

// Version 2: the all-to-all's fixed and per-message costs (version 1 had one latency, read as
// the fixed cost with no per-message cost). Version 3: the "grouped_gemm" form of the expert
// operation (versions 1 and 2 are read as they are: their forms are all still valid).
constexpr int kProfileSchemaVersion = 3;

// Form "grouped_gemm" (the expert operation only): a grouped GEMM kernel as a grid of
// row_tile x col_tile output tiles run in waves over the GPU's SMs:
//   tiles   = GroupedGemmTiles (op_work.h: every expert's rows rounded up to row_tile)
//   tile    = 2 row_tile col_tile K / (peak / sms x efficiency x K / (K + k_half))
//             (peak and efficiency those of the launch's dtype)
//   compute = ceil(tiles / sms) x tile
//   time    = fixed + max(compute, bytes / mem_rate)
// so small experts pay for whole tiles, a last partial wave leaves SMs idle, short K runs
// below the long-K efficiency, and at small M the weights' bytes bind. peak is the dtype's
// dense peak; a dtype without one (0) is not supported by the device.
// A dense GEMM that splits K (GroupedGemm::split_k) with fewer tiles than SMs may run S
// slices of K / S each, 1 <= S <= floor(sms / tiles) (one wave, each slice at its own K's
// efficiency), writing and reading every slice's fp32 partial output (8 bytes per element
// per slice) to sum them; it runs the S that is fastest, as a library's heuristics pick:
// a model of cuBLAS's split-K, not a fit.
struct GroupedGemmModel {
  int sms = 0;
  int row_tile = 0;
  int col_tile = 0;
  double peak_bf16_Fps = 0;
  double peak_fp8_Fps = 0;   // 0: no fp8 tensor cores (e.g. A100)
  double efficiency = 0;     // bf16: of peak, one tile at long K
  double efficiency_fp8 = 0; // the same for fp8 (fp8 GEMMs reach a smaller share of their peak)
  double k_half = 0;         // K at which a tile runs at half of its efficiency
  double PeakFps(GemmDtype dtype) const { return dtype == GemmDtype::kFp8 ? peak_fp8_Fps : peak_bf16_Fps; }
  double Efficiency(GemmDtype dtype) const { return dtype == GemmDtype::kFp8 ? efficiency_fp8 : efficiency; }
};

// The parts of one call's time: fixed + max(compute, memory).
struct CostParts {
  double fixed_s = 0, compute_s = 0, memory_s = 0;
  double TimeS() const { return fixed_s + std::max(compute_s, memory_s); }
  // What sets the time: "floor" when the fixed cost is the larger part, else "compute" or "memory".
  const char* Bound() const {
    return fixed_s >= std::max(compute_s, memory_s) ? "floor" : compute_s >= memory_s ? "compute" : "memory";
  }
};

// One grouped GEMM launch as the grouped_gemm form sees it (no expert with rows: all 0).
struct GroupedGemmParts : CostParts {
  double tiles = 0, waves = 0;
  double splits = 1;  // slices of K (GroupedGemm::split_k)
  OpWork work;  // useful FLOPs and bytes (op_work.h)
};

// One operation's cost model, form "roofline":
//   time = fixed + max(flops / flop_rate(tokens), bytes / mem_rate)
//   flop_rate(tokens) = flop_rate * tokens / (tokens + half_rate_tokens)
// where half_rate_tokens models small-M GEMM inefficiency (0: none). A rate left out of the
// file is infinite: the operation is never bound by it (e.g. the FLOPs of a gather).
struct OpModel {
  std::string name;
  std::string form = "roofline";  // or "grouped_gemm" (expert only; below)
  double fixed_s = 0;
  double flop_rate_Fps = 0;      // achieved FLOP/s at large shapes
  double mem_rate_Bps = 0;       // achieved bytes/s (read + written)
  double half_rate_tokens = 0;
  double valid_tokens_min = 0;   // shapes the model was fitted or stated for
  double valid_tokens_max = 0;   // 0: no upper bound stated
  double heldout_error = -1;     // median relative error on held-out samples; -1: none
  double heldout_error_p90 = -1; // 90th percentile of the same; -1: none
  int num_points = 0;            // measured cases the fit used (0: datasheet)
  int num_outliers = 0;          // of those, flagged as outliers
  std::string valid_shapes;      // free text: the other dimensions swept
  std::string note;              // free text, e.g. which rate is only a bound

  GroupedGemmModel gemm;         // form grouped_gemm

  // Form roofline.
  CostParts RooflineBreakdown(double flops, double bytes, double tokens) const;
  double TimeS(double flops, double bytes, double tokens) const { return RooflineBreakdown(flops, bytes, tokens).TimeS(); }
  // Form grouped_gemm: one launch; the dtype must have a peak (callers check PeakFps first).
  GroupedGemmParts GroupedGemmBreakdown(const GroupedGemm& launch) const;
  double GroupedGemmS(const GroupedGemm& launch) const {
    const GroupedGemmParts parts = GroupedGemmBreakdown(launch);
    return parts.work.tokens > 0 ? parts.TimeS() : 0;
  }
  bool IsGroupedGemm() const { return form == "grouped_gemm"; }
  bool InRange(double tokens) const {
    return tokens >= valid_tokens_min && (valid_tokens_max <= 0 || tokens <= valid_tokens_max);
  }
};

// The all-to-all measured between 2+ ranks (form "alltoall"), when one ran or was imported:
//   time = fixed + messages x per_message + bytes a rank sends to others / bandwidth
// where messages is the number of peers a rank sends to, plus the measured medians. The
// simulator uses the terms for the nccl implementation (sim/traffic/comm_model.h) and the
// bandwidth as the NVLink rate (sim/config/inputs.cc).
struct AllToAllModel {
  bool present = false;
  std::string skipped;           // why it was not measured (then nothing else is set)
  std::string backend;           // "mpi" or "nccl"
  std::string source;            // "" when epsim-calibrate measured it; else e.g. "nccl-tests: FILE"
  int num_ranks = 0;
  double fixed_s = 0;            // per call
  double per_message_s = 0;      // per peer a rank sends to
  double bandwidth_Bps = 0;      // per rank, bytes sent to others per second
  double heldout_error = -1;
  double heldout_error_p90 = -1;
  double valid_bytes_min = 0;    // bytes a rank sends to others
  double valid_bytes_max = 0;
  struct Row {
    double bytes_per_peer = 0;   // base message size
    double skew = 1;             // the hot peer gets skew x bytes_per_peer
    int peers = 0;               // peers a rank sends to (the messages of the fit)
    double bytes_sent = 0;       // per rank, to others
    double time_s = 0;           // median
  };
  std::vector<Row> table;
  double TimeS(double bytes_sent, int messages) const {
    return fixed_s + messages * per_message_s + bytes_sent / bandwidth_Bps;
  }
};

using KeyValues = std::vector<std::pair<std::string, std::string>>;

struct Profile {
  int schema_version = kProfileSchemaVersion;
  std::string file;
  std::string name;              // short name, e.g. "h100"
  std::string source;            // "datasheet" or "measured"
  std::string device_name;       // e.g. "NVIDIA H100 SXM5 80GB"
  double memory_bytes = 0;       // device memory
  KeyValues device_properties;    // measured profiles: what the device reported
  KeyValues software;             // library and compiler versions
  std::string samples_csv;        // raw samples, beside the profile
  std::map<std::string, OpModel> ops;  // route, permute, expert, combine (+ layout)
  AllToAllModel a2a;

  // The model of `op`; throws ConfigError naming the file if absent.
  const OpModel& Op(const std::string& op) const;
};

// Loads a profile; refuses unknown schema versions and malformed models (ConfigError).
Profile LoadProfile(const std::string& path);
Profile ParseProfile(const std::string& yaml_text, const std::string& name);
// The YAML text of a profile, readable by LoadProfile (header: comment lines to put first).
std::string FormatProfile(const Profile& profile, const std::string& header);

}  // namespace epsim

#endif  // EPSIM_CALIBRATE_PROFILE_PROFILE_H_
