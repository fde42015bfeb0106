// A signal that ends kiln removes its temporaries (a stamped disk copy holds the token) and the
// commands it was running, and the process still dies of that signal.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <thread>

#include "builder/util/files.h"
#include "builder/util/process.h"
#include "builder/util/signals.h"
#include "support/temp_dir.h"

namespace fs = std::filesystem;

namespace {

/// Runs `body` in a forked child with the signal handlers installed; returns its wait status.
template <typename Body>
int in_child(Body body) {
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    kiln::remove_temporaries_on_signals();
    try {
      body();
    } catch (...) {
      _exit(3);
    }
    _exit(4);  // the body was meant to be killed by its signal
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return status;
}

/// Temporaries of every kind: a TempPath file, a TempPath tree, an uncommitted AtomicFile.
void make_temporaries(const fs::path& dir) {
  auto* file = new kiln::TempPath(dir / ".stamped.raw.tmp");
  kiln::write_file_atomic(file->path(), "token inside");
  auto* tree = new kiln::TempPath(dir / "staging");
  for (const char* sub : {"a/b/c", "a/d", "e"}) fs::create_directories(tree->path() / sub);
  for (const char* name : {"a/b/c/1", "a/b/2", "a/d/3", "e/4", "5"})
    kiln::write_file_atomic(tree->path() / name, "x");
  fs::create_symlink("/etc/hostname", tree->path() / "a" / "link");
  auto* atomic = new kiln::AtomicFile(dir / "join.img");
  (void)::write(atomic->fd(), "token", 5);
}

std::size_t count_entries(const fs::path& dir) {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& e : fs::recursive_directory_iterator(dir)) ++n;
  return n;
}

}  // namespace

TEST_CASE("SIGINT and SIGTERM remove registered temporaries and still kill with that signal") {
  for (int signal : {SIGINT, SIGTERM, SIGHUP}) {
    INFO(strsignal(signal));
    kiln::test::TempDir dir;
    kiln::write_file_atomic(dir.path() / "keep", "an output already renamed into place");
    int status = in_child([&] {
      make_temporaries(dir.path());
      if (count_entries(dir.path()) != 15) _exit(5);
      ::raise(signal);
    });
    REQUIRE(WIFSIGNALED(status));
    CHECK(WTERMSIG(status) == signal);
    CHECK(count_entries(dir.path()) == 1);
    CHECK(fs::exists(dir.path() / "keep"));
    CHECK(fs::exists("/etc/hostname"));  // a symlink in a tree is removed, not followed
  }
}

TEST_CASE("a signal from another thread also removes the temporaries") {
  kiln::test::TempDir dir;
  int status = in_child([&] {
    make_temporaries(dir.path());
    std::thread([] { ::kill(::getpid(), SIGTERM); }).join();
    ::pause();
  });
  REQUIRE(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGTERM);
  CHECK(count_entries(dir.path()) == 0);
}

TEST_CASE("a signal stops the running command before the temporaries are removed") {
  kiln::test::TempDir dir;
  fs::path pid_file = dir.path() / "command.pid";
  int status = in_child([&] {
    make_temporaries(dir.path());
    // A command that keeps running unless it is told to stop, as a conversion writing into a
    // temporary would. raise() signals only this process, not the command.
    kiln::StreamingCommand command(
        {"sh", "-c", "echo $$ > " + pid_file.string() + "; exec sleep 60"});
    while (!fs::exists(pid_file) || fs::file_size(pid_file) == 0) ::usleep(10000);
    ::raise(SIGINT);
  });
  REQUIRE(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGINT);
  std::string pid_text = kiln::read_file(pid_file);
  pid_t command = 0;
  std::from_chars(pid_text.data(), pid_text.data() + pid_text.size(), command);
  REQUIRE(command > 0);
  CHECK(::kill(command, 0) != 0);         // reaped by the handler, not left to run
  CHECK(count_entries(dir.path()) == 1);  // only the pid file
}

TEST_CASE("without a registration nothing is removed: renamed outputs stay") {
  kiln::test::TempDir dir;
  int status = in_child([&] {
    kiln::TempPath temp(dir.path() / "out.tmp");
    kiln::write_file_atomic(temp.path(), "done");
    fs::rename(temp.path(), dir.path() / "out");
    temp.release();
    ::raise(SIGTERM);
  });
  REQUIRE(WIFSIGNALED(status));
  CHECK(kiln::read_file(dir.path() / "out") == "done");
}

TEST_CASE(
    "a command run as a process group of its own is signalled as a group, so it can clean up") {
  kiln::test::TempDir dir;
  fs::path started = dir.path() / "started";
  fs::path cleaned = dir.path() / "cleaned";
  int status = in_child([&] {
    std::thread([&] {
      // SIGTERM blocked here reaches the main thread, which is waiting for the command.
      sigset_t term;
      sigemptyset(&term);
      sigaddset(&term, SIGTERM);
      ::pthread_sigmask(SIG_BLOCK, &term, nullptr);
      while (!fs::exists(started)) ::usleep(10000);
      ::kill(::getpid(), SIGTERM);
    }).detach();
    // As mmdebstrap does: the main process holds the signal until its worker has finished,
    // then cleans up. Signalled alone it would wait out the worker's minute and be killed.
    kiln::run({"sh", "-c",
               "trap 'echo cleaned > " + cleaned.string() + "; exit 1' TERM; sh -c 'touch " +
                   started.string() + "; exec sleep 60'"},
              {.signal_whole_group = true});
  });
  REQUIRE(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGTERM);
  REQUIRE(fs::exists(cleaned));
  CHECK(kiln::read_file(cleaned) == "cleaned\n");
}
