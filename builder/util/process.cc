#include "builder/util/process.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <ctime>

#include "builder/util/error.h"
#include "builder/util/log.h"

extern char** environ;

namespace kiln {
namespace {

std::vector<std::string> merged_environment(const std::map<std::string, std::string>& extra) {
  std::map<std::string, std::string> env;
  for (char** entry = environ; *entry; ++entry) {
    std::string item(*entry);
    auto eq = item.find('=');
    if (eq != std::string::npos) env[item.substr(0, eq)] = item.substr(eq + 1);
  }
  for (const auto& [key, value] : extra) env[key] = value;
  std::vector<std::string> out;
  for (const auto& [key, value] : env) out.push_back(key + "=" + value);
  return out;
}

std::string read_all(int fd) {
  std::string out;
  char buffer[65536];
  for (;;) {
    ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buffer, n);
  }
  return out;
}

std::string tail_lines(const std::string& text, int count) {
  size_t pos = text.size();
  while (count-- > 0 && pos > 0) {
    pos = text.rfind('\n', pos - 2 < text.size() ? pos - 2 : 0);
    if (pos == std::string::npos) return text;
    ++pos;
  }
  return text.substr(pos);
}

/// Throws kiln::Error when a child's wait status says it failed; `detail` ends the message.
void check_exit_status(int status, const std::string& shown, const std::string& detail) {
  if (WIFSIGNALED(status)) {
    throw Error("command was killed by signal " + std::string(strsignal(WTERMSIG(status))) + ": " +
                shown + detail);
  }
  int code = WEXITSTATUS(status);
  if (code == 127) throw Error("command not found (exit 127): " + shown + detail);
  if (code != 0)
    throw Error("command failed with exit status " + std::to_string(code) + ": " + shown + detail);
}

// A fixed table, readable from a signal handler without locks; 0 marks a free slot and -1 one
// being filled. whole_group_slots[i] says whether child_slots[i] leads its own process group.
constexpr int kChildSlots = 64;
std::atomic<pid_t> child_slots[kChildSlots];
std::atomic<bool> whole_group_slots[kChildSlots];

/// Records the child for the signal handler for as long as it runs.
struct RunningChild {
  RunningChild(pid_t pid, bool whole_group) : pid(pid) { running_children::add(pid, whole_group); }
  ~RunningChild() { running_children::remove(pid); }
  pid_t pid;
};

int wait_for_child(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return status;
}

}  // namespace

namespace running_children {

bool add(int pid, bool whole_group) {
  for (int i = 0; i < kChildSlots; ++i) {
    pid_t expected = 0;
    if (child_slots[i].compare_exchange_strong(expected, -1)) {
      whole_group_slots[i].store(whole_group);
      child_slots[i].store(pid);
      return true;
    }
  }
  return false;
}

void remove(int pid) {
  for (auto& slot : child_slots) {
    pid_t expected = pid;
    if (slot.compare_exchange_strong(expected, 0)) return;
  }
}

void stop_all(int signal, int timeout_ms) noexcept {
  int saved_errno = errno;
  auto target = [](int i, pid_t pid) { return whole_group_slots[i].load() ? -pid : pid; };
  for (int i = 0; i < kChildSlots; ++i) {
    if (pid_t pid = child_slots[i].load(); pid > 0) ::kill(target(i, pid), signal);
  }
  const timespec tick{0, 20 * 1000 * 1000};
  for (int waited = 0;; waited += 20) {
    bool any_running = false;
    for (int i = 0; i < kChildSlots; ++i) {
      pid_t pid = child_slots[i].load();
      if (pid <= 0) continue;
      int status = 0;
      pid_t got = ::waitpid(pid, &status, WNOHANG);
      // Reaped here or by the thread that started it: either way it is gone.
      if (got == pid || (got < 0 && errno == ECHILD)) {
        child_slots[i].store(0);
        continue;
      }
      if (waited >= timeout_ms) ::kill(target(i, pid), SIGKILL);
      any_running = true;
    }
    // A child stuck in the kernel even after SIGKILL is left behind rather than waited for.
    if (!any_running || waited >= timeout_ms + 2000) break;
    ::nanosleep(&tick, nullptr);
  }
  errno = saved_errno;
}

}  // namespace running_children

std::string shell_quote(const std::string& arg) {
  if (!arg.empty() && arg.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                            "0123456789-_./=:,+@%") == std::string::npos) {
    return arg;
  }
  std::string out = "'";
  for (char c : arg) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string quote_command(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& arg : argv) out += (out.empty() ? "" : " ") + shell_quote(arg);
  return out;
}

