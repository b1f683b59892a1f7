// epsim cli: `epsim cost` (see commands.h and sim/report/cost_report.h).
#include <algorithm>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "calibrate/profile/profile.h"
#include "common/command_line.h"
#include "common/error.h"
#include "common/files.h"
#include "common/numbers.h"
#include "common/yaml.h"
#include "sim/cli/commands.h"
#include "sim/config/data_files.h"
#include "sim/config/scenario.h"
#include "sim/report/cost_report.h"

namespace epsim {
namespace {

void PrintUsage() {
  std::printf(
      "usage: epsim cost --profile PROFILE [--op gemm|dense] --m M|M1,M2,... [--groups G] --n N --k K [--dtype bf16|fp8]\n"
      "       epsim cost --profile PROFILE --op expert --m M|M1,... [--groups G] --hidden H --expert-ffn F [--dtype ...]\n"
      "       epsim cost --profile PROFILE --op route|permute|combine --tokens T --hidden H\n"
      "                  [--experts E] [--top-k K] [--copies C] [--dispatch-dtype bf16|fp8]\n"
      "       epsim cost --profile PROFILE --csv CASES.csv [any flag above as a default]\n"
      "\n"
      "What PROFILE predicts for one kernel at one shape, as kernel benchmarks report it: the\n"
      "time, what bounds it (compute, memory, or the floor), and the achieved FLOP/s against\n"
      "the dtype's peak. gemm: one grouped GEMM launch, G groups of M rows (or one per listed M)\n"
      "times N x K; dense: the same as a dense GEMM that splits K over the SMs its tiles leave\n"
      "idle (the attention's projections); expert: a GPU's expert layer (gate/up N 2F K H, then\n"
      "down N H K F);\n"
      "route, permute, combine: the other phases at T tokens (copies: dispatched or returned\n"
      "copies, default T x top-k). --csv: one case per row, a column per field (op, groups, m,\n"
      "n, k, dtype, tokens, copies, hidden, expert_ffn, experts, top_k); prints the rows with\n"
      "predicted_us, bound, tflops and efficiency added.\n");
}

std::vector<int64_t> Rows(const CommandLine& line) {
  const std::string text = line.Get("--m");
  std::vector<int64_t> rows;
  std::stringstream parts(text);
  for (std::string part; std::getline(parts, part, ',');) rows.push_back(FlagInt("--m", part, 0, 1 << 30));
  if (rows.empty()) throw ConfigError(kCommandLine, "--m", text, "expected rows, or a comma-separated list");
  if (line.Has("--groups")) {
    const int64_t groups = FlagInt("--groups", line.Get("--groups"), 1, 1 << 20);
    if (rows.size() == 1) {
      rows.assign(static_cast<size_t>(groups), rows.front());
    } else if (static_cast<int64_t>(rows.size()) != groups) {
      throw ConfigError(kCommandLine, "--groups", line.Get("--groups"),
                        "differs from the " + std::to_string(rows.size()) + " rows listed in --m");
    }
  }
  return rows;
}

double Dimension(const CommandLine& line, const std::string& flag) {
  return line.Has(flag) ? static_cast<double>(FlagInt(flag, line.Get(flag), 1, 1 << 30)) : 0;
}

GemmDtype DtypeFlag(const CommandLine& line) {
  const std::string d = line.Get("--dtype", "bf16");
  if (d != "bf16" && d != "fp8") throw ConfigError(kCommandLine, "--dtype", d, "expected bf16 or fp8");
  return d == "fp8" ? GemmDtype::kFp8 : GemmDtype::kBf16;
}

int Cost(int argc, char** argv) {
  FlagSpec flags;
  flags.with_value = {"--profile", "--op",     "--groups",     "--m",       "--n",     "--k",
                      "--dtype",   "--tokens", "--copies",     "--hidden",  "--expert-ffn",
                      "--experts", "--top-k",  "--dispatch-dtype", "--csv"};
  flags.help_hint = "epsim cost --help";
  const CommandLine line = ParseCommandLine(argc, argv, 2, flags);
  if (line.help) {
    PrintUsage();
    return kExitOk;
  }
  if (!line.Has("--profile")) throw ConfigError(kCommandLine, "--profile", "", "missing (the profile to ask)");
  const std::string profile_path =
      ResolveDataFile("calibrate/profiles", line.Get("--profile"), kCommandLine, "--profile");
  const Profile profile = LoadProfile(profile_path);

  CostCase c;
  c.op = line.Get("--op", "gemm");
  if (std::find(CostOps().begin(), CostOps().end(), c.op) == CostOps().end())
    throw ConfigError(kCommandLine, "--op", c.op, "unknown operation (gemm, dense, expert, route, permute or combine)");
  if (line.Has("--m")) c.rows = Rows(line);
  c.n = Dimension(line, "--n");
  c.k = Dimension(line, "--k");
  c.dtype = DtypeFlag(line);
  if (line.Has("--tokens")) c.tokens = FlagInt("--tokens", line.Get("--tokens"), 0, 1 << 30);
  if (line.Has("--copies")) c.copies = FlagInt("--copies", line.Get("--copies"), 0, 1LL << 40);
  c.shape.hidden = static_cast<int64_t>(Dimension(line, "--hidden"));
  c.shape.expert_ffn = static_cast<int64_t>(Dimension(line, "--expert-ffn"));
  c.shape.num_experts = line.Has("--experts") ? FlagInt("--experts", line.Get("--experts"), 1, 1 << 20) : 0;
  c.shape.top_k = line.Has("--top-k") ? FlagInt("--top-k", line.Get("--top-k"), 1, 1 << 10) : 1;
  const std::string dispatch = line.Get("--dispatch-dtype", "bf16");
  if (dispatch != "bf16" && dispatch != "fp8")
    throw ConfigError(kCommandLine, "--dispatch-dtype", dispatch, "expected bf16 or fp8");
  c.shape.dispatch_token_bytes =
      Scenario::TokenBytes(dispatch == "fp8" ? Dtype::kFp8 : Dtype::kBf16, c.shape.hidden);
  c.shape.expert_dtype = c.dtype;

  if (line.Has("--csv")) {
    const std::string file = line.Get("--csv");
    const std::string text = ReadFileBounded(file, kMaxConfigFileBytes, "cost cases");
    std::fputs(PredictCostCsv(profile, text, file, c).c_str(), stdout);
    return kExitOk;
  }
  if (c.op != "gemm" && c.op != "dense" && c.op != "expert" && !line.Has("--tokens"))
    throw ConfigError(kCommandLine, "--tokens", "", "missing: tokens on the GPU");
  if ((c.op == "route" || c.op == "permute" || c.op == "combine") && c.shape.hidden <= 0)
    throw ConfigError(kCommandLine, "--hidden", "", "missing");
  if (c.op == "route" && c.shape.num_experts <= 0) throw ConfigError(kCommandLine, "--experts", "", "missing");
  const CostPrediction p = PredictCost(profile, c);
  std::fputs(FormatCostPrediction(profile, c, p).c_str(), stdout);
  return kExitOk;
}

}  // namespace

int RunCostCommand(int argc, char** argv) {
  return RunReportingErrors("epsim cost", [&] { return Cost(argc, argv); }, DisplayPath);
}

}  // namespace epsim
