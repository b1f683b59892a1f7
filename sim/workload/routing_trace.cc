// epsim workload: routing trace files (see routing_trace.h).
#include "sim/workload/routing_trace.h"

#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/csv.h"
#include "common/error.h"
#include "common/files.h"
#include "common/numbers.h"

namespace epsim {
namespace {

constexpr char kCountsHeader[] = "step,expert,tokens";
constexpr char kLayeredCountsHeader[] = "step,layer,expert,tokens";
constexpr char kChoicesHeader[] = "step,gpu,token,experts";
// Step x expert counts a counts trace may hold (128 MB of doubles): a 16 MiB file of one-row
// steps could otherwise ask for a million steps of every expert.
constexpr int64_t kMaxTraceCells = int64_t{1} << 24;

// A row as quoted in an error: at most 60 characters.
std::string RowText(const std::string& row) { return row.size() > 60 ? row.substr(0, 57) + "..." : row; }

// Reads one trace file's rows; every error names the file, the line and the column.
class TraceReader {
 public:
  TraceReader(const std::string& path, int num_experts) : path_(path), num_experts_(num_experts) {}

  [[noreturn]] void Bad(int line, const std::string& column, const std::string& value,
                        const std::string& why) const {
    throw ConfigError(path_, "line " + std::to_string(line) + ": " + column, value, why);
  }
  [[noreturn]] void BadFile(const std::string& why) const { throw ConfigError(path_, "", "", why); }

  // The cells of line `line` (1-based) of the file.
  std::vector<std::string> Cells(int line, const std::string& text) const {
    try {
      return SplitCsvRow(text);
    } catch (const std::invalid_argument& e) {
      Bad(line, "row", RowText(text), e.what());
    }
  }

  int64_t WholeCell(int line, const std::string& cell, const char* column, int64_t max_value) const {
    int64_t value = 0;
    if (!ParseInt64(cell, &value) || value < 0 || value > max_value)
      Bad(line, column, cell, "expected a whole number in [0, " + std::to_string(max_value) + "]");
    return value;
  }

