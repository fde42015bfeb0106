#pragma once

#include <sys/wait.h>

#include <cstdio>
#include <string>

namespace kiln::test {

struct CommandResult {
  int exit_code;
  std::string output;  ///< stdout and stderr together, as a user would see them
};

/// Runs a shell command line and captures what it prints.
inline CommandResult run_command(const std::string& command) {
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  std::string output;
  char buffer[4096];
  while (size_t n = std::fread(buffer, 1, sizeof buffer, pipe)) output.append(buffer, n);
  int status = ::pclose(pipe);
  return {WEXITSTATUS(status), output};
}

/// Runs a shell command line and captures only what it prints on stdout (a JSON document,
/// say); its stderr goes to the test's own.
inline CommandResult run_stdout(const std::string& command) {
  FILE* pipe = ::popen(command.c_str(), "r");
  std::string output;
  char buffer[4096];
  while (size_t n = std::fread(buffer, 1, sizeof buffer, pipe)) output.append(buffer, n);
  int status = ::pclose(pipe);
  return {WEXITSTATUS(status), output};
}

}  // namespace kiln::test
