// epsim tests: reading one column of a result CSV (steps.csv, gpus.csv) as numbers.
#ifndef EPSIM_TESTS_TESTING_CSV_COLUMN_H_
#define EPSIM_TESTS_TESTING_CSV_COLUMN_H_

#include <algorithm>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace epsim::testing {

// The values of column `name` of the CSV file at `path`; throws if the column is missing.
inline std::vector<double> CsvColumn(const std::string& path, const std::string& name) {
  std::ifstream in(path);
  std::string line;
  if (!std::getline(in, line)) throw std::runtime_error(path + ": empty");
  std::vector<std::string> header;
  std::stringstream hs(line);
  for (std::string cell; std::getline(hs, cell, ',');) header.push_back(cell);
  const auto at = std::find(header.begin(), header.end(), name);
  if (at == header.end()) throw std::runtime_error(path + ": no column " + name);
  const size_t index = static_cast<size_t>(at - header.begin());
  std::vector<double> values;
  while (std::getline(in, line)) {
    std::stringstream ls(line);
    std::string cell;
    for (size_t i = 0; i <= index && std::getline(ls, cell, ','); ++i) {}
    values.push_back(std::stod(cell));
  }
  return values;
}

}  // namespace epsim::testing

#endif  // EPSIM_TESTS_TESTING_CSV_COLUMN_H_