  // Counts, with a layer column when `layered`: [layer][step][expert], layers and each
  // layer's steps numbered from 0 without gaps.
  void LoadCounts(RoutingSpec& spec, const std::vector<std::string>& lines, bool layered) const {
    std::vector<std::vector<std::vector<double>>> layers;
    int64_t cells_total = 0;
    const size_t columns = layered ? 4 : 3;
    for (size_t i = 1; i < lines.size(); ++i) {
      const int line = static_cast<int>(i + 1);
      if (lines[i].empty()) continue;
      const std::vector<std::string> cells = Cells(line, lines[i]);
      if (cells.size() > columns)
        Bad(line, "row", RowText(lines[i]), std::string("expected ") + std::to_string(columns) + " columns (" +
                                                (layered ? kLayeredCountsHeader : kCountsHeader) + ")");
      auto cell = [&](size_t c) { return cells.size() > c ? cells[c] : std::string(); };
      const std::string step_text = cell(0), layer_text = layered ? cell(1) : "0";
      const std::string expert_text = cell(layered ? 2 : 1), tokens_text = cell(layered ? 3 : 2);
      const auto step = WholeCell(line, step_text, "step", 1'000'000);
      const auto layer = WholeCell(line, layer_text, "layer", 100'000);
      const auto expert = WholeCell(line, expert_text, "expert", num_experts_ - 1);
      const auto tokens = WholeCell(line, tokens_text, "tokens", int64_t{1} << 40);
      if (layer > static_cast<int64_t>(layers.size())) Bad(line, "layer", layer_text, "layers must be numbered from 0 without gaps");
      if (layer == static_cast<int64_t>(layers.size())) layers.emplace_back();
      std::vector<std::vector<double>>& weights = layers[static_cast<size_t>(layer)];
      const auto steps = static_cast<int64_t>(weights.size());
      if (step > steps)
        Bad(line, "step", step_text, layered ? "each layer's steps must be numbered from 0 without gaps"
                                             : "steps must be numbered from 0 without gaps");
      if (step == steps) {
        if ((cells_total += num_experts_) > kMaxTraceCells)
          Bad(line, "step", step_text, "too many steps for " + std::to_string(num_experts_) +
                                           " experts (at most " + std::to_string(kMaxTraceCells) +
                                           " step x expert counts)");
        weights.emplace_back(num_experts_, 0.0);
      }
      weights[step][expert] += static_cast<double>(tokens);
    }
    if (layers.empty()) BadFile("no rows after the header");
    for (size_t layer = 0; layer < layers.size(); ++layer) {
      for (size_t step = 0; step < layers[layer].size(); ++step) {
        double total = 0;
        for (double w : layers[layer][step]) total += w;
        if (total <= 0)
          BadFile((layered ? "layer " + std::to_string(layer) + " " : std::string()) + "step " + std::to_string(step) +
                  " has no tokens");
      }
    }
    spec.trace_weights = layers[0];
    if (layered) spec.trace_layer_weights = std::move(layers);
  }

  void LoadChoices(RoutingSpec& spec, const std::vector<std::string>& lines, int top_k) const {
    if (top_k < 1) BadFile("a per-token trace needs the model's top_k");
    spec.trace_top_k = top_k;
    spec.trace_choices.clear();
    spec.trace_step_begin.clear();
    int64_t previous_gpu = -1, previous_token = -1;
    std::vector<char> seen(num_experts_, 0);
    std::vector<int32_t> token;
    for (size_t i = 1; i < lines.size(); ++i) {
      const int line = static_cast<int>(i + 1);
      if (lines[i].empty()) continue;
      const std::vector<std::string> cells = Cells(line, lines[i]);
      if (cells.size() != 4) {
        Bad(line, "row", RowText(lines[i]),
            std::string("expected 4 columns (") + kChoicesHeader + "; experts separated by spaces), found " +
                std::to_string(cells.size()));
      }
      const int64_t step = WholeCell(line, cells[0], "step", 1'000'000);
      const int64_t gpu = WholeCell(line, cells[1], "gpu", 1 << 20);
      const int64_t position = WholeCell(line, cells[2], "token", 1 << 30);
      // Rows come grouped by step, each step's tokens in (gpu, token) order: the order in
      // which a larger run takes them, and how repeats are caught.
      const int64_t steps = static_cast<int64_t>(spec.trace_step_begin.size());
      if (step > steps || step < steps - 1)
        Bad(line, "step", cells[0], "rows must be ordered by step, numbered from 0 without gaps");
      if (step == steps) {
        spec.trace_step_begin.push_back(static_cast<int64_t>(spec.trace_choices.size() / top_k));
      } else if (gpu < previous_gpu) {
        Bad(line, "gpu", cells[1], "rows of a step must be ordered by gpu, then token");
      } else if (gpu == previous_gpu && position <= previous_token) {
        Bad(line, "token", cells[2], position == previous_token
                                         ? "repeats the previous row's token (each token once per step)"
                                         : "rows of a step must be ordered by gpu, then token");
      }
      previous_gpu = gpu;
      previous_token = position;
      // The experts: ids separated by spaces (the CSV quotes around them are gone).
      token.clear();
      std::stringstream ids(cells[3]);
      std::string id;
      while (ids >> id) {
        int64_t expert = 0;
        if (!ParseInt64(id, &expert) || expert < 0 || expert >= num_experts_) {
          Bad(line, "experts", id, "expected an expert id in [0, " + std::to_string(num_experts_ - 1) +
                                       "] (model.experts = " + std::to_string(num_experts_) + ")");
        }
        if (seen[expert]) {
          Bad(line, "experts", cells[3], "expert " + id + " appears twice (a token's experts are distinct)");
        }
        seen[expert] = 1;
        token.push_back(static_cast<int32_t>(expert));
      }
      for (int32_t e : token) seen[e] = 0;
      if (static_cast<int>(token.size()) != top_k) {
        Bad(line, "experts", cells[3], "expected " + std::to_string(top_k) + " experts (model.top_k), found " +
                                           std::to_string(token.size()));
      }
      spec.trace_choices.insert(spec.trace_choices.end(), token.begin(), token.end());
    }
    if (spec.trace_step_begin.empty()) BadFile("no rows after the header");
    spec.trace_step_begin.push_back(static_cast<int64_t>(spec.trace_choices.size() / top_k));
  }

 private:
  std::string path_;
  int num_experts_;
};

}  // namespace

void LoadRoutingTrace(RoutingSpec& spec, const std::string& path, int num_experts, int top_k) {
  const TraceReader reader(path, num_experts);
  if (num_experts < 1) reader.BadFile("needs at least one expert");
  const std::vector<std::string> lines = SplitLines(ReadFileBounded(path, kMaxRoutingTraceBytes, "routing trace"));
  if (lines.empty() || (lines.size() == 1 && lines[0].empty())) {
    reader.Bad(1, "header", "",
               std::string("empty file: expected the header '") + kCountsHeader + "' (expert counts) or '" +
                   kChoicesHeader + "' (per-token choices)");
  }
  std::string header = lines[0];
  if (header.rfind("\xEF\xBB\xBF", 0) == 0) header.erase(0, 3);  // a UTF-8 byte-order mark
  while (!header.empty() && (header.back() == ' ' || header.back() == '\t')) header.pop_back();
  spec.kind = RoutingSpec::Kind::kTrace;
  if (spec.trace_path.empty()) spec.trace_path = path;
  spec.trace_weights.clear();
  spec.trace_layer_weights.clear();
  spec.trace_top_k = 0;
  spec.trace_choices.clear();
  spec.trace_step_begin.clear();
  if (header == kCountsHeader || header == kLayeredCountsHeader) {
    reader.LoadCounts(spec, lines, header == kLayeredCountsHeader);
  } else if (header == kChoicesHeader) {
    reader.LoadChoices(spec, lines, top_k);
  } else {
    reader.Bad(1, "header", header, std::string("expected '") + kCountsHeader + "' (expert counts), '" +
                                        kLayeredCountsHeader + "' (expert counts per layer) or '" + kChoicesHeader +
                                        "' (per-token choices)");
  }
}

}  // namespace epsim
