// epsim tests: CSV writing and reading (common/csv.h).
#include <gtest/gtest.h>

#include <stdexcept>

#include "common/csv.h"

namespace epsim {
namespace {

TEST(CsvTest, FieldsAreQuotedOnlyWhenNeeded) {
  EXPECT_EQ(CsvField("zipf:0.5"), "zipf:0.5");
  EXPECT_EQ(CsvField("a,b"), "\"a,b\"");
  EXPECT_EQ(CsvField("say \"hi\""), "\"say \"\"hi\"\"\"");
}

TEST(CsvTest, RowsRoundTripThroughQuoting) {
  for (const std::vector<std::string>& row :
       std::vector<std::vector<std::string>>{{"a", "b,c", ""}, {"\"", "x\"y", "5 9 12"}, {""}}) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) line += (i ? "," : "") + CsvField(row[i]);
    EXPECT_EQ(SplitCsvRow(line), row) << line;
  }
  EXPECT_THROW(SplitCsvRow("a,\"b"), std::invalid_argument);
  // A quote inside an unquoted field is a character, as most readers take it.
  EXPECT_EQ(SplitCsvRow("5 \"9"), std::vector<std::string>{"5 \"9"});
}

TEST(CsvTest, LinesDropTheirEnds) {
  EXPECT_EQ(SplitLines("a\r\nb\n\nc"), (std::vector<std::string>{"a", "b", "", "c"}));
  EXPECT_TRUE(SplitLines("").empty());
}

TEST(CsvTest, TablesNameTheirColumnsAndCells) {
  const CsvTable t = ParseCsv("run,step,x\n\"a,1\",0,1.5\n\nb,1,2\n", "s.csv");
  ASSERT_EQ(t.rows.size(), 2u);
  EXPECT_EQ(t.rows[0][0], "a,1");
  EXPECT_EQ(t.Column("x"), 2u);
  EXPECT_EQ(t.FindColumn("nope"), -1);
  EXPECT_EQ(t.Number(1, 2), 2.0);
  EXPECT_EQ(t.row_lines[1], 4);
  try {
    t.Column("nope");
    ADD_FAILURE();
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "s.csv: no column nope");
  }
  const CsvTable bad = ParseCsv("a,b\nx,y\n", "t.csv");
  try {
    bad.Number(0, 1);
    ADD_FAILURE();
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "t.csv: line 2: b: 'y': expected a number");
  }
  EXPECT_THROW(ParseCsv("a,b\n1,2,3\n", "w.csv"), std::runtime_error);  // wider than the header
  EXPECT_THROW(ParseCsv("\n\n", "e.csv"), std::runtime_error);           // no header
}

}  // namespace
}  // namespace epsim
