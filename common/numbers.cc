// epsim common: numbers and units (see numbers.h).
#include "common/numbers.h"

#include <cerrno>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <utility>
#include <vector>

namespace epsim {
namespace {

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

void AppendV(std::string* out, const char* format, va_list args) {
  va_list again;
  va_copy(again, args);
  const int length = std::vsnprintf(nullptr, 0, format, args);
  if (length > 0) {
    const size_t at = out->size();
    out->resize(at + static_cast<size_t>(length) + 1);
    std::vsnprintf(&(*out)[at], static_cast<size_t>(length) + 1, format, again);
    out->resize(at + static_cast<size_t>(length));
  }
  va_end(again);
}

}  // namespace

bool ParseInt64(const std::string& text, int64_t* value) {
  const char* begin = text.c_str();
  char* end = nullptr;
  errno = 0;
  const long long number = std::strtoll(begin, &end, 10);
  if (text.empty() || end == begin || *end != '\0' || errno == ERANGE) return false;
  *value = number;
  return true;
}

NumberText ParseNumber(const std::string& text, double* value) {
  const char* begin = text.c_str();
  char* end = nullptr;
  const double number = std::strtod(begin, &end);
  if (text.empty() || end == begin || *end != '\0') return NumberText::kNotANumber;
  if (!std::isfinite(number)) return NumberText::kNotFinite;
  *value = number;
  return NumberText::kFinite;
}

bool ParseFiniteDouble(const std::string& text, double* value) {
  return ParseNumber(text, value) == NumberText::kFinite;
}

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

std::string StrFormat(const char* format, ...) {
  std::string out;
  va_list args;
  va_start(args, format);
  AppendV(&out, format, args);
  va_end(args);
  return out;
}

void StrAppendFormat(std::string* out, const char* format, ...) {
  va_list args;
  va_start(args, format);
  AppendV(out, format, args);
  va_end(args);
}

std::string FormatG(double value) { return StrFormat("%g", value); }

}  // namespace epsim
