// epsim robustness tests: the bad-input matrix. Every case of bad_inputs.txt runs the real
// `sim/epsim` on malformed files or flags and must end with exit status 2 (or the status the
// case names), within a time limit, without a signal, and with exactly one line on stderr
// that holds every `expect` substring (the file or "command line", the key or flag, the
// value). The format of the table is described at its top.
//
//   bazel test //tests/robustness:bad_input_test --test_arg=--gtest_filter='*topology*'
#include <gtest/gtest.h>

#include <cctype>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <ostream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "tests/robustness/epsim_runner.h"

namespace {

using epsim_test::CountLines;
using epsim_test::EpsimResult;

constexpr char kTablePath[] = "tests/robustness/bad_inputs.txt";
constexpr int kTimeLimitS = 60;

struct FileOp {
  enum class Kind { kEdit, kWrite, kGarbage, kMkdir, kRemove };
  Kind kind = Kind::kWrite;
  std::string file;
  std::string from, to;    // kEdit: replace `from` (must occur once) by `to`
  std::string content;     // kWrite
  size_t size_bytes = 0;   // kGarbage
  uint32_t seed = 0;       // kGarbage
  bool with_nul = true;    // kGarbage: bytes 0..255, or 1..255 (passes the NUL check)
};

struct Case {
  std::string name;
  int line = 0;             // in the table, for messages
  std::vector<FileOp> ops;
  std::string args;
  std::vector<std::string> expect;
  int exit_status = 2;
  std::string known;        // a defect outside this package: a failure is reported as a skip
  std::string env;          // "NAME=VALUE ..." for epsim's environment
};

// gtest prints a parameter with this (instead of its bytes) when a case fails.
void PrintTo(const Case& c, std::ostream* out) { *out << c.name << " (line " << c.line << ")"; }

struct Table {
  std::vector<std::pair<std::string, std::string>> templates;  // file name -> content
  std::vector<Case> cases;
  std::string error;        // a malformed table
};

std::string Trim(const std::string& text) {
  const size_t begin = text.find_first_not_of(" \t");
  if (begin == std::string::npos) return "";
  return text.substr(begin, text.find_last_not_of(" \t") - begin + 1);
}

// "\n" in a table value stands for a line break.
std::string Unescape(const std::string& text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\\' && i + 1 < text.size() && text[i + 1] == 'n') {
      out += '\n';
      ++i;
    } else {
      out += text[i];
    }
  }
  return out;
}

// Reads the body of a `template NAME` or `write NAME` block up to its `end` line.
std::string ReadBlock(std::istream& in, int& line_number) {
  std::string body, line;
  while (std::getline(in, line)) {
    ++line_number;
    if (line == "end") return body;
    body += line + "\n";
  }
  return body;
}

Table LoadTable() {
  Table table;
  std::ifstream in(kTablePath);
  if (!in) {
    table.error = std::string("cannot open ") + kTablePath;
    return table;
  }
  std::string line;
  int number = 0;
  Case* current = nullptr;
  auto fail = [&](const std::string& why) {
    if (table.error.empty()) table.error = std::string(kTablePath) + ":" + std::to_string(number) + ": " + why;
  };
  while (std::getline(in, line)) {
    ++number;
    const std::string text = Trim(line);
    if (text.empty() || text[0] == '#') continue;
    const size_t space = text.find(' ');
    const std::string word = text.substr(0, space);
    const std::string rest = space == std::string::npos ? "" : Trim(text.substr(space + 1));
    if (word == "template") {
      table.templates.emplace_back(rest, ReadBlock(in, number));
      current = nullptr;
    } else if (word == "case") {
      table.cases.push_back(Case{});
      current = &table.cases.back();
      current->name = rest;
      current->line = number;
      for (char c : rest)
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') fail("case names are [A-Za-z0-9_]");
    } else if (current == nullptr) {
      fail("'" + word + "' outside a case");
    } else if (word == "args") {
      current->args = rest;
    } else if (word == "expect") {
      std::stringstream parts(rest);
      std::string part;
      while (std::getline(parts, part, '|'))
        if (!Trim(part).empty()) current->expect.push_back(Unescape(Trim(part)));
    } else if (word == "exit") {
      current->exit_status = std::stoi(rest);
    } else if (word == "env") {
      current->env += (current->env.empty() ? "" : " ") + rest;
    } else if (word == "known") {
      current->known = rest;
    } else if (word == "edit") {
      // edit FILE: OLD => NEW
      const size_t colon = rest.find(": "), arrow = rest.find(" => ");
      if (colon == std::string::npos || arrow == std::string::npos || arrow < colon) {
        fail("expected 'edit FILE: OLD => NEW'");
        continue;
      }
      FileOp op;
      op.kind = FileOp::Kind::kEdit;
      op.file = rest.substr(0, colon);
      op.from = Unescape(rest.substr(colon + 2, arrow - colon - 2));
      op.to = Unescape(rest.substr(arrow + 4));
      current->ops.push_back(op);
    } else if (word == "write") {
      FileOp op;
      op.kind = FileOp::Kind::kWrite;
      op.file = rest;
      op.content = ReadBlock(in, number);
      current->ops.push_back(op);
    } else if (word == "garbage" || word == "garbage_text") {
      // garbage FILE SIZE SEED
      FileOp op;
      op.kind = FileOp::Kind::kGarbage;
      op.with_nul = word == "garbage";
      std::stringstream parts(rest);
      parts >> op.file >> op.size_bytes >> op.seed;
      if (!parts) fail("expected 'garbage FILE SIZE SEED'");
      current->ops.push_back(op);
    } else if (word == "mkdir" || word == "remove") {
      FileOp op;
      op.kind = word == "mkdir" ? FileOp::Kind::kMkdir : FileOp::Kind::kRemove;
      op.file = rest;
      current->ops.push_back(op);
    } else {
      fail("unknown word '" + word + "'");
    }
  }
  return table;
}

