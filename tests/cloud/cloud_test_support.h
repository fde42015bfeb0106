#pragma once

// What the cloud upload tests share: a scoped environment for the kiln child processes, and
// the scans that prove no secret reached a file, an argv or kiln's output.
#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "builder/util/files.h"
#include "support/run_command.h"

namespace kiln::test {

/// Variables a kiln child process inherits, as a user's shell would export them; the test's
/// own environment is restored afterwards.
class ScopedEnvironment {
 public:
  ScopedEnvironment() = default;
  ScopedEnvironment(const ScopedEnvironment&) = delete;
  ScopedEnvironment& operator=(const ScopedEnvironment&) = delete;
  ~ScopedEnvironment() {
    for (auto it = saved_.rbegin(); it != saved_.rend(); ++it) {
      if (it->second) {
        ::setenv(it->first.c_str(), it->second->c_str(), 1);
      } else {
        ::unsetenv(it->first.c_str());
      }
    }
  }
  void set(const std::string& name, const std::string& value) {
    const char* old = std::getenv(name.c_str());
    saved_.emplace_back(name, old ? std::optional<std::string>(old) : std::nullopt);
    ::setenv(name.c_str(), value.c_str(), 1);
  }
  void unset(const std::string& name) {
    const char* old = std::getenv(name.c_str());
    saved_.emplace_back(name, old ? std::optional<std::string>(old) : std::nullopt);
    ::unsetenv(name.c_str());
  }

 private:
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

/// Files under `dir` (or `dir` itself, a file) that contain `needle`.
inline std::vector<std::string> files_containing(const std::filesystem::path& dir,
                                                 const std::string& needle) {
  namespace fs = std::filesystem;
  std::vector<std::string> hits;
  if (!fs::exists(dir)) return hits;
  if (fs::is_regular_file(dir)) {
    if (kiln::read_file(dir).find(needle) != std::string::npos) hits.push_back(dir.string());
    return hits;
  }
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (!entry.is_regular_file() || entry.file_size() > (64u << 20)) continue;
    if (kiln::read_file(entry.path()).find(needle) != std::string::npos)
      hits.push_back(entry.path().string());
  }
  return hits;
}

/// Command lines of running processes that contain `needle`.
inline std::vector<std::string> argv_containing(const std::string& needle) {
  namespace fs = std::filesystem;
  std::vector<std::string> hits;
  for (const auto& entry : fs::directory_iterator("/proc")) {
    std::string pid = entry.path().filename();
    if (pid.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(entry.path() / "cmdline", std::ios::binary);
    std::string cmdline((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (cmdline.find(needle) != std::string::npos) hits.push_back(pid);
  }
  return hits;
}

/// kiln's --json result; the test fails with kiln's output when it did not succeed.
inline nlohmann::json parse_result(const CommandResult& run) {
  INFO(run.output);
  REQUIRE(run.exit_code == 0);
  return nlohmann::json::parse(run.output);
}

}  // namespace kiln::test
