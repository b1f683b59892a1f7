// epsim common: files (see files.h).
#include "common/files.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "common/error.h"

namespace epsim {

std::string ReadFileBounded(const std::string& path, long long max_bytes, const std::string& what) {
  struct stat info;
  if (stat(path.c_str(), &info) != 0)
    throw ConfigError(path, "", "", std::string("cannot open file: ") + std::strerror(errno));
  if (S_ISDIR(info.st_mode)) throw ConfigError(path, "", "", "is a folder, not a file");
  const std::string too_large =
      "too large for a " + what + " (more than " + std::to_string(max_bytes) + " bytes)";
  if (S_ISREG(info.st_mode) && info.st_size > max_bytes) throw ConfigError(path, "", "", too_large);
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError(path, "", "", "cannot open file");
  std::string text;
  char chunk[65536];
  while (in.read(chunk, sizeof(chunk)) || in.gcount() > 0) {
    text.append(chunk, static_cast<size_t>(in.gcount()));
    if (text.size() > static_cast<size_t>(max_bytes)) throw ConfigError(path, "", "", too_large);
  }
  if (in.bad()) throw ConfigError(path, "", "", "cannot read file");
  return text;
}

bool ReadFileIfPresent(const std::string& path, std::string* text) {
  std::ifstream in(path, std::ios::binary);
  if (!in.good()) return false;
  std::stringstream buffer;
  buffer << in.rdbuf();
  *text = buffer.str();
  return true;
}

bool PathExists(const std::string& path) {
  struct stat info;
  return stat(path.c_str(), &info) == 0;
}

void WriteFileAtomically(const std::string& path, const std::string& content) {
  const std::string tmp = path + ".tmp." + std::to_string(getpid());
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr) throw std::runtime_error(path + ": cannot write: " + std::strerror(errno));
  const bool written = std::fwrite(content.data(), 1, content.size(), f) == content.size();
  const bool flushed = std::fflush(f) == 0 && fsync(fileno(f)) == 0;
  const bool closed = std::fclose(f) == 0;
  if (!written || !flushed || !closed) {
    std::remove(tmp.c_str());
    throw std::runtime_error(path + ": write failed: " + std::strerror(errno));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw std::runtime_error(path + ": cannot rename into place: " + std::strerror(errno));
  }
}

void MakeDirectories(const std::string& dir) {
  if (dir.empty()) return;
  std::string partial;
  for (size_t i = 0; i <= dir.size(); ++i) {
    if (i == dir.size() || dir[i] == '/') {
      if (!partial.empty() && mkdir(partial.c_str(), 0755) != 0 && errno != EEXIST)
        throw std::runtime_error(dir + ": cannot create folder: " + std::strerror(errno));
    }
    if (i < dir.size()) partial += dir[i];
  }
  struct stat info;
  if (stat(dir.c_str(), &info) != 0 || !S_ISDIR(info.st_mode))
    throw std::runtime_error(dir + ": not a folder");
}

std::string SelfExePath() {
  char exe[PATH_MAX];
  const ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  if (n <= 0) return "";
  exe[n] = '\0';
  return exe;
}

}  // namespace epsim
