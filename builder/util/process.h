#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace kiln {

struct RunOptions {
  /// Added to (or replacing entries of) the inherited environment.
  std::map<std::string, std::string> env;
  std::filesystem::path cwd;
  /// Capture stdout and return it; otherwise it goes to our stderr (progress stays visible).
  bool capture_stdout = false;
  /// Silence the child's output unless it fails (then its tail is included in the error).
  bool quiet = false;
  /// Scheduling niceness for the child (0 = inherit); background work yields to the critical path.
  int nice = 0;
  /// Runs the command in a process group of its own, with standard input from /dev/null, and
  /// a signal that stops kiln goes to that whole group: for a command whose main process waits
  /// out signals until its workers finish (mmdebstrap), so that the workers stop and it can
  /// unmount and remove what it built.
  bool signal_whole_group = false;
};

struct RunResult {
  std::string stdout_text;
};

/// Runs a command and waits. Throws kiln::Error naming the quoted command and its exit
/// status (127 = not found) or the signal that killed it.
RunResult run(const std::vector<std::string>& argv, const RunOptions& options = {});

/// A command started with its stdout on a pipe, for output too large to hold in memory
/// (a decompressed disk image). `finish()` waits for it and throws like `run()` when it
/// failed; a child never finished is killed when the object goes away.
class StreamingCommand {
 public:
  explicit StreamingCommand(const std::vector<std::string>& argv);
  ~StreamingCommand();
  StreamingCommand(const StreamingCommand&) = delete;
  StreamingCommand& operator=(const StreamingCommand&) = delete;

  /// The read end of the child's stdout.
  int output() const { return out_; }
  void finish();

 private:
  std::vector<std::string> argv_;
  int pid_ = -1;
  int out_ = -1;
};

/// Child processes run() and StreamingCommand are waiting for, so that a signal handler can pass
/// the signal on and wait for them before it removes their temporary outputs (signals.h).
namespace running_children {
/// Records a child; false when the table is full. `whole_group`: the child leads a process
/// group of its own, and stop_all() signals the group.
bool add(int pid, bool whole_group = false);
void remove(int pid);
/// Sends `signal` to every recorded child and reaps them, sending SIGKILL to those still
/// running after `timeout_ms`. Async-signal-safe.
void stop_all(int signal, int timeout_ms) noexcept;
}  // namespace running_children

/// One word as a shell would need it typed: as is when plainly safe, else single-quoted.
std::string shell_quote(const std::string& arg);

/// The command as a shell would need it typed, for logs and errors.
std::string quote_command(const std::vector<std::string>& argv);

/// Looks a program up in PATH; empty when absent.
std::filesystem::path find_program(const std::string& name);

/// Throws kiln::Error "<program> is not installed; install it with: apt-get install <package>"
/// when `program` is not in PATH.
void require_program(const std::string& program, const std::string& package);

}  // namespace kiln
