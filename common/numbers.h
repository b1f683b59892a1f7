// epsim common: strict number parsing, units in values, and the formatting of numbers.
//
// Every number a user writes (in a file or a flag) goes through these, so that "12abc",
// "", "1e999" and "nan" are refused the same way everywhere. Units live in the values:
// "450GB/s", "400Gbps", "1.5us", "80GB"; GB means 1e9 bytes, GiB 2^30.
#ifndef EPSIM_COMMON_NUMBERS_H_
#define EPSIM_COMMON_NUMBERS_H_

#include <cstdint>
#include <string>

namespace epsim {

// A whole number in base 10 (strtoll's syntax: leading blanks and a sign allowed), the
// whole text, within int64. False on anything else.
bool ParseInt64(const std::string& text, int64_t* value);
// A finite number (strtod's syntax), the whole text. False on anything else.
bool ParseFiniteDouble(const std::string& text, double* value);
// The same, telling text that is no number ("12abc", "") from one that is not finite
// ("nan", "inf", "1e999"), for errors that say which.
enum class NumberText { kFinite, kNotANumber, kNotFinite };
NumberText ParseNumber(const std::string& text, double* value);

// Parses "450GB/s", "400Gbps", "3.35TB/s", "200Gb/s", "1e9B/s" into bytes per second.
// Throws std::invalid_argument with a short reason on anything else.
double ParseBandwidthBps(const std::string& text);
// Parses "1.5us", "130ns", "2ms", "1s" into seconds.
double ParseDurationS(const std::string& text);
// Parses "80GB", "141GB", "512MB", "4KiB", "100B" into bytes.
double ParseSizeBytes(const std::string& text);

// printf into a std::string.
std::string StrFormat(const char* format, ...) __attribute__((format(printf, 1, 2)));
// printf at the end of `out`.
void StrAppendFormat(std::string* out, const char* format, ...) __attribute__((format(printf, 2, 3)));
// A number as %g writes it ("1.25", "1e-06"): how values are echoed in reports and errors.
std::string FormatG(double value);

}  // namespace epsim

#endif  // EPSIM_COMMON_NUMBERS_H_
