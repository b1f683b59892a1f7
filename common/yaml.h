// epsim common: reading YAML configuration files (topologies, scenarios, sweeps, profiles)
// strictly.
//
// A file is refused with one ConfigError naming the file, the key and the value when it is
// missing, a folder, empty, too large, not YAML, or repeats a key in a mapping (YAML leaves
// which of two values wins to the reader; epsim takes neither). YamlMap then reads a mapping
// strictly: unknown keys, missing keys, wrong types, bad units and out-of-range numbers
// raise a ConfigError. Keys in errors are full paths ("scale_out.nics").
#ifndef EPSIM_COMMON_YAML_H_
#define EPSIM_COMMON_YAML_H_

#include <cstdint>
#include <set>
#include <string>

#include <yaml-cpp/yaml.h>

#include "common/error.h"

namespace epsim {

// Configuration files larger than this are refused before reading (real ones are < 10 KB).
constexpr long long kMaxConfigFileBytes = 16LL << 20;

// Loads a YAML file whose top level is a mapping.
YAML::Node LoadYamlFile(const std::string& path);
// Parses YAML text (for tests and embedded defaults); `name` stands for the file in errors.
YAML::Node LoadYamlString(const std::string& text, const std::string& name);

// A YAML mapping read strictly. Each getter records the key as known; Finish() then
// rejects any key that no getter asked for.
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
  // The raw node of `key` (marked known), for lists and free-form mappings.
  YAML::Node Node(const std::string& key);
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

#endif  // EPSIM_COMMON_YAML_H_
