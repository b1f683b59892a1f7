// epsim config: bundled file lookup (see data_files.h).
#include "sim/config/data_files.h"

#include <cstdlib>
#include <fstream>
#include <vector>

#include "common/error.h"
#include "common/files.h"

namespace epsim {
namespace {

bool Readable(const std::string& path) { return std::ifstream(path).good(); }

std::vector<std::string> SearchRoots() {
  std::vector<std::string> roots;
  if (const char* dir = std::getenv("EPSIM_DATA_DIR")) roots.push_back(dir);
  const std::string exe = SelfExePath();
  if (!exe.empty()) roots.push_back(exe + ".runfiles/epsim");
  if (const char* dir = std::getenv("RUNFILES_DIR")) roots.push_back(std::string(dir) + "/epsim");
  if (const char* dir = std::getenv("TEST_SRCDIR")) roots.push_back(std::string(dir) + "/epsim");
  if (const char* dir = std::getenv("BUILD_WORKSPACE_DIRECTORY")) roots.push_back(dir);
  roots.push_back(".");
  return roots;
}

}  // namespace

bool IsPathReference(const std::string& reference) {
  return reference.find('/') != std::string::npos ||
         (reference.size() > 5 && reference.compare(reference.size() - 5, 5, ".yaml") == 0);
}

std::string ResolveDataFile(const std::string& kind, const std::string& reference,
                            const std::string& file, const std::string& key) {
  if (IsPathReference(reference)) {
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

std::string DisplayPath(const std::string& path) {
  const std::string marker = ".runfiles/epsim/";
  auto at = path.find(marker);
  return at == std::string::npos ? path : path.substr(at + marker.size());
}

}  // namespace epsim
