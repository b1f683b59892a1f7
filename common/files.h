// epsim common: reading input files with a size bound, and writing results that are either
// complete or absent.
//
// Results go to a temporary name in the same folder ("NAME.tmp.PID"), are flushed and
// closed, then renamed over NAME: a reader never sees a half-written file.
#ifndef EPSIM_COMMON_FILES_H_
#define EPSIM_COMMON_FILES_H_

#include <string>

namespace epsim {

// The whole file at `path`, refusing folders and anything larger than `max_bytes` (pipes
// and devices have no size: reading stops past the limit). `what` names the kind of file in
// the error ("configuration file", "routing trace"). Throws ConfigError(path, "", "", why).
std::string ReadFileBounded(const std::string& path, long long max_bytes, const std::string& what);
// The whole file, or false when it cannot be read (for files epsim wrote itself).
bool ReadFileIfPresent(const std::string& path, std::string* text);
bool PathExists(const std::string& path);

// Writes `content` to `path` atomically; throws std::runtime_error naming the path.
void WriteFileAtomically(const std::string& path, const std::string& content);
// Creates `dir` and its parents if missing; throws std::runtime_error naming it.
void MakeDirectories(const std::string& dir);

// This process's executable (/proc/self/exe), or "" when it cannot be read.
std::string SelfExePath();

}  // namespace epsim

#endif  // EPSIM_COMMON_FILES_H_
