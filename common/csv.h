// epsim common: CSV as epsim writes and reads it (RFC 4180 quoting, one record per line).
//
// Result files (steps.csv, gpus.csv, sweep.csv) are written with CsvField; routing traces,
// sweep.csv (by compare) and the tests read them back with ParseCsv.
#ifndef EPSIM_COMMON_CSV_H_
#define EPSIM_COMMON_CSV_H_

#include <cstddef>
#include <string>
#include <vector>

namespace epsim {

// `text` as one CSV field: quoted when it holds a comma, a quote or a line break.
std::string CsvField(const std::string& text);

// The lines of `text` without their "\n" or "\r\n" (a last line without one is kept).
std::vector<std::string> SplitLines(const std::string& text);

// The fields of one CSV line: "a,b" in quotes is one field, "" inside quotes one quote.
// Throws std::invalid_argument("unterminated quote") when a quoted field does not end.
std::vector<std::string> SplitCsvRow(const std::string& line);

// A CSV file: its header and rows of cells, all as text.
struct CsvTable {
  std::string source;                       // the file, for errors
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
  std::vector<int> row_lines;               // the line each row came from (1 = header)

  // Index of column `name`, or -1.
  int FindColumn(const std::string& name) const;
  // Index of column `name`; throws std::runtime_error "SOURCE: no column NAME".
  size_t Column(const std::string& name) const;
  // Cell (row, column) as a finite number; throws std::runtime_error naming the source,
  // line, column and text otherwise.
  double Number(size_t row, size_t column) const;
};

// Parses CSV text: the first line is the header, empty lines are skipped, every row must
// have the header's width. Throws std::runtime_error "SOURCE: line N: why".
CsvTable ParseCsv(const std::string& text, const std::string& source);

}  // namespace epsim

#endif  // EPSIM_COMMON_CSV_H_
