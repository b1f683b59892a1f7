// epsim common: CSV (see csv.h).
#include "common/csv.h"

#include <algorithm>
#include <stdexcept>

#include "common/numbers.h"

namespace epsim {

std::string CsvField(const std::string& text) {
  if (text.find_first_of(",\"\n\r") == std::string::npos) return text;
  std::string out = "\"";
  for (char c : text) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

std::vector<std::string> SplitLines(const std::string& text) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(std::move(line));
    start = end + 1;
  }
  return lines;
}

std::vector<std::string> SplitCsvRow(const std::string& line) {
  std::vector<std::string> cells(1);
  size_t i = 0;
  while (i < line.size()) {
    const char c = line[i];
    if (c == ',') {
      cells.emplace_back();
      ++i;
    } else if (c == '"' && cells.back().empty() && (i == 0 || line[i - 1] == ',')) {
      // A quoted field: up to the closing quote; "" stands for one quote.
      ++i;
      for (;;) {
        if (i >= line.size()) throw std::invalid_argument("unterminated quote");
        if (line[i] == '"') {
          if (i + 1 < line.size() && line[i + 1] == '"') {
            cells.back() += '"';
            i += 2;
            continue;
          }
          ++i;
          break;
        }
        cells.back() += line[i++];
      }
    } else {
      cells.back() += c;
      ++i;
    }
  }
  return cells;
}

int CsvTable::FindColumn(const std::string& name) const {
  const auto at = std::find(header.begin(), header.end(), name);
  return at == header.end() ? -1 : static_cast<int>(at - header.begin());
}

size_t CsvTable::Column(const std::string& name) const {
  const int at = FindColumn(name);
  if (at < 0) throw std::runtime_error(source + ": no column " + name);
  return static_cast<size_t>(at);
}

double CsvTable::Number(size_t row, size_t column) const {
  double value = 0;
  const std::string& text = rows.at(row).at(column);
  if (!ParseFiniteDouble(text, &value)) {
    throw std::runtime_error(source + ": line " + std::to_string(row_lines.at(row)) + ": " +
                             header.at(column) + ": '" + text + "': expected a number");
  }
  return value;
}

CsvTable ParseCsv(const std::string& text, const std::string& source) {
  CsvTable table;
  table.source = source;
  const std::vector<std::string> lines = SplitLines(text);
  for (size_t i = 0; i < lines.size(); ++i) {
    if (lines[i].empty()) continue;
    std::vector<std::string> cells;
    try {
      cells = SplitCsvRow(lines[i]);
    } catch (const std::invalid_argument& e) {
      throw std::runtime_error(source + ": line " + std::to_string(i + 1) + ": " + e.what());
    }
    if (table.header.empty()) {
      table.header = std::move(cells);
      continue;
    }
    if (cells.size() != table.header.size()) {
      throw std::runtime_error(source + ": line " + std::to_string(i + 1) + ": " +
                               std::to_string(cells.size()) + " fields, the header has " +
                               std::to_string(table.header.size()));
    }
    table.rows.push_back(std::move(cells));
    table.row_lines.push_back(static_cast<int>(i + 1));
  }
  if (table.header.empty()) throw std::runtime_error(source + ": empty (no header line)");
  return table;
}

}  // namespace epsim
