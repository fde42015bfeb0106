// Files written "atomically" pass through a temporary beside the destination. In a shared
// directory that temporary must not be a name others can predict and plant a symlink at, and a
// file that holds a secret must never be readable by others on its way.
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <set>

#include "builder/join/config_initrd.h"
#include "builder/join/join_config.h"
#include "builder/util/files.h"
#include "support/join_config_text.h"
#include "support/temp_dir.h"

namespace fs = std::filesystem;

namespace {

/// Plants symlinks at the names a per-process counter would give the next temporaries
/// (".NAME.tmp-PID-0" ... "-199"), all pointing at one victim file.
fs::path plant_symlinks(const fs::path& dir, const std::string& name) {
  fs::path victim = dir / "victim";
  kiln::write_file_atomic(victim, "");
  for (int i = 0; i < 200; ++i) {
    fs::create_symlink(victim, dir / ("." + name + ".tmp-" + std::to_string(::getpid()) + "-" +
                                      std::to_string(i)));
  }
  return victim;
}

unsigned mode_of(const fs::path& path) {
  struct stat st {};
  REQUIRE(::lstat(path.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

std::set<std::string> entries(const fs::path& dir) {
  std::set<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) names.insert(entry.path().filename());
  return names;
}

}  // namespace

TEST_CASE("temporary names beside a file cannot be predicted") {
  std::set<std::string> names;
  for (int i = 0; i < 100; ++i) names.insert(kiln::temp_sibling("/dir/out.raw").filename());
  CHECK(names.size() == 100);
  for (const auto& name : names) {
    INFO(name);
    CHECK(name.rfind(".out.raw.tmp-" + std::to_string(::getpid()) + "-", 0) == 0);
    // 128 random bits in hex after the pid.
    CHECK(name.size() ==
          std::string(".out.raw.tmp-" + std::to_string(::getpid()) + "-").size() + 32);
  }
}

TEST_CASE("an atomic write never follows a symlink planted beside the destination") {
  kiln::test::TempDir dir;
  fs::path victim = plant_symlinks(dir.path(), "join.yaml");
  kiln::write_file_atomic(dir.path() / "join.yaml", "token: abcdef.0123456789abcdef\n", 0600);
  CHECK(kiln::read_file(victim).empty());
  CHECK(kiln::read_file(dir.path() / "join.yaml") == "token: abcdef.0123456789abcdef\n");
  CHECK(mode_of(dir.path() / "join.yaml") == 0600);
  CHECK(entries(dir.path()).size() == 202);  // victim, 200 symlinks, join.yaml: no temporary left
}

TEST_CASE("an atomic copy never follows a symlink planted beside the destination") {
  kiln::test::TempDir dir;
  kiln::write_file_atomic(dir.path() / "source", "disk with a token", 0640);
  fs::path victim = plant_symlinks(dir.path(), "copy");
  kiln::copy_file_atomic(dir.path() / "source", dir.path() / "copy");
  CHECK(kiln::read_file(victim).empty());
  CHECK(kiln::read_file(dir.path() / "copy") == "disk with a token");
  CHECK(mode_of(dir.path() / "copy") == 0640);
}

TEST_CASE("the join initrd never follows a symlink planted beside it and ends up 0600") {
  kiln::test::TempDir dir;
  fs::path victim = plant_symlinks(dir.path(), "join.img");
  kiln::JoinConfig config =
      kiln::parse_join_config(kiln::test::join_config_text("2099-01-01T00:00:00Z"), "join.yaml");
  ::umask(022);
  kiln::write_join_initrd(config, dir.path() / "join.img");
  CHECK(kiln::read_file(victim).empty());
  CHECK(kiln::read_file(dir.path() / "join.img").find("abcdef.0123456789abcdef") !=
        std::string::npos);
  CHECK(mode_of(dir.path() / "join.img") == 0600);
}

TEST_CASE("an atomic write creates its temporary 0600 whatever the final mode and umask") {
  kiln::test::TempDir dir;
  ::umask(0);
  kiln::AtomicFile file(dir.path() / "out");
  CHECK(mode_of(file.temp_path()) == 0600);
  CHECK(kiln::temp_registry::registered_count() >= 1);
  file.commit(0644);
  ::umask(022);
  CHECK(mode_of(dir.path() / "out") == 0644);
  CHECK(entries(dir.path()) == std::set<std::string>{"out"});
}

TEST_CASE("an atomic file never committed leaves nothing behind and is no longer registered") {
  kiln::test::TempDir dir;
  int before = kiln::temp_registry::registered_count();
  {
    kiln::AtomicFile file(dir.path() / "out");
    CHECK(kiln::temp_registry::registered_count() == before + 1);
  }
  CHECK(kiln::temp_registry::registered_count() == before);
  CHECK(entries(dir.path()).empty());
}
