// epsim: bundled file lookup (see data_files.h).
#include "sim/data_files.h"

#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <fstream>
#include <vector>

#include "sim/config.h"

namespace epsim {
namespace {

bool Readable(const std::string& path) { return std::ifstream(path).good(); }

std::vector<std::string> SearchRoots() {
  std::vector<std::string> roots;
  if (const char* dir = std::getenv("EPSIM_DATA_DIR")) roots.push_back(dir);
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  if (n > 0) {
    exe[n] = '\0';
    roots.push_back(std::string(exe) + ".runfiles/epsim");
  }
  if (const char* dir = std::getenv("RUNFILES_DIR")) roots.push_back(std::string(dir) + "/epsim");
  if (const char* dir = std::getenv("TEST_SRCDIR")) roots.push_back(std::string(dir) + "/epsim");
  if (const char* dir = std::getenv("BUILD_WORKSPACE_DIRECTORY")) roots.push_back(dir);
  roots.push_back(".");
  return roots;
}

}  // namespace

std::string ResolveDataFile(const std::string& kind, const std::string& reference,
                            const std::string& file, const std::string& key) {
  const bool is_path = reference.find('/') != std::string::npos ||
                       (reference.size() > 5 && reference.substr(reference.size() - 5) == ".yaml");
  if (is_path) {
    if (!Readable(reference)) throw ConfigError(file, key, reference, "cannot open file");
    return reference;
  }
  for (const std::string& root : SearchRoots()) {
    std::string candidate = root + "/" + kind + "/" + reference + ".yaml";
    if (Readable(candidate)) return root == "." ? candidate.substr(2) : candidate;
  }
  throw ConfigError(file, key, reference,
                    "no bundled " + kind + "/" + reference + ".yaml (give a path to a file)");
}

}  // namespace epsim

namespace epsim {

std::string DisplayPath(const std::string& path) {
  const std::string marker = ".runfiles/epsim/";
  auto at = path.find(marker);
  return at == std::string::npos ? path : path.substr(at + marker.size());
}

}  // namespace epsim
