// epsim common: the one error type for bad input, and the exit codes every command uses.
//
// Library code throws ConfigError for anything a user can fix (a file, a key, a flag, a
// value); commands print its what() as one line and exit with kExitBadInput. Anything else
// that escapes a command is a failed run (kExitRunFailed).
#ifndef EPSIM_COMMON_ERROR_H_
#define EPSIM_COMMON_ERROR_H_

#include <stdexcept>
#include <string>

namespace epsim {

// Exit status of every epsim command (`epsim ...` and `epsim-calibrate`).
enum ExitCode : int {
  kExitOk = 0,
  kExitRunFailed = 1,  // the run itself failed (an I/O error, a wrong kernel result)
  kExitBadInput = 2,   // a file, flag or value is wrong; nothing was run
};

// Where a flag's value came from, in errors: ConfigError(kCommandLine, "--flag", ...).
inline constexpr char kCommandLine[] = "command line";

// A bad input. what() is one line: "FILE: KEY: 'VALUE': WHY" (empty parts left out; control
// characters written as \xNN, long parts cut).
class ConfigError : public std::runtime_error {
 public:
  ConfigError(const std::string& file, const std::string& key, const std::string& value,
              const std::string& why);
  const std::string& file() const { return file_; }
  const std::string& key() const { return key_; }
  const std::string& value() const { return value_; }
  // The WHY part alone.
  const std::string& why() const { return why_; }

 private:
  std::string file_, key_, value_, why_;
};

// `text` on one readable line: control characters as \xNN, cut after `max_chars` ("...").
std::string OneLine(const std::string& text, size_t max_chars);

}  // namespace epsim

#endif  // EPSIM_COMMON_ERROR_H_
