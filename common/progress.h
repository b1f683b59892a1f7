// epsim common: a progress bar on stderr for work of many equal items (runs of a sweep).
#ifndef EPSIM_COMMON_PROGRESS_H_
#define EPSIM_COMMON_PROGRESS_H_

#include <chrono>
#include <cstdint>
#include <string>

namespace epsim {

// Items done / total, rate and time left: redrawn in place on a terminal, a line every 10%
// (or 30 s) otherwise. `label` starts the line ("sweep").
class ProgressBar {
 public:
  ProgressBar(std::string label, int64_t total, bool enabled);

  // `done` includes skipped items; `executed` counts items finished in this session (the
  // rate). `force` redraws now.
  void Update(int64_t done, int64_t failed, int64_t skipped, int64_t executed, bool force = false);
  // Prints a message line above the bar.
  void Message(const std::string& text);
  // Ends the bar's line.
  void Finish();

 private:
  std::string label_;
  int64_t total_;
  bool enabled_, tty_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point start_, last_draw_{};
  int64_t last_decile_ = -1, last_count_ = -1;
};

// "12m05s" or "1h02m"; "--" for negative or infinite.
std::string FormatDuration(double seconds);

}  // namespace epsim

#endif  // EPSIM_COMMON_PROGRESS_H_
