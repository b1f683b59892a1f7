// epsim report: `epsim cost` (see cost_report.h).
#include "sim/report/cost_report.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "common/csv.h"
#include "common/error.h"
#include "common/numbers.h"
#include "sim/config/data_files.h"

namespace epsim {
namespace {

const char* DtypeName(GemmDtype d) { return d == GemmDtype::kFp8 ? "fp8" : "bf16"; }

// Adds `b`'s parts to `a` (launches in sequence).
void Add(CostParts& a, const CostParts& b) {
  a.fixed_s += b.fixed_s;
  a.compute_s += b.compute_s;
  a.memory_s += b.memory_s;
}

void Fill(CostPrediction& p, double time_s, const CostParts& parts, const OpWork& work) {
  p.time_s = time_s;
  p.bound = parts.Bound();
  p.flops = work.flops;
  p.bytes = work.bytes;
}

void CheckRows(const CostCase& c) {
  if (c.rows.empty()) throw ConfigError(kCommandLine, "--m", "", "missing: rows per group");
  for (const int64_t m : c.rows)
    if (m < 0) throw ConfigError(kCommandLine, "--m", std::to_string(m), "rows cannot be negative");
}

// One grouped launch on the expert model: grouped_gemm as the simulator runs it, or a
// roofline model's per-expert FFN rates applied to each group's 2 M N K FLOPs and bytes.
CostPrediction Launch(const OpModel& expert, const Profile& profile, const GroupedGemm& g) {
  CostPrediction p;
  if (expert.IsGroupedGemm()) {
    if (expert.gemm.PeakFps(g.dtype) <= 0)
      throw ConfigError(kCommandLine, "--dtype", DtypeName(g.dtype),
                        "profile " + profile.name + " has no " + DtypeName(g.dtype) + " peak");
    const GroupedGemmParts parts = expert.GroupedGemmBreakdown(g);
    Fill(p, parts.work.tokens > 0 ? parts.TimeS() : 0, parts, parts.work);
    p.peak_Fps = expert.gemm.PeakFps(g.dtype);
    p.detail = StrFormat("%.0f tiles of %d x %d in %.0f waves of %d SMs", parts.tiles, expert.gemm.row_tile,
                         expert.gemm.col_tile, parts.waves, expert.gemm.sms) +
               (parts.splits > 1 ? StrFormat(", K split in %.0f", parts.splits) : "");
    return p;
  }
  if (g.dtype == GemmDtype::kFp8)
    throw ConfigError(kCommandLine, "--dtype", "fp8",
                      "profile " + profile.name + "'s expert model is a roofline measured in bf16: no fp8 rate");
  CostParts total;
  double time_s = 0;
  for (const int64_t m : g.rows) {
    if (m <= 0) continue;
    const GroupedGemm one{{m}, g.n, g.k, g.dtype};
    const OpWork w = GroupedGemmWork(one);
    const CostParts parts = expert.RooflineBreakdown(w.flops, w.bytes, static_cast<double>(m));
    time_s += parts.TimeS();
    Add(total, parts);
  }
  Fill(p, time_s, total, GroupedGemmWork(g));
  p.detail = "roofline: one FFN rate per group";
  return p;
}

CostPrediction Roofline(const OpModel& model, const OpWork& work) {
  CostPrediction p;
  const CostParts parts = model.RooflineBreakdown(work.flops, work.bytes, work.tokens);
  Fill(p, parts.TimeS(), parts, work);
  return p;
}

int64_t Copies(const CostCase& c) { return c.copies >= 0 ? c.copies : c.tokens * c.shape.top_k; }

}  // namespace

const std::vector<std::string>& CostOps() {
  static const std::vector<std::string> ops = {"gemm", "dense", "expert", "route", "permute", "combine"};
  return ops;
}

CostPrediction PredictCost(const Profile& profile, const CostCase& c) {
  const OpModel& expert = profile.Op("expert");
  const double h = static_cast<double>(c.shape.hidden), f = static_cast<double>(c.shape.expert_ffn);
  if (c.op == "gemm" || c.op == "dense") {
    CheckRows(c);
    if (!(c.n > 0)) throw ConfigError(kCommandLine, "--n", FormatG(c.n), "must be positive");
    if (!(c.k > 0)) throw ConfigError(kCommandLine, "--k", FormatG(c.k), "must be positive");
    return Launch(expert, profile, {c.rows, c.n, c.k, c.dtype, c.op == "dense"});
  }
  if (c.op == "expert") {
    CheckRows(c);
    if (!(h > 0)) throw ConfigError(kCommandLine, "--hidden", FormatG(h), "must be positive");
    if (!(f > 0)) throw ConfigError(kCommandLine, "--expert-ffn", FormatG(f), "must be positive");
    const CostPrediction up = Launch(expert, profile, GateUpGemm(c.rows, h, f, c.dtype));
    const CostPrediction down = Launch(expert, profile, DownGemm(c.rows, h, f, c.dtype));
    CostPrediction p;
    p.time_s = up.time_s + down.time_s;
    p.bound = up.time_s >= down.time_s ? up.bound : down.bound;
    p.flops = up.flops + down.flops;
    p.bytes = up.bytes + down.bytes;
    p.peak_Fps = up.peak_Fps;
    p.detail = StrFormat("gate/up %.2f us (%s; %s), down %.2f us (%s; %s)", up.time_s * 1e6, up.bound.c_str(),
                         up.detail.c_str(), down.time_s * 1e6, down.bound.c_str(), down.detail.c_str());
    return p;
  }
  if (c.tokens < 0) throw ConfigError(kCommandLine, "--tokens", std::to_string(c.tokens), "cannot be negative");
  if (c.op == "route") {
    return Roofline(profile.Op("route"), RouteWork(static_cast<double>(c.tokens), h,
                                                   static_cast<double>(c.shape.num_experts)));
  }
  if (c.op == "permute") {
    return Roofline(profile.Op("permute"),
                    PermuteWork(static_cast<double>(Copies(c)), c.shape.dispatch_token_bytes));
  }
  if (c.op == "combine") {
    return Roofline(profile.Op("combine"),
                    CombineWork(static_cast<double>(Copies(c)), static_cast<double>(c.tokens), h));
  }
  throw ConfigError(kCommandLine, "--op", c.op, "unknown operation (gemm, expert, route, permute or combine)");
}

std::string FormatCostPrediction(const Profile& profile, const CostCase& c, const CostPrediction& p) {
  std::string shape;
  if (c.op == "gemm" || c.op == "dense" || c.op == "expert") {
    const bool uniform = std::all_of(c.rows.begin(), c.rows.end(), [&](int64_t m) { return m == c.rows.front(); });
    std::string rows;
    if (uniform) {
      rows = StrFormat("%zu x %lld rows", c.rows.size(), static_cast<long long>(c.rows.front()));
    } else {
      for (const int64_t m : c.rows) rows += (rows.empty() ? "rows " : ",") + std::to_string(m);
    }
    shape = c.op != "expert" ? StrFormat("%s, N %.0f, K %.0f, %s", rows.c_str(), c.n, c.k, DtypeName(c.dtype))
                           : StrFormat("%s, hidden %lld, expert FFN %lld, %s", rows.c_str(),
                                       static_cast<long long>(c.shape.hidden),
                                       static_cast<long long>(c.shape.expert_ffn), DtypeName(c.dtype));
  } else {
    shape = StrFormat("%lld tokens", static_cast<long long>(c.tokens));
  }
  std::string out = StrFormat("# epsim cost: profile %s (%s), %s\n", profile.name.c_str(),
                              DisplayPath(profile.file).c_str(), profile.device_name.c_str());
  out += StrFormat("# %s: %s\n", c.op.c_str(), shape.c_str());
  out += StrFormat("  predicted %.2f us, %s-bound", p.time_s * 1e6, p.bound.c_str());
  if (p.time_s > 0) out += StrFormat("; %.1f TFLOP/s", p.flops / p.time_s / 1e12);
  if (p.Efficiency() >= 0) out += StrFormat(", %.1f%% of the %s peak", 100 * p.Efficiency(), DtypeName(c.dtype));
  out += StrFormat("; %.3g MB through HBM\n", p.bytes / 1e6);
  if (!p.detail.empty()) out += "  " + p.detail + "\n";
  return out;
}

namespace {

// The columns a --csv file may have, each setting one field of a case.
const std::vector<std::string>& CsvColumns() {
  static const std::vector<std::string> columns = {"op",     "groups", "m",          "n",       "k",     "dtype",
                                                   "tokens", "copies", "hidden",     "expert_ffn", "experts", "top_k"};
  return columns;
}

}  // namespace

std::string PredictCostCsv(const Profile& profile, const std::string& csv_text, const std::string& file,
                           const CostCase& defaults) {
  CsvTable table;
  try {
    table = ParseCsv(csv_text, file);
  } catch (const std::exception& e) {
    std::string why = e.what();
    if (why.rfind(file + ": ", 0) == 0) why = why.substr(file.size() + 2);
    throw ConfigError(file, "", "", why);
  }
  for (const std::string& column : table.header) {
    if (std::find(CsvColumns().begin(), CsvColumns().end(), column) == CsvColumns().end())
      throw ConfigError(file, "line 1", column,
                        "unknown column (op, groups, m, n, k, dtype, tokens, copies, hidden, expert_ffn, experts, top_k)");
  }
  std::string out;
  for (size_t i = 0; i < table.header.size(); ++i) out += (i ? "," : "") + CsvField(table.header[i]);
  out += std::string(table.header.empty() ? "" : ",") + "predicted_us,bound,tflops,efficiency\n";
  for (size_t r = 0; r < table.rows.size(); ++r) {
    const std::string where = "line " + std::to_string(table.row_lines[r]);
    CostCase c = defaults;
    int64_t groups = static_cast<int64_t>(c.rows.size());
    for (size_t col = 0; col < table.header.size(); ++col) {
      const std::string& name = table.header[col];
      const std::string& text = table.rows[r][col];
      if (text.empty()) continue;  // not given: the default
      auto number = [&](double lo, double hi) {
        double v = 0;
        if (!ParseFiniteDouble(text, &v) || v < lo || v > hi)
          throw ConfigError(file, where + ": " + name, text, StrFormat("expected a number from %.0f to %.0f", lo, hi));
        return v;
      };
      auto whole = [&](double lo, double hi) {
        const double v = number(lo, hi);
        if (v != std::floor(v)) throw ConfigError(file, where + ": " + name, text, "expected a whole number");
        return static_cast<int64_t>(v);
      };
      if (name == "op") {
        if (std::find(CostOps().begin(), CostOps().end(), text) == CostOps().end())
          throw ConfigError(file, where + ": op", text, "unknown operation (gemm, expert, route, permute or combine)");
        c.op = text;
      } else if (name == "groups") {
        groups = whole(1, 1 << 20);
      } else if (name == "m") {
        c.rows = {whole(0, 1 << 30)};
      } else if (name == "n") {
        c.n = number(1, 1 << 30);
      } else if (name == "k") {
        c.k = number(1, 1 << 30);
      } else if (name == "dtype") {
        if (text != "bf16" && text != "fp8") throw ConfigError(file, where + ": dtype", text, "expected bf16 or fp8");
        c.dtype = text == "fp8" ? GemmDtype::kFp8 : GemmDtype::kBf16;
      } else if (name == "tokens") {
        c.tokens = whole(0, 1 << 30);
      } else if (name == "copies") {
        c.copies = whole(0, 1LL << 40);
      } else if (name == "hidden") {
        c.shape.hidden = whole(1, 1 << 20);
      } else if (name == "expert_ffn") {
        c.shape.expert_ffn = whole(1, 1 << 20);
      } else if (name == "experts") {
        c.shape.num_experts = whole(1, 1 << 20);
      } else if (name == "top_k") {
        c.shape.top_k = whole(1, 1 << 10);
      }
    }
    if (!c.rows.empty()) c.rows.assign(static_cast<size_t>(std::max<int64_t>(groups, 1)), c.rows.front());
    CostPrediction p;
    try {
      p = PredictCost(profile, c);
    } catch (const ConfigError& e) {  // a flag's complaint, said of this row
      std::string key = e.key();
      if (key.rfind("--", 0) == 0) key = key.substr(2);
      std::replace(key.begin(), key.end(), '-', '_');
      throw ConfigError(file, where + ": " + key, e.value(), e.why());
    }
    for (size_t col = 0; col < table.header.size(); ++col) out += (col ? "," : "") + CsvField(table.rows[r][col]);
    out += StrFormat("%s%.6g,%s,%.6g,%.4g\n", table.header.empty() ? "" : ",", p.time_s * 1e6, p.bound.c_str(),
                     p.time_s > 0 ? p.flops / p.time_s / 1e12 : 0.0, p.Efficiency());
  }
  return out;
}

}  // namespace epsim
