// epsim common: command lines (see command_line.h).
#include "common/command_line.h"

#include <cstdio>
#include <exception>

#include "common/error.h"
#include "common/numbers.h"

namespace epsim {

bool CommandLine::Has(const std::string& flag) const {
  for (const auto& entry : flags)
    if (entry.first == flag) return true;
  return false;
}

std::string CommandLine::Get(const std::string& flag, const std::string& fallback) const {
  for (const auto& entry : flags)
    if (entry.first == flag) return entry.second;
  return fallback;
}

CommandLine ParseCommandLine(int argc, char** argv, int first, const FlagSpec& spec) {
  CommandLine line;
  std::set<std::string> seen;
  const std::string see = spec.help_hint.empty() ? "" : " (see " + spec.help_hint + ")";
  for (int i = first; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      line.help = true;
      continue;
    }
    if (arg.rfind("--", 0) != 0) {
      if (static_cast<int>(line.positionals.size()) >= spec.max_positionals) {
        throw ConfigError(kCommandLine, "", arg,
                          spec.max_positionals == 0
                              ? "unexpected argument" + see
                              : "unexpected argument (" + spec.positional_name + " at most)");
      }
      line.positionals.push_back(arg);
      continue;
    }
    std::string flag = arg, value;
    const size_t eq = arg.find('=');
    const bool inline_value = eq != std::string::npos;
    if (inline_value) {
      flag = arg.substr(0, eq);
      value = arg.substr(eq + 1);
    }
    if (spec.switches.count(flag) != 0) {
      if (inline_value) throw ConfigError(kCommandLine, flag, value, "takes no value");
    } else if (spec.with_value.count(flag) != 0) {
      if (!inline_value) {
        if (i + 1 >= argc) throw ConfigError(kCommandLine, flag, "", "missing value");
        value = argv[++i];
      }
      if (value.empty()) throw ConfigError(kCommandLine, flag, "", "empty value");
    } else {
      throw ConfigError(kCommandLine, flag, value, "unknown flag" + see);
    }
    if (!seen.insert(flag).second && spec.repeatable.count(flag) == 0)
      throw ConfigError(kCommandLine, flag, value, "given twice (give each flag once)");
    line.flags.emplace_back(flag, value);
  }
  return line;
}

int64_t FlagInt(const std::string& flag, const std::string& value, int64_t min_value, int64_t max_value) {
  int64_t number = 0;
  if (!ParseInt64(value, &number) || number < min_value || number > max_value) {
    throw ConfigError(kCommandLine, flag, value,
                      "expected a whole number from " + std::to_string(min_value) + " to " +
                          std::to_string(max_value));
  }
  return number;
}

int RunReportingErrors(const std::string& program, const std::function<int()>& body,
                       const std::function<std::string(const std::string&)>& display) {
  auto say = [&](const std::string& what) {
    std::fprintf(stderr, "%s: error: %s\n", program.c_str(), (display ? display(what) : what).c_str());
  };
  try {
    return body();
  } catch (const ConfigError& e) {
    say(e.what());
    return kExitBadInput;
  } catch (const std::exception& e) {
    say(e.what());
    return kExitRunFailed;
  }
}

}  // namespace epsim