std::filesystem::path find_program(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin";
  size_t start = 0;
  while (start <= dirs.size()) {
    size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    std::filesystem::path candidate = std::filesystem::path(dirs.substr(start, end - start)) / name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    start = end + 1;
  }
  return {};
}

RunResult run(const std::vector<std::string>& argv, const RunOptions& options) {
  std::string shown = quote_command(argv);
  log::debug("$ {}", shown);
  bool capture_any = options.capture_stdout || options.quiet;
  int out_pipe[2] = {-1, -1};
  if (capture_any && ::pipe2(out_pipe, O_CLOEXEC) != 0)
    throw Error("pipe: " + std::string(strerror(errno)));

  std::vector<std::string> env = merged_environment(options.env);
  std::vector<char*> env_ptrs, arg_ptrs;
  for (auto& item : env) env_ptrs.push_back(item.data());
  env_ptrs.push_back(nullptr);
  std::vector<std::string> args = argv;
  for (auto& arg : args) arg_ptrs.push_back(arg.data());
  arg_ptrs.push_back(nullptr);

  pid_t pid = ::fork();
  if (pid < 0) throw Error("fork: " + std::string(strerror(errno)));
  if (pid == 0) {
    if (capture_any) {
      ::dup2(out_pipe[1], STDOUT_FILENO);
      if (options.quiet) ::dup2(out_pipe[1], STDERR_FILENO);
    } else {
      ::dup2(STDERR_FILENO, STDOUT_FILENO);
    }
    if (!options.cwd.empty() && ::chdir(options.cwd.c_str()) != 0) _exit(126);
    if (options.nice != 0 && ::setpriority(PRIO_PROCESS, 0, options.nice) != 0) _exit(126);
    if (options.signal_whole_group) {
      // Out of the terminal's foreground group, the command must not read from or set up
      // the terminal (apt would, for dpkg's pty, and be stopped by SIGTTOU).
      if (::setpgid(0, 0) != 0) _exit(126);
      int null = ::open("/dev/null", O_RDONLY);
      if (null < 0 || ::dup2(null, STDIN_FILENO) < 0) _exit(126);
      if (null != STDIN_FILENO) ::close(null);
    }
    ::execvpe(arg_ptrs[0], arg_ptrs.data(), env_ptrs.data());
    _exit(127);
  }
  // Set from both sides, so that the group exists before any signal could be passed to it.
  if (options.signal_whole_group) ::setpgid(pid, pid);
  RunningChild running(pid, options.signal_whole_group);
  std::string captured;
  if (capture_any) {
    ::close(out_pipe[1]);
    captured = read_all(out_pipe[0]);
    ::close(out_pipe[0]);
  }
  int status = wait_for_child(pid);
  std::string detail = options.quiet && !captured.empty() ? "\n" + tail_lines(captured, 20) : "";
  check_exit_status(status, shown, detail);
  return {options.capture_stdout ? captured : std::string()};
}

StreamingCommand::StreamingCommand(const std::vector<std::string>& argv) : argv_(argv) {
  log::debug("$ {}", quote_command(argv_));
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) throw Error("pipe: " + std::string(strerror(errno)));
  std::vector<char*> arg_ptrs;
  for (auto& arg : argv_) arg_ptrs.push_back(arg.data());
  arg_ptrs.push_back(nullptr);
  pid_ = ::fork();
  if (pid_ < 0) {
    ::close(pipe_fds[0]);
    ::close(pipe_fds[1]);
    throw Error("fork: " + std::string(strerror(errno)));
  }
  if (pid_ == 0) {
    ::dup2(pipe_fds[1], STDOUT_FILENO);
    ::execvp(arg_ptrs[0], arg_ptrs.data());
    _exit(127);
  }
  running_children::add(pid_);
  ::close(pipe_fds[1]);
  out_ = pipe_fds[0];
}

StreamingCommand::~StreamingCommand() {
  if (out_ >= 0) ::close(out_);
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    wait_for_child(pid_);
    running_children::remove(pid_);
  }
}

void StreamingCommand::finish() {
  ::close(out_);
  out_ = -1;
  int status = wait_for_child(pid_);
  running_children::remove(pid_);
  pid_ = -1;
  check_exit_status(status, quote_command(argv_), "");
}

void require_program(const std::string& program, const std::string& package) {
  if (find_program(program).empty())
    throw Error(program + " is not installed; install it with: apt-get install " + package);
}

}  // namespace kiln
