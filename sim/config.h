// epsim: reading configuration files (topologies, scenarios, profiles) strictly.
//
// Every value is checked: unknown keys, missing keys, wrong types, bad units and
// non-positive numbers raise a ConfigError that names the file, the key and the value.
// Units live in the values: "450GB/s", "400Gbps", "1.5us", "80GB". GB means 1e9 bytes.
#ifndef EPSIM_SIM_CONFIG_H_
#define EPSIM_SIM_CONFIG_H_

#include <cstdint>
#include <set>
#include <stdexcept>
#include <string>

#include <yaml-cpp/yaml.h>

namespace epsim {

// A bad input. what() is one line: "FILE: KEY: 'VALUE': WHY" (empty parts left out; control
// characters written as \xNN, long parts cut).
class ConfigError : public std::runtime_error {
 public:
  ConfigError(const std::string& file, const std::string& key, const std::string& value,
              const std::string& why);
  const std::string& file() const { return file_; }
  const std::string& key() const { return key_; }
  const std::string& value() const { return value_; }

 private:
  std::string file_, key_, value_;
};

// Parses "450GB/s", "400Gbps", "3.35TB/s", "200Gb/s", "1e9B/s" into bytes per second.
// Throws std::invalid_argument with a short reason on anything else.
double ParseBandwidthBps(const std::string& text);
// Parses "1.5us", "130ns", "2ms", "1s" into seconds.
double ParseDurationS(const std::string& text);
// Parses "80GB", "141GB", "512MB", "4KiB", "100B" into bytes.
double ParseSizeBytes(const std::string& text);

// Configuration files larger than this are refused before reading (real ones are < 10 KB).
constexpr long long kMaxConfigFileBytes = 16LL << 20;

// Loads a YAML file, turning a missing file, a folder, an empty file or a syntax error into
// a ConfigError.
YAML::Node LoadYamlFile(const std::string& path);
// Parses YAML text (for tests and embedded defaults); `name` is used in errors.
YAML::Node LoadYamlString(const std::string& text, const std::string& name);

// A YAML mapping read strictly. Each getter records the key as known; Finish() then
// rejects any key that no getter asked for. Keys in errors are full paths ("scale_out.nics").
class YamlMap {
 public:
  YamlMap(const YAML::Node& node, const std::string& file, const std::string& path);

  bool Has(const std::string& key) const;
  YamlMap Child(const std::string& key);
  std::string String(const std::string& key);
  std::string StringOr(const std::string& key, const std::string& fallback);
  bool Bool(const std::string& key);
  bool BoolOr(const std::string& key, bool fallback);
  // Integers must be whole numbers >= min_value.
  int64_t Int(const std::string& key, int64_t min_value);
  int64_t IntOr(const std::string& key, int64_t min_value, int64_t fallback);
  // Finite numbers > 0 (or >= 0 with allow_zero).
  double Positive(const std::string& key, bool allow_zero = false);
  double PositiveOr(const std::string& key, double fallback, bool allow_zero = false);
  double BandwidthBps(const std::string& key);
  double DurationS(const std::string& key);
  double DurationSOr(const std::string& key, double fallback);
  double SizeBytes(const std::string& key);
  // Marks a key as known without reading it (free-form notes such as `sources`).
  void Ignore(const std::string& key);
  // Throws on the first key that no getter asked for.
  void Finish() const;

  const std::string& file() const { return file_; }
  std::string KeyPath(const std::string& key) const;
  [[noreturn]] void Fail(const std::string& key, const std::string& why) const;
  std::string Scalar(const std::string& key) const;  // raw text, for errors

 private:
  YAML::Node Need(const std::string& key);
  YAML::Node node_;
  std::string file_;
  std::string path_;
  std::set<std::string> known_;
};

}  // namespace epsim

#endif  // EPSIM_SIM_CONFIG_H_