const Table& TheTable() {
  static const Table table = LoadTable();
  return table;
}

std::string Substitute(std::string text, const std::string& dir) {
  for (size_t at = text.find("@DIR@"); at != std::string::npos; at = text.find("@DIR@", at + dir.size()))
    text.replace(at, 5, dir);
  return text;
}

// Deterministic bytes (xorshift32): with_nul gives 0..255, otherwise 1..255.
std::string Garbage(size_t size_bytes, uint32_t seed, bool with_nul) {
  std::string bytes;
  uint32_t x = seed == 0 ? 2463534242u : seed;
  for (size_t i = 0; i < size_bytes; ++i) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    unsigned char c = static_cast<unsigned char>(x >> 24);
    if (!with_nul && c == 0) c = 0xff;
    bytes += static_cast<char>(c);
  }
  return bytes;
}

// Lays the templates and the case's files out in a fresh folder; returns "" or what went wrong.
std::string Prepare(const Case& c, const std::string& dir) {
  for (const auto& [name, content] : TheTable().templates)
    epsim_test::WriteFile(dir + "/" + name, Substitute(content, dir));
  for (const FileOp& op : c.ops) {
    const std::string path = dir + "/" + op.file;
    switch (op.kind) {
      case FileOp::Kind::kEdit: {
        std::string text = epsim_test::ReadFile(path);
        const std::string from = Substitute(op.from, dir);
        const size_t at = text.find(from);
        if (at == std::string::npos || text.find(from, at + 1) != std::string::npos)
          return "edit: '" + op.from + "' must occur exactly once in " + op.file;
        text.replace(at, from.size(), Substitute(op.to, dir));
        epsim_test::WriteFile(path, text);
        break;
      }
      case FileOp::Kind::kWrite:
        epsim_test::WriteFile(path, Substitute(op.content, dir));
        break;
      case FileOp::Kind::kGarbage:
        epsim_test::WriteFile(path, Garbage(op.size_bytes, op.seed, op.with_nul));
        break;
      case FileOp::Kind::kMkdir:
        std::system(("mkdir -p '" + path + "'").c_str());
        break;
      case FileOp::Kind::kRemove:
        std::remove(path.c_str());
        break;
    }
  }
  return "";
}

class BadInputTest : public ::testing::TestWithParam<Case> {};

TEST(BadInputTableTest, TableIsWellFormedAndLargeEnough) {
  ASSERT_EQ(TheTable().error, "");
  EXPECT_GE(TheTable().cases.size(), 50u);
  std::set<std::string> names;
  for (const Case& c : TheTable().cases) {
    EXPECT_TRUE(names.insert(c.name).second) << "duplicate case " << c.name;
    EXPECT_FALSE(c.args.empty()) << c.name << ": no args";
    if (c.exit_status != 0) {
      EXPECT_FALSE(c.expect.empty()) << c.name << ": an error case needs `expect`";
    }
  }
}

TEST_P(BadInputTest, FailsCleanlyWithOneLineNamingFileKeyAndValue) {
  const Case& c = GetParam();
  const std::string dir = epsim_test::FreshDir("bad_input/" + c.name);
  const std::string prepared = Prepare(c, dir);
  ASSERT_EQ(prepared, "") << kTablePath << ":" << c.line;
  const EpsimResult r = epsim_test::RunEpsim(Substitute(c.args, dir), kTimeLimitS, c.env);

  std::vector<std::string> problems;
  if (r.timed_out) problems.push_back("did not finish within " + std::to_string(kTimeLimitS) + " s");
  else if (!r.exited) problems.push_back("crashed (signal " + std::to_string(r.signal) + ")");
  else if (r.exit_status != c.exit_status)
    problems.push_back("exit status " + std::to_string(r.exit_status) + ", expected " +
                       std::to_string(c.exit_status));
  if (c.exit_status != 0) {
    if (CountLines(r.err) != 1) problems.push_back("stderr has " + std::to_string(CountLines(r.err)) + " lines, expected 1");
    for (const std::string& want : c.expect) {
      if (r.err.find(Substitute(want, dir)) == std::string::npos)
        problems.push_back("stderr does not name '" + want + "'");
    }
  } else {
    if (!r.err.empty()) problems.push_back("a successful run wrote to stderr");
    for (const std::string& want : c.expect) {
      if (r.out.find(Substitute(want, dir)) == std::string::npos)
        problems.push_back("stdout does not hold '" + want + "'");
    }
  }
  std::string report;
  for (const std::string& p : problems) report += "  - " + p + "\n";
  if (!problems.empty() && !c.known.empty()) {
    GTEST_SKIP() << "KNOWN DEFECT outside tests/robustness (" << c.known << "), " << kTablePath
                 << ":" << c.line << "\n" << report << r.Describe();
  }
  EXPECT_TRUE(problems.empty()) << kTablePath << ":" << c.line << " args: " << c.args << "\n"
                                << report << r.Describe();
}

INSTANTIATE_TEST_SUITE_P(Matrix, BadInputTest, ::testing::ValuesIn(TheTable().cases),
                         [](const ::testing::TestParamInfo<Case>& info) { return info.param.name; });

}  // namespace
