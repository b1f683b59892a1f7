// epsim common: enums that users spell as words in files and flags.
//
// Each such enum has one table of (value, name) pairs, in the order help texts list them;
// the parser, the help text, the error messages and the report all read the same table:
//
//   const EnumTable<Engine>& EngineNames() {
//     static const EnumTable<Engine> kNames = {{Engine::kSimGrid, "simgrid"}, ...};
//     return kNames;
//   }
//   Engine e;  if (!ValueOf(EngineNames(), "analytic", &e)) ...;   NameOf(EngineNames(), e);
#ifndef EPSIM_COMMON_ENUM_NAMES_H_
#define EPSIM_COMMON_ENUM_NAMES_H_

#include <string>
#include <utility>
#include <vector>

namespace epsim {

template <typename E>
using EnumTable = std::vector<std::pair<E, const char*>>;

// The name of `value` ("?" if the table lacks it, which is a bug).
template <typename E>
const char* NameOf(const EnumTable<E>& table, E value) {
  for (const auto& [v, name] : table)
    if (v == value) return name;
  return "?";
}

// The value named `name`; false when no entry has that name.
template <typename E>
bool ValueOf(const EnumTable<E>& table, const std::string& name, E* value) {
  for (const auto& [v, n] : table) {
    if (name == n) {
      *value = v;
      return true;
    }
  }
  return false;
}

// Every name, in table order, joined by `separator` ("direct|hierarchical|rdma-only").
template <typename E>
std::string JoinedNames(const EnumTable<E>& table, const char* separator) {
  std::string out;
  for (const auto& entry : table) out += (out.empty() ? "" : separator) + std::string(entry.second);
  return out;
}

}  // namespace epsim

#endif  // EPSIM_COMMON_ENUM_NAMES_H_
