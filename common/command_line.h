// epsim common: how every epsim command reads its command line and ends.
//
// One syntax everywhere: `--flag value` or `--flag=value`; switches (flags without a
// value) as `--switch`; positional arguments; `--help` or `-h` anywhere. A bad command line
// is a ConfigError(kCommandLine, flag, value, why), so every command reports it the same
// way: one line and kExitBadInput (common/error.h).
#ifndef EPSIM_COMMON_COMMAND_LINE_H_
#define EPSIM_COMMON_COMMAND_LINE_H_

#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace epsim {

// The flags a command accepts.
struct FlagSpec {
  std::set<std::string> with_value;   // "--out", ...: take one value
  std::set<std::string> switches;     // "--dry-run", ...: take none
  std::set<std::string> repeatable;   // may be given more than once ("--vary")
  std::string help_hint;              // named in "unknown flag (see ...)", e.g. "epsim --help"
  int max_positionals = 0;
  std::string positional_name;        // named when there are too many ("one scenario")
};

struct CommandLine {
  std::vector<std::pair<std::string, std::string>> flags;  // in order; switches have ""
  std::vector<std::string> positionals;
  bool help = false;

  bool Has(const std::string& flag) const;
  // The value of `flag`, or `fallback` when it was not given.
  std::string Get(const std::string& flag, const std::string& fallback = "") const;
};

// Parses argv[first], ..., argv[argc - 1] against `spec`. Throws ConfigError on an unknown
// flag, a missing or empty value, a flag given twice, or too many positional arguments.
CommandLine ParseCommandLine(int argc, char** argv, int first, const FlagSpec& spec);

// `value` of `flag` as a whole number in [min_value, max_value]; ConfigError otherwise.
int64_t FlagInt(const std::string& flag, const std::string& value, int64_t min_value, int64_t max_value);

// Runs a command's body and turns what escapes it into one line on stderr,
// "PROGRAM: error: WHAT": a ConfigError gives kExitBadInput, any other exception
// kExitRunFailed. `display` may rewrite the message (e.g. shorten runfiles paths).
int RunReportingErrors(const std::string& program, const std::function<int()>& body,
                       const std::function<std::string(const std::string&)>& display = nullptr);

}  // namespace epsim

#endif  // EPSIM_COMMON_COMMAND_LINE_H_
