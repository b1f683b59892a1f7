// epsim common: strict YAML reading (see yaml.h).
#include "common/yaml.h"

#include <map>
#include <stdexcept>
#include <utility>
#include <vector>

#include "common/files.h"
#include "common/numbers.h"

namespace epsim {
namespace {

// Refuses a mapping anywhere in `root` that holds a key twice, naming the key's path and
// both lines. Walks with its own stack: a deeply nested garbage file must not overflow ours.
void RefuseDuplicateKeys(const YAML::Node& root, const std::string& name) {
  std::vector<std::pair<YAML::Node, std::string>> pending = {{root, ""}};
  while (!pending.empty()) {
    const auto [node, path] = pending.back();
    pending.pop_back();
    if (node.IsMap()) {
      std::map<std::string, int> first_line;
      for (const auto& entry : node) {
        if (!entry.first.IsScalar()) continue;  // complex keys: the loaders refuse them
        const std::string& key = entry.first.Scalar();
        const std::string key_path = path.empty() ? key : path + "." + key;
        const int line = entry.first.Mark().line + 1;
        const auto [at, fresh] = first_line.emplace(key, line);
        if (!fresh) {
          throw ConfigError(name, key_path, "",
                            "given twice (lines " + std::to_string(at->second) + " and " +
                                std::to_string(line) + "): give each key once");
        }
        pending.emplace_back(entry.second, key_path);
      }
    } else if (node.IsSequence()) {
      for (size_t i = 0; i < node.size(); ++i)
        pending.emplace_back(node[i], path + "[" + std::to_string(i) + "]");
    }
  }
}

}  // namespace

YAML::Node LoadYamlFile(const std::string& path) {
  return LoadYamlString(ReadFileBounded(path, kMaxConfigFileBytes, "configuration file"), path);
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
  RefuseDuplicateKeys(node, name);
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

YAML::Node YamlMap::Node(const std::string& key) { return Need(key); }

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
  const std::string text = String(key);
  int64_t number = 0;
  if (!ParseInt64(text, &number)) {
    double any = 0;
    // A number too large for int64 says so; anything else is not a whole number.
    Fail(key, ParseFiniteDouble(text, &any) && text.find_first_of(".eE") == std::string::npos
                  ? "number out of range" : "expected a whole number");
  }
  if (number < min_value) Fail(key, "must be >= " + std::to_string(min_value));
  return number;
}

int64_t YamlMap::IntOr(const std::string& key, int64_t min_value, int64_t fallback) {
  known_.insert(key);
  return Has(key) ? Int(key, min_value) : fallback;
}

double YamlMap::Positive(const std::string& key, bool allow_zero) {
  double number = 0;
  switch (ParseNumber(String(key), &number)) {
    case NumberText::kNotANumber: Fail(key, "expected a number");
    case NumberText::kNotFinite: Fail(key, "not a finite number");
    case NumberText::kFinite: break;
  }
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
