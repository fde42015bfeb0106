// Ctrl-C during `kiln build --join` leaves no token behind: no stamped disk copy, no half-written
// output, no private scratch in TMPDIR. Each run is interrupted at a random point (seeded and
// printed: KILN_INTERRUPT_SEED=N repeats a run) of a build from the fixture's warm cache.
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <set>
#include <string>
#include <thread>

#include "builder/util/files.h"
#include "support/join_config_text.h"
#include "support/temp_dir.h"

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

constexpr const char* kSecret = "0123456789abcdef";  // the token's secret in join_config_text

// Where to interrupt: after a line of the build's log shows up, plus a random delay.
const std::vector<std::string> kTriggers = {
    "==> build worker",         // planning and cache lookups
    "==> export",               // copying the disk, before stamping
    "stamped the join config",  // the stamped copy exists
    "==> export worker.raw",    // moving the stamped disk into place
    "==> export worker.qcow2",  // qemu-img writing a temporary
};

/// Final outputs of recipes/worker.yaml (`outputs: [raw, qcow2]`): they may exist when the
/// signal came after they were renamed into place; the disks hold the token, so only 0600.
const std::set<std::string> kOutputs = {"worker.raw", "worker.qcow2", "manifest.json",
                                        "SHA256SUMS"};
const std::set<std::string> kDisks = {"worker.raw", "worker.qcow2"};

struct Build {
  pid_t pid = -1;
  fs::path log;
};

Build start_build(const fs::path& config, const fs::path& out, const fs::path& tmp,
                  const fs::path& log) {
  std::fflush(stdout);  // else the child's copy of the buffer is printed twice
  Build build{::fork(), log};
  REQUIRE(build.pid >= 0);
  if (build.pid == 0) {
    ::setpgid(0, 0);  // its own process group, as a shell gives a foreground job
    ::setenv("TMPDIR", tmp.c_str(), 1);
    FILE* out_file = std::freopen(log.c_str(), "w", stdout);
    if (!out_file || ::dup2(STDOUT_FILENO, STDERR_FILENO) < 0) _exit(125);
    std::string recipe = std::string(KILN_SOURCE_DIR) + "/recipes/worker.yaml";
    ::execl(KILN_BINARY, KILN_BINARY, "build", recipe.c_str(), "--join", config.c_str(), "-o",
            out.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  ::setpgid(build.pid, build.pid);
  return build;
}

std::string read_log(const fs::path& log) {
  std::error_code ec;
  return fs::exists(log, ec) ? kiln::read_file(log) : std::string();
}

/// Waits for the build to exit; false (after killing it) when it takes longer than `limit`.
bool wait_for(pid_t pid, int& status, std::chrono::seconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (::waitpid(pid, &status, WNOHANG) == pid) return true;
    std::this_thread::sleep_for(20ms);
  }
  ::kill(-pid, SIGKILL);
  ::waitpid(pid, &status, 0);
  return false;
}

/// Every file and directory under `dir`, relative to it.
std::vector<fs::path> everything_under(const fs::path& dir) {
  std::vector<fs::path> found;
  if (!fs::exists(dir)) return found;
  for (const auto& entry : fs::recursive_directory_iterator(dir))
    found.push_back(fs::relative(entry.path(), dir));
  return found;
}

/// Whether a small file holds the secret (anything large here is already a leftover disk).
bool holds_secret(const fs::path& file) {
  if (!fs::is_regular_file(fs::symlink_status(file))) return false;
  if (fs::file_size(file) > (64u << 20)) return true;
  return kiln::read_file(file).find(kSecret) != std::string::npos;
}

}  // namespace

TEST_CASE("a build interrupted by SIGINT at random points leaves no token and no temporaries",
          "[image][join]") {
  unsigned seed = std::random_device{}();
  if (const char* fixed = std::getenv("KILN_INTERRUPT_SEED"))
    seed = std::strtoul(fixed, nullptr, 10);
  std::printf("interrupt test: KILN_INTERRUPT_SEED=%u\n", seed);
  std::mt19937 random(seed);

  kiln::test::TempDir work;
  fs::path config = work.path() / "join.yaml";
  kiln::write_file_atomic(config, kiln::test::join_config_text("2099-01-01T00:00:00Z"), 0600);

  int interrupted = 0;
  for (int run = 0; run < 4; ++run) {
    const std::string& trigger =
        kTriggers[std::uniform_int_distribution<std::size_t>(0, kTriggers.size() - 1)(random)];
    const int delay_ms = std::uniform_int_distribution<int>(0, 1500)(random);
    const bool whole_group = std::bernoulli_distribution(0.5)(random);
    fs::path parent = work.path() / ("run" + std::to_string(run));
    fs::path out = parent / "out", tmp = work.path() / ("tmp" + std::to_string(run));
    fs::create_directories(parent);
    fs::create_directories(tmp);
    std::printf("interrupt test: run %d: SIGINT to %s %d ms after \"%s\"\n", run,
                whole_group ? "the process group" : "kiln alone", delay_ms, trigger.c_str());
    INFO("run " << run << ": SIGINT " << delay_ms << " ms after '" << trigger << "' (seed " << seed
                << ")");

    Build build = start_build(config, out, tmp, parent / "build.log");
    int status = 0;
    bool exited = false;
    auto deadline = std::chrono::steady_clock::now() + 300s;
    while (std::chrono::steady_clock::now() < deadline &&
           read_log(build.log).find(trigger) == std::string::npos) {
      if (::waitpid(build.pid, &status, WNOHANG) == build.pid) {
        exited = true;
        break;
      }
      std::this_thread::sleep_for(10ms);
    }
    if (!exited) {
      std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
      ::kill(whole_group ? -build.pid : build.pid, SIGINT);
      REQUIRE(wait_for(build.pid, status, 120s));
    }
    std::string log = read_log(build.log);
    INFO(log);
    // Killed by the signal it got (the exit status a shell reports as 130), or done before it.
    if (WIFSIGNALED(status)) {
      CHECK(WTERMSIG(status) == SIGINT);
      ++interrupted;
    } else {
      CHECK(WIFEXITED(status));
      CHECK(WEXITSTATUS(status) == 0);
      std::printf("interrupt test: run %d finished before the signal\n", run);
    }
    CHECK(log.find(kSecret) == std::string::npos);

    // Nothing beside the output directory, nothing but final outputs in it.
    for (const auto& name : everything_under(parent)) {
      INFO(name.string());
      CHECK((name == "build.log" || name == "out" || name.begin()->string() == "out"));
    }
    for (const auto& name : everything_under(out)) {
      INFO(name.string());
      CHECK(kOutputs.count(name.string()) == 1);
      if (kDisks.count(name.string())) {
        struct stat st {};
        REQUIRE(::stat((out / name).c_str(), &st) == 0);
        CHECK((st.st_mode & 077) == 0);
      } else {
        CHECK_FALSE(holds_secret(out / name));
      }
    }
    // The stamping scratch (a FAT with join.yaml) went with the process.
    CHECK(everything_under(tmp).empty());
  }
  std::printf("interrupt test: %d of 4 runs died of SIGINT\n", interrupted);
  CHECK(interrupted >= 1);
}
