// epsim sweep: sweep files and grid expansion (see sweep_spec.h).
#include "sim/sweep/sweep_spec.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>
#include <sstream>

#include <yaml-cpp/yaml.h>

#include "common/error.h"
#include "common/numbers.h"
#include "common/yaml.h"
#include "sim/config/scenario.h"

namespace epsim {
namespace {

constexpr int64_t kMaxRuns = 1'000'000;
constexpr int64_t kMaxAxisValues = 100'000;
constexpr size_t kMaxIdChars = 160;

std::string Trim(const std::string& text) {
  size_t begin = text.find_first_not_of(" \t");
  if (begin == std::string::npos) return "";
  size_t end = text.find_last_not_of(" \t");
  return text.substr(begin, end - begin + 1);
}

std::string LastPart(const std::string& key) {
  const size_t dot = key.rfind('.');
  return dot == std::string::npos ? key : key.substr(dot + 1);
}

// A grid or `set:` key -> the scenario field it names.
std::string ScalarText(const YAML::Node& node, const std::string& file, const std::string& key) {
  if (node.IsNull()) throw ConfigError(file, key, "", "empty value");
  if (!node.IsScalar()) throw ConfigError(file, key, "", "expected a single value");
  const std::string text = Trim(node.Scalar());
  if (text.empty()) throw ConfigError(file, key, "", "empty value");
  return text;
}

double NumberText(const YAML::Node& node, const std::string& file, const std::string& key) {
  const std::string text = ScalarText(node, file, key);
  double value = 0;
  if (!ParseFiniteDouble(text, &value)) throw ConfigError(file, key, text, "expected a number");
  return value;
}

bool IsWhole(double value) { return std::fabs(value) < 9e15 && value == std::floor(value); }

std::string FormatValue(double value, bool whole) {
  char buffer[64];
  if (whole) {
    std::snprintf(buffer, sizeof(buffer), "%lld", static_cast<long long>(std::llround(value)));
  } else {
    std::snprintf(buffer, sizeof(buffer), "%.12g", value);
  }
  return buffer;
}

// {from, to, step} | {from, to, times} | {values: [...]} for one field.
std::vector<std::string> ParseRange(const YAML::Node& node, const std::string& file,
                                    const std::string& key) {
  std::set<std::string> present;
  for (const auto& entry : node) {
    const std::string name = entry.first.Scalar();
    static const std::set<std::string> kKnown = {"from", "to", "step", "times", "values"};
    if (kKnown.count(name) == 0) {
      throw ConfigError(file, key + "." + name, "",
                        "unknown range key (expected from/to with step or times, or values)");
    }
    present.insert(name);
  }
  std::vector<std::string> out;
  if (present.count("values") != 0) {
    if (present.size() != 1)
      throw ConfigError(file, key, "", "`values` cannot be combined with from/to/step/times");
    const YAML::Node values = node["values"];
    if (!values.IsSequence()) throw ConfigError(file, key + ".values", "", "expected a list");
    for (const auto& v : values) out.push_back(ScalarText(v, file, key + ".values"));
    return out;
  }
  if (present.count("from") == 0 || present.count("to") == 0)
    throw ConfigError(file, key, "", "a range needs from and to (and step or times)");
  if ((present.count("step") != 0) == (present.count("times") != 0))
    throw ConfigError(file, key, "", "a range needs exactly one of step or times");
  const double from = NumberText(node["from"], file, key + ".from");
  const double to = NumberText(node["to"], file, key + ".to");
  if (to < from)
    throw ConfigError(file, key + ".to", FormatValue(to, IsWhole(to)), "must be >= from");
  if (present.count("step") != 0) {
    const double step = NumberText(node["step"], file, key + ".step");
    if (step <= 0) throw ConfigError(file, key + ".step", node["step"].Scalar(), "must be > 0");
    const bool whole = IsWhole(from) && IsWhole(step);
    const double count = std::floor((to - from) / step + 1e-9) + 1;
    if (count > kMaxAxisValues)
      throw ConfigError(file, key, "", "range gives more than 100000 values");
    for (int64_t i = 0; i < static_cast<int64_t>(count); ++i) out.push_back(FormatValue(from + i * step, whole));
  } else {
    const double times = NumberText(node["times"], file, key + ".times");
    if (times <= 1) throw ConfigError(file, key + ".times", node["times"].Scalar(), "must be > 1");
    if (from <= 0) throw ConfigError(file, key + ".from", node["from"].Scalar(), "must be > 0 with times");
    const bool whole = IsWhole(from) && IsWhole(times);
    for (double v = from; v <= to * (1 + 1e-12); v *= times) {
      out.push_back(FormatValue(v, whole));
      if (static_cast<int64_t>(out.size()) > kMaxAxisValues)
        throw ConfigError(file, key, "", "range gives more than 100000 values");
    }
  }
  return out;
}

SweepAxis ParseAxis(const std::string& written, const YAML::Node& node, const std::string& file) {
  SweepAxis axis;
  axis.written = Trim(written);
  const std::string key = "grid." + axis.written;
  // "topology, nodes": linked fields.
  std::stringstream parts(written);
  std::string part;
  while (std::getline(parts, part, ',')) {
    if (Trim(part).empty()) throw ConfigError(file, "grid", written, "empty field name in a linked key");
    axis.fields.push_back(ResolveSweepField(part, file, "grid"));
  }
  if (axis.fields.empty()) throw ConfigError(file, "grid", written, "empty key");
  const size_t width = axis.fields.size();
  if (width == 1) {
    if (node.IsMap()) {
      for (auto& v : ParseRange(node, file, key)) axis.values.push_back({v});
    } else if (node.IsSequence()) {
      for (const auto& v : node) axis.values.push_back({ScalarText(v, file, key)});
    } else {
      axis.values.push_back({ScalarText(node, file, key)});
    }
  } else {
    YAML::Node list = node;
    if (node.IsMap()) {
      if (node.size() != 1 || !node["values"])
        throw ConfigError(file, key, "", "linked fields take a list of lists (or {values: ...})");
      list = node["values"];
    }
    if (!list.IsSequence())
      throw ConfigError(file, key, "", "linked fields take a list of lists, e.g. [[dgx-h100, 8], [gb200-nvl72, 18]]");
    for (const auto& point : list) {
      if (!point.IsSequence() || point.size() != width) {
        throw ConfigError(file, key, point.IsScalar() ? point.Scalar() : "",
                          "expected a list of " + std::to_string(width) + " values, one per field");
      }
      std::vector<std::string> values;
      for (const auto& v : point) values.push_back(ScalarText(v, file, key));
      axis.values.push_back(values);
    }
  }
  if (axis.values.empty()) throw ConfigError(file, key, "", "no values");
  std::set<std::vector<std::string>> seen;
  for (const auto& point : axis.values) {
    if (!seen.insert(point).second) {
      std::string text;
      for (const auto& v : point) text += (text.empty() ? "" : ", ") + v;
      throw ConfigError(file, key, text, "duplicate value");
    }
  }
  return axis;
}

SweepSpec ParseSweepNode(const YAML::Node& root, const std::string& file) {
  if (!root.IsMap()) throw ConfigError(file, "", "", "expected a mapping with base and grid");
  SweepSpec spec;
  spec.file = file;
  bool have_base = false;
  for (const auto& entry : root) {
    const std::string top = entry.first.Scalar();
    const YAML::Node& value = entry.second;
    if (top == "base") {
      spec.base = ScalarText(value, file, "base");
      have_base = true;
    } else if (top == "name") {
      ScalarText(value, file, "name");  // a label for people; not used
    } else if (top == "set") {
      if (value.IsNull()) continue;
      if (!value.IsMap()) throw ConfigError(file, "set", "", "expected a mapping of field: value");
      for (const auto& item : value) {
        SweepField f = ResolveSweepField(item.first.Scalar(), file, "set");
        spec.fixed.emplace_back(f, ScalarText(item.second, file, "set." + f.written));
      }
    } else if (top == "grid") {
      if (value.IsNull()) continue;
      if (!value.IsMap()) throw ConfigError(file, "grid", "", "expected a mapping of field: values");
      for (const auto& item : value) {
        SweepAxis axis = ParseAxis(item.first.Scalar(), item.second, file);
        spec.axes.push_back(std::move(axis));
      }
    } else {
      throw ConfigError(file, top, "", "unknown key (expected base, set, grid, name)");
    }
  }
  if (!have_base)
    throw ConfigError(file, "base", "", "missing required key (a scenario name, a path, or none)");
  CheckFieldsSetOnce(spec);
  int64_t runs = 1;
  for (const auto& axis : spec.axes) {
    runs *= static_cast<int64_t>(axis.values.size());
    if (runs > kMaxRuns)
      throw ConfigError(file, "grid", "", "more than 1000000 runs; split the sweep");
  }
  return spec;
}

std::string SanitizeIdPart(const std::string& text) {
  std::string out;
  for (char c : text) {
    const bool keep = std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '+';
    out += keep ? c : '-';
  }
  return out;
}

std::string Hex8(const std::string& text) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ull;
  }
  char buffer[20];
  std::snprintf(buffer, sizeof(buffer), "%08llx", static_cast<unsigned long long>(h & 0xffffffffull));
  return buffer;
}

}  // namespace

