// epsim robustness tests: what LoadYamlFile (common/yaml.h) does with files that are not
// ordinary configuration files, and that every ConfigError stays one line.
//
//   bazel test //tests/robustness:config_file_test
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "common/error.h"
#include "common/yaml.h"
#include "tests/robustness/epsim_runner.h"

namespace {

using epsim::ConfigError;
using epsim::LoadYamlFile;

// The message of the ConfigError that LoadYamlFile(path) throws, or "" when it loads.
std::string LoadError(const std::string& path) {
  try {
    LoadYamlFile(path);
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.file(), path);
    return e.what();
  }
  return "";
}

TEST(ConfigFileTest, FolderIsNamedAsSuch) {
  const std::string dir = epsim_test::FreshDir("config_folder");
  EXPECT_NE(LoadError(dir).find("is a folder"), std::string::npos);
}

TEST(ConfigFileTest, MissingFile) {
  const std::string dir = epsim_test::FreshDir("config_missing");
  EXPECT_NE(LoadError(dir + "/nope.yaml").find("cannot open file"), std::string::npos);
}

TEST(ConfigFileTest, EmptyAndCommentOnlyFiles) {
  const std::string dir = epsim_test::FreshDir("config_empty");
  epsim_test::WriteFile(dir + "/empty.yaml", "");
  epsim_test::WriteFile(dir + "/comments.yaml", "# only a comment\n\n");
  EXPECT_NE(LoadError(dir + "/empty.yaml").find("empty file"), std::string::npos);
  EXPECT_NE(LoadError(dir + "/comments.yaml").find("empty file"), std::string::npos);
}

TEST(ConfigFileTest, HugeFileIsRefusedBeforeParsing) {
  const std::string dir = epsim_test::FreshDir("config_huge");
  const std::string path = dir + "/huge.yaml";
  epsim_test::WriteFile(path, "a: " + std::string(epsim::kMaxConfigFileBytes, 'x') + "\n");
  EXPECT_NE(LoadError(path).find("too large"), std::string::npos);
}

// A pipe (what `epsim simulate <(sed ... default.yaml)` passes) has no size: it is read.
TEST(ConfigFileTest, PipeIsRead) {
  const std::string dir = epsim_test::FreshDir("config_pipe");
  const std::string path = dir + "/fifo.yaml";
  ASSERT_EQ(mkfifo(path.c_str(), 0600), 0);
  const pid_t writer = fork();
  if (writer == 0) {
    epsim_test::WriteFile(path, "name: piped\n");
    _exit(0);
  }
  YAML::Node node = LoadYamlFile(path);
  waitpid(writer, nullptr, 0);
  EXPECT_EQ(node["name"].as<std::string>(), "piped");
}

TEST(ConfigFileTest, ErrorsStayOneLine) {
  const ConfigError e("file\nname.yaml", "key\r\nwith breaks", std::string("value\0x", 7), "why\n");
  const std::string what = e.what();
  EXPECT_EQ(what.find('\n'), std::string::npos) << what;
  EXPECT_EQ(what.find('\r'), std::string::npos) << what;
  EXPECT_NE(what.find("key\\x0d\\x0awith breaks"), std::string::npos) << what;
  const ConfigError long_value("f.yaml", "k", std::string(100'000, 'v'), "too long");
  EXPECT_LT(std::string(long_value.what()).size(), 1000u);
}

}  // namespace
