// epsim: strict configuration reading (see config.h).
#include "sim/config.h"

#include <sys/stat.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <utility>
#include <vector>

namespace epsim {
namespace {

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

std::string Join(const std::string& file, const std::string& key, const std::string& value,
                 const std::string& why) {
  std::string out = file.empty() ? "<input>" : OneLine(file, 4096);
  if (!key.empty()) out += ": " + OneLine(key, 200);
  if (!value.empty()) out += ": '" + OneLine(value, 200) + "'";
  if (!why.empty()) out += ": " + OneLine(why, 1000);
  return out;
}

// Splits "450GB/s" into 450 and "GB/s". The number must be finite and > 0.
std::pair<double, std::string> SplitNumberUnit(const std::string& text) {
  const char* begin = text.c_str();
  char* end = nullptr;
  double number = std::strtod(begin, &end);
  if (end == begin) throw std::invalid_argument("expected a number followed by a unit");
  std::string unit(end);
  while (!unit.empty() && unit.front() == ' ') unit.erase(unit.begin());
  if (!std::isfinite(number)) throw std::invalid_argument("not a finite number");
  if (number <= 0) throw std::invalid_argument("must be > 0");
  return {number, unit};
}

double Scaled(const std::string& text, const std::vector<std::pair<std::string, double>>& units,
              const char* expected) {
  auto [number, unit] = SplitNumberUnit(text);
  for (const auto& [name, factor] : units) {
    if (unit == name) {
      double value = number * factor;
      if (!std::isfinite(value)) throw std::invalid_argument("overflows");
      return value;
    }
  }
  throw std::invalid_argument(std::string("unknown unit '") + unit + "' (expected " + expected +
                              ")");
}

}  // namespace

ConfigError::ConfigError(const std::string& file, const std::string& key, const std::string& value,
                         const std::string& why)
    : std::runtime_error(Join(file, key, value, why)), file_(file), key_(key), value_(value) {}

double ParseBandwidthBps(const std::string& text) {
  static const std::vector<std::pair<std::string, double>> kUnits = {
      {"B/s", 1.0},          {"KB/s", 1e3},         {"MB/s", 1e6},         {"GB/s", 1e9},
      {"TB/s", 1e12},        {"bps", 1.0 / 8},      {"Kbps", 1e3 / 8},     {"Mbps", 1e6 / 8},
      {"Gbps", 1e9 / 8},     {"Tbps", 1e12 / 8},    {"Gb/s", 1e9 / 8},     {"Tb/s", 1e12 / 8},
      {"Mb/s", 1e6 / 8}};
  return Scaled(text, kUnits, "B/s, KB/s, MB/s, GB/s, TB/s, Mbps, Gbps, Tbps, Gb/s");
}

double ParseDurationS(const std::string& text) {
  static const std::vector<std::pair<std::string, double>> kUnits = {
      {"s", 1.0}, {"ms", 1e-3}, {"us", 1e-6}, {"ns", 1e-9}};
  return Scaled(text, kUnits, "s, ms, us, ns");
}

double ParseSizeBytes(const std::string& text) {
  static const std::vector<std::pair<std::string, double>> kUnits = {
      {"B", 1.0},          {"KB", 1e3},          {"MB", 1e6},
      {"GB", 1e9},         {"TB", 1e12},         {"KiB", 1024.0},
      {"MiB", 1048576.0},  {"GiB", 1073741824.0}, {"TiB", 1099511627776.0}};
  return Scaled(text, kUnits, "B, KB, MB, GB, TB, KiB, MiB, GiB");
}

YAML::Node LoadYamlFile(const std::string& path) {
  struct stat info;
  if (stat(path.c_str(), &info) != 0)
    throw ConfigError(path, "", "", std::string("cannot open file: ") + std::strerror(errno));
  if (S_ISDIR(info.st_mode)) throw ConfigError(path, "", "", "is a folder, not a file");
  const std::string too_large =
      "too large for a configuration file (more than " + std::to_string(kMaxConfigFileBytes) +
      " bytes)";
  if (S_ISREG(info.st_mode) && info.st_size > kMaxConfigFileBytes)
    throw ConfigError(path, "", "", too_large);
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError(path, "", "", "cannot open file");
  // Pipes (`<(...)`) and devices have no size: stop reading past the limit.
  std::string text;
  char chunk[65536];
  while (in.read(chunk, sizeof(chunk)) || in.gcount() > 0) {
    text.append(chunk, static_cast<size_t>(in.gcount()));
    if (text.size() > static_cast<size_t>(kMaxConfigFileBytes)) throw ConfigError(path, "", "", too_large);
  }
  if (in.bad()) throw ConfigError(path, "", "", "cannot read file");
  return LoadYamlString(text, path);
}

YAML::Node LoadYamlString(const std::string& text, const std::string& name) {
  if (text.find('\0') != std::string::npos)
    throw ConfigError(name, "", "", "not a text file (contains NUL bytes)");
  YAML::Node node;
  try {
    node = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw ConfigError(name, "", "", std::string("YAML syntax error: ") + e.what());
  }
  if (!node.IsDefined() || node.IsNull())
    throw ConfigError(name, "", "", "empty file (no keys, only comments or blank lines)");
  if (!node.IsMap()) throw ConfigError(name, "", "", "expected a mapping of keys at the top level");
  return node;
}

YamlMap::YamlMap(const YAML::Node& node, const std::string& file, const std::string& path)
    : node_(node), file_(file), path_(path) {
  if (!node_.IsMap()) throw ConfigError(file_, path_, "", "expected a mapping of keys");
}

std::string YamlMap::KeyPath(const std::string& key) const {
  return path_.empty() ? key : path_ + "." + key;
}

void YamlMap::Fail(const std::string& key, const std::string& why) const {
  throw ConfigError(file_, KeyPath(key), Scalar(key), why);
}

std::string YamlMap::Scalar(const std::string& key) const {
  const YAML::Node value = node_[key];
  if (!value || !value.IsScalar()) return "";
  return value.Scalar();
}

bool YamlMap::Has(const std::string& key) const {
  const YAML::Node value = node_[key];
  return value && !value.IsNull();
}

YAML::Node YamlMap::Need(const std::string& key) {
  known_.insert(key);
  // Read through a const reference: yaml-cpp's non-const operator[] inserts the key.
  YAML::Node value = static_cast<const YAML::Node&>(node_)[key];
  if (!value || value.IsNull()) throw ConfigError(file_, KeyPath(key), "", "missing required key");
  return value;
}

YamlMap YamlMap::Child(const std::string& key) {
  const YAML::Node value = Need(key);
  if (!value.IsMap()) Fail(key, "expected a mapping of keys");
  return YamlMap(value, file_, KeyPath(key));
}

std::string YamlMap::String(const std::string& key) {
  const YAML::Node value = Need(key);
  if (!value.IsScalar()) Fail(key, "expected a single value");
  if (value.Scalar().empty()) Fail(key, "must not be empty");
  return value.Scalar();
}

std::string YamlMap::StringOr(const std::string& key, const std::string& fallback) {
  known_.insert(key);
  return Has(key) ? String(key) : fallback;
}

bool YamlMap::Bool(const std::string& key) {
  std::string text = String(key);
  if (text == "true" || text == "yes") return true;
  if (text == "false" || text == "no") return false;
  Fail(key, "expected true or false");
}

bool YamlMap::BoolOr(const std::string& key, bool fallback) {
  known_.insert(key);
  return Has(key) ? Bool(key) : fallback;
}

int64_t YamlMap::Int(const std::string& key, int64_t min_value) {
  std::string text = String(key);
  char* end = nullptr;
  errno = 0;
  long long number = std::strtoll(text.c_str(), &end, 10);
  if (end == text.c_str() || *end != '\0') Fail(key, "expected a whole number");
  if (errno == ERANGE) Fail(key, "number out of range");
  if (number < min_value) Fail(key, "must be >= " + std::to_string(min_value));
  return number;
}

int64_t YamlMap::IntOr(const std::string& key, int64_t min_value, int64_t fallback) {
  known_.insert(key);
  return Has(key) ? Int(key, min_value) : fallback;
}

double YamlMap::Positive(const std::string& key, bool allow_zero) {
  std::string text = String(key);
  char* end = nullptr;
  double number = std::strtod(text.c_str(), &end);
  if (end == text.c_str() || *end != '\0') Fail(key, "expected a number");
  if (!std::isfinite(number)) Fail(key, "not a finite number");
  if (allow_zero ? number < 0 : number <= 0) Fail(key, allow_zero ? "must be >= 0" : "must be > 0");
  return number;
}

double YamlMap::PositiveOr(const std::string& key, double fallback, bool allow_zero) {
  known_.insert(key);
  return Has(key) ? Positive(key, allow_zero) : fallback;
}

double YamlMap::BandwidthBps(const std::string& key) {
  std::string text = String(key);
  try {
    return ParseBandwidthBps(text);
  } catch (const std::invalid_argument& e) {
    Fail(key, e.what());
  }
}

double YamlMap::DurationS(const std::string& key) {
  std::string text = String(key);
  try {
    return ParseDurationS(text);
  } catch (const std::invalid_argument& e) {
    Fail(key, e.what());
  }
}

double YamlMap::DurationSOr(const std::string& key, double fallback) {
  known_.insert(key);
  return Has(key) ? DurationS(key) : fallback;
}

double YamlMap::SizeBytes(const std::string& key) {
  std::string text = String(key);
  try {
    return ParseSizeBytes(text);
  } catch (const std::invalid_argument& e) {
    Fail(key, e.what());
  }
}

void YamlMap::Ignore(const std::string& key) { known_.insert(key); }

void YamlMap::Finish() const {
  for (const auto& entry : node_) {
    std::string key = entry.first.IsScalar() ? entry.first.Scalar() : "?";
    if (known_.count(key) == 0) throw ConfigError(file_, KeyPath(key), "", "unknown key");
  }
}

}  // namespace epsim