SweepField ResolveSweepField(const std::string& written, const std::string& file, const std::string& section) {
  const std::string text = Trim(written);
  for (const auto& [flag, key] : ScenarioFlags()) {
    if (text == key || text == flag || text == flag.substr(2) || text == LastPart(key))
      return SweepField{key, flag, LastPart(key), text};
  }
  throw ConfigError(file, section, text,
                    "unknown scenario field (use a key like workload.routing or a flag like "
                    "--routing; epsim --help lists them)");
}

void CheckFieldsSetOnce(const SweepSpec& spec) {
  std::set<std::string> keys_used;
  auto claim = [&](const SweepField& f, const std::string& section) {
    if (!keys_used.insert(f.key).second)
      throw ConfigError(spec.file, section + "." + f.written, "", "field " + f.key + " is set twice");
  };
  for (const auto& [field, value] : spec.fixed) claim(field, "set");
  for (const SweepAxis& axis : spec.axes)
    for (const SweepField& field : axis.fields) claim(field, "grid");
}

std::string FormatSweepFile(const SweepSpec& spec) {
  YAML::Emitter out;
  out << YAML::BeginMap << YAML::Key << "base" << YAML::Value << YAML::DoubleQuoted << spec.base;
  if (!spec.fixed.empty()) {
    out << YAML::Key << "set" << YAML::Value << YAML::BeginMap;
    for (const auto& [field, value] : spec.fixed)
      out << YAML::Key << field.key << YAML::Value << YAML::DoubleQuoted << value;
    out << YAML::EndMap;
  }
  out << YAML::Key << "grid" << YAML::Value << YAML::BeginMap;
  for (const SweepAxis& axis : spec.axes) {
    std::string key;
    for (const SweepField& f : axis.fields) key += (key.empty() ? "" : ", ") + f.key;
    out << YAML::Key << key << YAML::Value << YAML::Flow << YAML::BeginSeq;
    for (const auto& point : axis.values) {
      if (point.size() == 1) {
        out << YAML::DoubleQuoted << point[0];
        continue;
      }
      out << YAML::Flow << YAML::BeginSeq;
      for (const std::string& v : point) out << YAML::DoubleQuoted << v;
      out << YAML::EndSeq;
    }
    out << YAML::EndSeq;
  }
  out << YAML::EndMap << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

int64_t SweepSpec::NumRuns() const {
  int64_t runs = 1;
  for (const auto& axis : axes) runs *= static_cast<int64_t>(axis.values.size());
  return runs;
}

std::vector<std::string> SweepSpec::Columns() const {
  std::vector<std::string> columns;
  for (const auto& axis : axes)
    for (const auto& f : axis.fields) columns.push_back(f.column);
  return columns;
}

SweepSpec LoadSweepFile(const std::string& path) {
  return ParseSweepNode(LoadYamlFile(path), path);
}

SweepSpec ParseSweepText(const std::string& text, const std::string& name) {
  return ParseSweepNode(LoadYamlString(text, name), name);
}

std::vector<SweepRun> ExpandSweep(const SweepSpec& spec) {
  const int64_t total = spec.NumRuns();
  std::vector<SweepRun> runs;
  runs.reserve(static_cast<size_t>(total));
  std::vector<size_t> at(spec.axes.size(), 0);
  for (int64_t index = 0; index < total; ++index) {
    SweepRun run;
    run.index = index;
    for (const auto& [field, value] : spec.fixed) run.overrides.emplace_back(field.flag, value);
    std::string id;
    for (size_t a = 0; a < spec.axes.size(); ++a) {
      const SweepAxis& axis = spec.axes[a];
      for (size_t f = 0; f < axis.fields.size(); ++f) {
        const std::string& value = axis.values[at[a]][f];
        run.values.push_back(value);
        run.overrides.emplace_back(axis.fields[f].flag, value);
        id += (id.empty() ? "" : "_") + axis.fields[f].column + "=" + SanitizeIdPart(value);
      }
    }
    run.id = id.empty() ? "base" : id;
    runs.push_back(std::move(run));
    // Row-major: the last axis varies fastest.
    for (size_t a = spec.axes.size(); a-- > 0;) {
      if (++at[a] < spec.axes[a].values.size()) break;
      at[a] = 0;
    }
  }
  // Ids must be unique folder names: add a hash of the exact values where sanitizing made
  // two ids equal or an id too long.
  std::map<std::string, int> count;
  for (const auto& run : runs) ++count[run.id];
  for (auto& run : runs) {
    if (count[run.id] > 1 || run.id.size() > kMaxIdChars) {
      std::string exact;
      for (const auto& v : run.values) exact += v + '\x1f';
      run.id = run.id.substr(0, std::min(run.id.size(), kMaxIdChars)) + "-" + Hex8(exact);
    }
  }
  return runs;
}

std::string SweepRunArgs(const SweepSpec& spec, const SweepRun& run) {
  std::string text = "base " + spec.base + "\n";
  for (const auto& [flag, value] : run.overrides) text += flag + " " + value + "\n";
  return text;
}

}  // namespace epsim
