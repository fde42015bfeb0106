// kiln cache prune: what no build has used for a while goes, what a build may still read stays.
#include "builder/fetch/cache_prune.h"

#include <catch2/catch.hpp>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>

#include "builder/fetch/cache.h"
#include "builder/util/error.h"
#include "builder/util/files.h"
#include "builder/util/scan.h"
#include "support/run_command.h"
#include "support/temp_dir.h"

namespace fs = std::filesystem;
using kiln::prune_cache;

namespace {

constexpr auto kTwoWeeks = std::chrono::seconds(14 * 86400);

/// A cache with an old and a fresh entry of each kind; returns its root.
fs::path populated_cache(const fs::path& root) {
  { kiln::Cache cache(root, false); }
  auto make = [&](const std::string& path, int days_ago) {
    fs::path full = root / path;
    if (path.rfind("stages/", 0) == 0) {
      kiln::write_file_atomic(full / "base.tar", std::string(8192, 'x'));
    } else {
      kiln::write_file_atomic(full, std::string(8192, 'x'));
    }
    fs::last_write_time(full, fs::file_time_type::clock::now() - std::chrono::hours(24 * days_ago));
  };
  make("stages/base-old", 20);
  make("stages/disk-new", 1);
  make("blobs/sha256/0ld", 30);
  make("blobs/sha256/new", 0);
  make("apt-archives/old_1.0_amd64.deb", 15);
  make("partial/new", 0);
  return root;
}

std::vector<std::string> names(const std::vector<kiln::CacheEntry>& entries, const fs::path& root) {
  std::vector<std::string> out;
  for (const auto& entry : entries) out.push_back(fs::relative(entry.path, root).string());
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

TEST_CASE("cache prune removes what no build used within the window and keeps the rest") {
  kiln::test::TempDir dir;
  fs::path root = populated_cache(dir.path() / "cache");
  const std::vector<std::string> old = {"apt-archives/old_1.0_amd64.deb", "blobs/sha256/0ld",
                                        "stages/base-old"};

  auto dry = prune_cache(root, {kTwoWeeks, std::nullopt, /*dry_run=*/true});
  CHECK(names(dry.removed, root) == old);
  for (const auto& name : old) CHECK(fs::exists(root / name));

  auto pruned = prune_cache(root, {kTwoWeeks});
  CHECK(names(pruned.removed, root) == old);
  CHECK(names(pruned.kept, root) ==
        std::vector<std::string>{"blobs/sha256/new", "partial/new", "stages/disk-new"});
  for (const auto& name : old) CHECK_FALSE(fs::exists(root / name));
  CHECK(fs::exists(root / "stages/disk-new/base.tar"));
  CHECK(fs::is_empty(root / "scratch"));
  // The stage output counts its contents, not just its directory.
  for (const auto& entry : pruned.removed)
    if (entry.kind == "stage output") CHECK(entry.bytes >= 8192);
}

TEST_CASE("a stage a build took from the cache counts as used from then on") {
  kiln::test::TempDir dir;
  fs::path root = populated_cache(dir.path() / "cache");
  {
    kiln::Cache cache(root, false);
    cache.mark_used(root / "stages/base-old");
  }
  auto pruned = prune_cache(root, {kTwoWeeks});
  CHECK(fs::exists(root / "stages/base-old/base.tar"));
  CHECK(names(pruned.removed, root) ==
        std::vector<std::string>{"apt-archives/old_1.0_amd64.deb", "blobs/sha256/0ld"});
}

TEST_CASE("cache prune --max-size removes the least recently used until the rest fits") {
  kiln::test::TempDir dir;
  fs::path root = populated_cache(dir.path() / "cache");
  auto entries = kiln::list_cache_entries(root);  // least recently used first
  REQUIRE(entries.size() == 6);
  std::uint64_t newest_three = 0;
  for (std::size_t i = 3; i < entries.size(); ++i) newest_three += entries[i].bytes;
  const std::vector<std::string> oldest = {"apt-archives/old_1.0_amd64.deb", "blobs/sha256/0ld",
                                           "stages/base-old"};

  // No entry is older than a year, so only the budget removes anything.
  auto pruned = prune_cache(root, {std::chrono::hours(24 * 365), newest_three});
  CHECK(names(pruned.removed, root) == oldest);
  CHECK(names(pruned.kept, root) ==
        std::vector<std::string>{"blobs/sha256/new", "partial/new", "stages/disk-new"});
  for (const auto& name : oldest) CHECK_FALSE(fs::exists(root / name));

  // A budget the cache already fits removes nothing.
  auto again = prune_cache(root, {std::chrono::hours(24 * 365), newest_three});
  CHECK(again.removed.empty());
  CHECK(again.kept.size() == 3);

  auto bad_size = kiln::test::run_command(std::string(KILN_BINARY) +
                                          " cache prune --max-size 30X --cache " + root.string());
  CHECK(bad_size.exit_code == 2);
  CHECK_THAT(bad_size.output,
             Catch::Contains("--max-size '30X': expected a size like 30G or 512M"));
}

TEST_CASE("cache prune refuses while a kiln command is using the cache, and removes nothing") {
  kiln::test::TempDir dir;
  fs::path root = populated_cache(dir.path() / "cache");
  std::optional<kiln::Cache> running_build;
  running_build.emplace(root, false);
  CHECK_THROWS_WITH(prune_cache(root, {kTwoWeeks}),
                    "the cache " + root.string() +
                        " is in use by a running kiln command; prune it when that has finished");
  CHECK(fs::exists(root / "stages/base-old"));
  running_build.reset();
  CHECK_NOTHROW(prune_cache(root, {kTwoWeeks}));
}

TEST_CASE(
    "kiln cache refuses a folder that is not a cache and a malformed --unused-for, and finds "
    "nothing to prune where no cache was made yet") {
  kiln::test::TempDir dir;
  std::string kiln = KILN_BINARY;
  auto not_cache = kiln::test::run_command(kiln + " cache prune --cache " + dir.path().string());
  CHECK(not_cache.exit_code == 1);
  CHECK_THAT(not_cache.output, Catch::Contains(dir.path().string() +
                                               " is not a kiln cache (it has no stages/ folder)"));

  auto never_made = kiln::test::run_command(kiln + " cache prune --max-size 1G --cache " +
                                            (dir.path() / "no-cache-yet").string());
  CHECK(never_made.exit_code == 0);
  CHECK_THAT(never_made.output, Catch::Contains("removed 0 entries"));

  auto bad_window =
      kiln::test::run_command(kiln + " cache prune --unused-for 2w --cache " + dir.path().string());
  CHECK(bad_window.exit_code == 2);
  CHECK_THAT(bad_window.output,
             Catch::Contains("--unused-for '2w': expected a duration like 30m, 2h or 14d"));

  auto no_action = kiln::test::run_command(kiln + " cache");
  CHECK(no_action.exit_code == 2);
  CHECK_THAT(no_action.output, Catch::Contains("kiln cache needs one action: info or prune"));
}

TEST_CASE("kiln cache info --json counts each kind of entry in one JSON document") {
  kiln::test::TempDir dir;
  fs::path root = populated_cache(dir.path() / "cache");
  auto run = kiln::test::run_stdout(std::string(KILN_BINARY) + " cache info --json --cache " +
                                    root.string());
  REQUIRE(run.exit_code == 0);
  kiln::write_file_atomic(dir.path() / "info.json", run.output);
  CHECK(kiln::test::run_command("python3 -m json.tool " + (dir.path() / "info.json").string())
            .exit_code == 0);
  auto doc = nlohmann::json::parse(run.output);
  CHECK(doc["schemaVersion"] == 1);
  CHECK(doc["cache"] == root.string());
  std::map<std::string, nlohmann::json> kinds;
  for (const auto& kind : doc["kinds"]) kinds[kind["kind"]] = kind;
  REQUIRE(kinds.size() == 4);
  CHECK(kinds["stage output"]["entries"] == 2);
  CHECK(kinds["download"]["entries"] == 2);
  CHECK(kinds["package archive"]["entries"] == 1);
  CHECK(kinds["partial download"]["entries"] == 1);
  CHECK(kinds["download"]["bytes"].get<std::uint64_t>() >= 2 * 8192);
  CHECK(kinds["stage output"]["lastUsed"].is_string());
  CHECK(kinds["stage output"]["oldestUse"].is_string());
  CHECK(doc["total"]["entries"] == 6);
  CHECK(kiln::test::run_command(std::string(KILN_BINARY) + " cache prune --json --cache " +
                                root.string())
            .exit_code == 2);
}

TEST_CASE("sizes are read in binary units, and a malformed or overflowing one is refused") {
  using kiln::scan::parse_byte_size;
  CHECK(parse_byte_size("1073741824") == 1073741824u);
  CHECK(parse_byte_size("512M") == 512ull << 20);
  CHECK(parse_byte_size("24G") == 24ull << 30);
  CHECK(parse_byte_size("24GiB") == 24ull << 30);
  CHECK(parse_byte_size("2TB") == 2ull << 40);
  CHECK(parse_byte_size("16777215T") == 16777215ull << 40);
  CHECK_FALSE(parse_byte_size("16777216T"));  // 2^64
  CHECK_FALSE(parse_byte_size(""));
  CHECK_FALSE(parse_byte_size("G"));
  CHECK_FALSE(parse_byte_size("30X"));
  CHECK_FALSE(parse_byte_size("30GB "));
  CHECK_FALSE(parse_byte_size("-1G"));

  // Which of the two it was, for callers that word the errors apart.
  bool too_large = false;
  CHECK_FALSE(parse_byte_size("16777216T", &too_large));
  CHECK(too_large);
  CHECK_FALSE(parse_byte_size("30X", &too_large));
  CHECK_FALSE(too_large);
}
