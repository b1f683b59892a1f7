// epsim tests: reading one column of a result CSV (steps.csv, gpus.csv) as numbers, with
// the CSV reader the simulator itself uses (common/csv.h).
#ifndef EPSIM_TESTS_TESTING_CSV_COLUMN_H_
#define EPSIM_TESTS_TESTING_CSV_COLUMN_H_

#include <stdexcept>
#include <string>
#include <vector>

#include "common/csv.h"
#include "common/files.h"

namespace epsim::testing {

// The values of column `name` of the CSV file at `path`; throws if the file, the column or
// a number is missing.
inline std::vector<double> CsvColumn(const std::string& path, const std::string& name) {
  std::string text;
  if (!ReadFileIfPresent(path, &text)) throw std::runtime_error(path + ": cannot read");
  const CsvTable table = ParseCsv(text, path);
  const size_t column = table.Column(name);
  std::vector<double> values;
  for (size_t r = 0; r < table.rows.size(); ++r) values.push_back(table.Number(r, column));
  return values;
}

// The same as text (for columns such as gpus.csv's pass).
inline std::vector<std::string> CsvTextColumn(const std::string& path, const std::string& name) {
  std::string text;
  if (!ReadFileIfPresent(path, &text)) throw std::runtime_error(path + ": cannot read");
  const CsvTable table = ParseCsv(text, path);
  const size_t column = table.Column(name);
  std::vector<std::string> values;
  for (const std::vector<std::string>& row : table.rows) values.push_back(row.at(column));
  return values;
}

}  // namespace epsim::testing

#endif  // EPSIM_TESTS_TESTING_CSV_COLUMN_H_
