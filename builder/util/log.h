#pragma once

#include <fmt/format.h>

#include <chrono>
#include <string>

namespace kiln::log {

/// Verbose mode prints every external command and cache decision.
void set_verbose(bool verbose);
bool verbose();

void write_line(const std::string& line);

template <typename... Args>
void info(fmt::format_string<Args...> format, Args&&... args) {
  write_line(fmt::format(format, std::forward<Args>(args)...));
}

template <typename... Args>
void debug(fmt::format_string<Args...> format, Args&&... args) {
  if (verbose()) write_line(fmt::format(format, std::forward<Args>(args)...));
}

template <typename... Args>
void warn(fmt::format_string<Args...> format, Args&&... args) {
  write_line("warning: " + fmt::format(format, std::forward<Args>(args)...));
}

/// Logs "==> name" when a stage starts and "<== name (12.3 s)" when it ends.
class Stage {
 public:
  explicit Stage(std::string name);
  ~Stage();
  Stage(const Stage&) = delete;
  Stage& operator=(const Stage&) = delete;
  double elapsed_seconds() const;

 private:
  std::string name_;
  std::chrono::steady_clock::time_point start_;
};

/// "1.2 MiB" style sizes for progress lines.
std::string human_bytes(double bytes);

}  // namespace kiln::log
