// epsim report: `epsim cost`, what a profile predicts for one kernel at one shape, the way
// kernel benchmarks report it, so that a profile can be held against a user's own numbers.
//
//   gemm     one grouped GEMM launch: groups x rows, N, K, dtype (an expert model of form
//            grouped_gemm; a roofline model prices 2 M N K FLOPs and its bytes instead)
//   dense    the same as a dense GEMM that splits K over idle SMs (the attention's
//            projections: GroupedGemm::split_k)
//   expert   the expert layer of one GPU: gate/up then down over rows per expert
//   route, permute, combine   the other phases of a step at a token count
//
// Each prediction says its time, what bounds it (compute, memory, or the floor: the fixed
// cost is the larger part) and the achieved FLOP/s against the dtype's peak.
#ifndef EPSIM_SIM_REPORT_COST_REPORT_H_
#define EPSIM_SIM_REPORT_COST_REPORT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "calibrate/profile/profile.h"
#include "sim/engine/cost_model.h"

namespace epsim {

struct CostCase {
  std::string op = "gemm";      // gemm, dense, expert, route, permute, combine
  std::vector<int64_t> rows;    // gemm, expert: rows of each group (expert)
  double n = 0, k = 0;          // gemm, dense
  GemmDtype dtype = GemmDtype::kBf16;  // gemm, expert
  int64_t tokens = 0;           // route, permute, combine: tokens on the GPU
  int64_t copies = -1;          // permute, combine: dispatched or returned copies; -1: tokens x top_k
  LayerShape shape;             // expert, route, permute, combine
};

struct CostPrediction {
  double time_s = 0;
  std::string bound;            // compute, memory, floor
  double flops = 0;             // useful FLOPs
  double bytes = 0;             // bytes through HBM
  double peak_Fps = 0;          // the dtype's peak; 0: the model has none (roofline)
  std::string detail;           // tiles and waves, per launch
  double Efficiency() const { return peak_Fps > 0 && time_s > 0 ? flops / time_s / peak_Fps : -1; }
};

// The operations `op` may name.
const std::vector<std::string>& CostOps();

// What `profile` predicts for `c`; throws ConfigError(kCommandLine, flag, ...) for a shape
// the op cannot take (e.g. fp8 on a model without an fp8 peak).
CostPrediction PredictCost(const Profile& profile, const CostCase& c);

// The lines `epsim cost` prints for one case.
std::string FormatCostPrediction(const Profile& profile, const CostCase& c, const CostPrediction& p);

// `epsim cost --csv FILE`: one case per row of `csv_text` (read from `file`), a column per
// shape field (op, groups, m, n, k, dtype, tokens, copies, hidden, expert_ffn, experts,
// top_k; missing columns take `defaults`' values), written back with predicted_us, bound,
// tflops and efficiency added. Throws ConfigError naming the file, line and column.
std::string PredictCostCsv(const Profile& profile, const std::string& csv_text, const std::string& file,
                           const CostCase& defaults);

}  // namespace epsim

#endif  // EPSIM_SIM_REPORT_COST_REPORT_H_
