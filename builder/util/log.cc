#include "builder/util/log.h"

#include <cstdio>
#include <mutex>

namespace kiln::log {
namespace {
bool verbose_ = false;
std::mutex output_mutex;
}  // namespace

void set_verbose(bool verbose) {
  verbose_ = verbose;
}
bool verbose() {
  return verbose_;
}

void write_line(const std::string& line) {
  std::lock_guard lock(output_mutex);
  std::fprintf(stderr, "%s\n", line.c_str());
  std::fflush(stderr);
}

Stage::Stage(std::string name) : name_(std::move(name)), start_(std::chrono::steady_clock::now()) {
  info("==> {}", name_);
}

Stage::~Stage() {
  info("<== {} ({:.1f} s)", name_, elapsed_seconds());
}

double Stage::elapsed_seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

std::string human_bytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB"};
  int unit = 0;
  while (bytes >= 1024 && unit < 3) {
    bytes /= 1024;
    ++unit;
  }
  return unit == 0 ? fmt::format("{:.0f} B", bytes) : fmt::format("{:.1f} {}", bytes, units[unit]);
}

}  // namespace kiln::log
