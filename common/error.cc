// epsim common: errors (see error.h).
#include "common/error.h"

#include <cstdio>

namespace epsim {
namespace {

std::string Join(const std::string& file, const std::string& key, const std::string& value,
                 const std::string& why) {
  std::string out = file.empty() ? "<input>" : OneLine(file, 4096);
  if (!key.empty()) out += ": " + OneLine(key, 200);
  if (!value.empty()) out += ": '" + OneLine(value, 200) + "'";
  if (!why.empty()) out += ": " + OneLine(why, 1000);
  return out;
}

}  // namespace

// Control characters (a line break in a key of a garbage file, say) are written as \xNN, and
// long parts are cut, so that an error stays one readable line.
std::string OneLine(const std::string& text, size_t max_chars) {
  std::string out;
  for (unsigned char c : text) {
    if (out.size() >= max_chars) {
      out += "...";
      break;
    }
    if (c < 0x20 || c == 0x7f) {
      char buffer[8];
      std::snprintf(buffer, sizeof(buffer), "\\x%02x", c);
      out += buffer;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

ConfigError::ConfigError(const std::string& file, const std::string& key, const std::string& value,
                         const std::string& why)
    : std::runtime_error(Join(file, key, value, why)), file_(file), key_(key), value_(value), why_(why) {}

}  // namespace epsim
