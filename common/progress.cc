// epsim common: progress bar (see progress.h).
#include "common/progress.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <utility>

namespace epsim {

std::string FormatDuration(double s) {
  char buffer[32];
  if (!std::isfinite(s) || s < 0) return "--";
  const long total = std::lround(s);
  if (total >= 3600) {
    std::snprintf(buffer, sizeof(buffer), "%ldh%02ldm", total / 3600, (total / 60) % 60);
  } else {
    std::snprintf(buffer, sizeof(buffer), "%ldm%02lds", total / 60, total % 60);
  }
  return buffer;
}

ProgressBar::ProgressBar(std::string label, int64_t total, bool enabled)
    : label_(std::move(label)), total_(total), enabled_(enabled), tty_(isatty(2) != 0),
      start_(std::chrono::steady_clock::now()) {}

void ProgressBar::Update(int64_t done, int64_t failed, int64_t skipped, int64_t executed, bool force) {
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  const double since_draw = std::chrono::duration<double>(now - last_draw_).count();
  if (tty_) {
    if (!force && since_draw < 0.2) return;
  } else {
    const int64_t decile = total_ > 0 ? (10 * (done + failed)) / total_ : 10;
    const bool changed = done + failed != last_count_;
    if (!force && !(changed && (decile != last_decile_ || since_draw >= 30))) return;
    last_decile_ = decile;
  }
  last_count_ = done + failed;
  last_draw_ = now;
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const double rate = elapsed > 0 ? executed / elapsed : 0;
  const int64_t left = total_ - done - failed;
  const double eta = rate > 0 ? left / rate : (left == 0 ? 0 : -1);
  constexpr int kWidth = 24;
  const int filled = total_ > 0 ? static_cast<int>(kWidth * (done + failed) / total_) : kWidth;
  std::string bar = "[" + std::string(filled, '#') + std::string(kWidth - filled, '.') + "]";
  char line[256];
  std::snprintf(line, sizeof(line), "%s %s %lld/%lld runs, %.2f runs/s, %s left, %s elapsed",
                label_.c_str(), bar.c_str(), static_cast<long long>(done + failed),
                static_cast<long long>(total_), rate, FormatDuration(eta).c_str(),
                FormatDuration(elapsed).c_str());
  std::string text = line;
  if (skipped > 0) text += ", " + std::to_string(skipped) + " already done";
  if (failed > 0) text += ", " + std::to_string(failed) + " failed";
  if (tty_) {
    std::fprintf(stderr, "\r\033[K%s", text.c_str());
    drawn_ = true;
  } else {
    std::fprintf(stderr, "%s\n", text.c_str());
  }
  std::fflush(stderr);
}

void ProgressBar::Message(const std::string& text) {
  if (tty_ && drawn_) std::fprintf(stderr, "\r\033[K");
  std::fprintf(stderr, "%s\n", text.c_str());
  std::fflush(stderr);
  last_draw_ = {};
}

void ProgressBar::Finish() {
  if (enabled_ && tty_ && drawn_) std::fprintf(stderr, "\n");
  drawn_ = false;
}

}  // namespace epsim
