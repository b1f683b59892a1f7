// epsim common: the pieces of JSON text that results are written from, with deterministic
// number formatting (the same run gives the same bytes).
#ifndef EPSIM_COMMON_JSON_H_
#define EPSIM_COMMON_JSON_H_

#include <string>

namespace epsim {

// A JSON string literal, quotes included, with control characters escaped.
std::string JsonString(const std::string& text);
// %.10g; non-finite values become null.
std::string JsonNumber(double value);

}  // namespace epsim

#endif  // EPSIM_COMMON_JSON_H_
