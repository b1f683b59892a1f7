// epsim: result files that are either complete or absent.
//
// Content goes to a temporary name in the same folder ("NAME.tmp.PID"), is flushed and
// closed, then renamed over NAME: a reader never sees a half-written result.
#ifndef EPSIM_SIM_OUTPUT_FILE_H_
#define EPSIM_SIM_OUTPUT_FILE_H_

#include <string>

namespace epsim {

// Writes `content` to `path` atomically; throws std::runtime_error naming the path.
void WriteFileAtomically(const std::string& path, const std::string& content);
// Creates `dir` and its parents if missing; throws std::runtime_error naming it.
void MakeDirectories(const std::string& dir);

// Minimal JSON text builder with deterministic number formatting.
std::string JsonString(const std::string& text);
std::string JsonNumber(double value);  // %.10g; non-finite values become null

}  // namespace epsim

#endif  // EPSIM_SIM_OUTPUT_FILE_H_
