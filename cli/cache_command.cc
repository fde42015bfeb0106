// kiln cache info | prune: what the build cache holds, and removing what no build has used
// for a while. Stage outputs are a few GiB each and every recipe change adds new ones.
#include <fmt/format.h>

#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>

#include "builder/fetch/cache.h"
#include "builder/fetch/cache_prune.h"
#include "builder/util/log.h"
#include "builder/util/scan.h"
#include "builder/util/time.h"
#include "cli/commands.h"
#include "cli/options.h"

namespace kiln::cli {
namespace {
namespace fs = std::filesystem;

const std::vector<Flag> kCacheFlags = {
    {"--cache", "DIR",
     "the cache (default $KILN_CACHE, else $XDG_CACHE_HOME/kiln or ~/.cache/kiln)"},
    {"--unused-for", "DURATION",
     "prune: remove what no build has used for this long, e.g. 12h, 14d (default 14d)"},
    {"--max-size", "SIZE",
     "prune: then remove the least recently used until the cache takes at most SIZE, e.g. 30G"},
    {"--dry-run", "", "prune: list what would be removed and remove nothing"},
    {"--json", "", "info: print one JSON document"},
};

constexpr const char* kCacheHelp =
    "info    shows how much each kind of entry takes\n"
    "prune   removes stage outputs, downloads and package archives that no build has used\n"
    "        for --unused-for, then, with --max-size, the least recently used until the rest\n"
    "        fits; refuses while a kiln command is using the cache. A pruned entry is made\n"
    "        again (downloaded or rebuilt) when a build needs it.";

std::string age(std::chrono::system_clock::time_point when) {
  auto minutes =
      std::chrono::duration_cast<std::chrono::minutes>(std::chrono::system_clock::now() - when)
          .count();
  if (minutes < 60) return fmt::format("{} min ago", std::max<long long>(minutes, 0));
  if (minutes < 48 * 60) return fmt::format("{} h ago", minutes / 60);
  return fmt::format("{} days ago", minutes / (24 * 60));
}

std::uint64_t total_bytes(const std::vector<CacheEntry>& entries) {
  std::uint64_t total = 0;
  for (const auto& entry : entries) total += entry.bytes;
  return total;
}

constexpr const char* kKinds[] = {"stage output", "download", "package archive",
                                  "partial download"};

std::string utc(std::chrono::system_clock::time_point when) {
  return format_utc(
      std::chrono::duration_cast<std::chrono::seconds>(when.time_since_epoch()).count());
}

/// `kiln cache info --json`: entries and bytes per kind, and when each kind was last used.
ExitCode show_info_json(const fs::path& root) {
  using nlohmann::json;
  std::vector<CacheEntry> entries;
  if (fs::is_directory(root / "stages")) entries = list_cache_entries(root);
  std::map<std::string, std::vector<CacheEntry>> by_kind;
  for (const auto& entry : entries) by_kind[entry.kind].push_back(entry);
  json kinds = json::array();
  for (const char* kind : kKinds) {
    const auto& group = by_kind[kind];
    kinds.push_back(
        {{"kind", kind},
         {"entries", group.size()},
         {"bytes", total_bytes(group)},
         {"lastUsed", group.empty() ? json(nullptr) : json(utc(group.back().last_used))},
         {"oldestUse", group.empty() ? json(nullptr) : json(utc(group.front().last_used))}});
  }
  json doc = {{"schemaVersion", 1},
              {"cache", root.string()},
              {"kinds", kinds},
              {"total", {{"entries", entries.size()}, {"bytes", total_bytes(entries)}}}};
  std::fputs((doc.dump(2) + "\n").c_str(), stdout);
  return ExitCode::ok;
}

ExitCode show_info(const fs::path& root) {
  if (!fs::is_directory(root / "stages")) {
    std::printf("kiln cache at %s: empty (no build has used it)\n", root.c_str());
    return ExitCode::ok;
  }
  auto entries = list_cache_entries(root);
  std::map<std::string, std::vector<CacheEntry>> by_kind;
  for (const auto& entry : entries) by_kind[entry.kind].push_back(entry);
  std::printf("kiln cache at %s\n", root.c_str());
  for (const char* kind : kKinds) {
    const auto& group = by_kind[kind];
    std::string used = group.empty() ? ""
                                     : "  last used " + age(group.back().last_used) + ", oldest " +
                                           age(group.front().last_used);
    std::printf("  %-18s %5zu  %10s%s\n", (std::string(kind) + "s").c_str(), group.size(),
                log::human_bytes(double(total_bytes(group))).c_str(), used.c_str());
  }
  std::printf("  %-18s %5zu  %10s\n", "total", entries.size(),
              log::human_bytes(double(total_bytes(entries))).c_str());
  return ExitCode::ok;
}

ExitCode prune(const fs::path& root, const ParsedArgs& parsed) {
  std::string window = parsed.get("unused-for", "14d");
  PruneRules rules{std::chrono::seconds(parse_duration("--unused-for", window)), std::nullopt,
                   parsed.has("dry-run")};
  if (parsed.has("max-size")) {
    std::string text = parsed.get("max-size");
    rules.max_bytes = scan::parse_byte_size(text);
    if (!rules.max_bytes)
      throw UsageError("--max-size '" + text + "': expected a size like 30G or 512M");
  }
  PruneResult result = prune_cache(root, rules);
  for (const auto& entry : result.removed) {
    std::printf("%s %s (%s, %s, last used %s)\n", rules.dry_run ? "would remove" : "removed",
                fs::relative(entry.path, root).c_str(), entry.kind.c_str(),
                log::human_bytes(double(entry.bytes)).c_str(), age(entry.last_used).c_str());
  }
  std::string kept_because = "used within " + window;
  if (rules.max_bytes) kept_because += ", within " + log::human_bytes(double(*rules.max_bytes));
  std::printf("kiln: %s %zu entries (%s); kept %zu (%s) %s\n",
              rules.dry_run ? "would remove" : "removed", result.removed.size(),
              log::human_bytes(double(total_bytes(result.removed))).c_str(), result.kept.size(),
              log::human_bytes(double(total_bytes(result.kept))).c_str(), kept_because.c_str());
  return ExitCode::ok;
}

}  // namespace

ExitCode run_cache(const std::vector<std::string>& args) {
  ParsedArgs parsed = parse_args(args, kCacheFlags);
  if (parsed.help) {
    std::fputs(render_help("kiln cache info|prune [options]", kCacheHelp, kCacheFlags).c_str(),
               stdout);
    return ExitCode::ok;
  }
  if (parsed.positional.size() != 1 ||
      (parsed.positional[0] != "info" && parsed.positional[0] != "prune"))
    throw UsageError("kiln cache needs one action: info or prune");
  fs::path root = parsed.has("cache") ? fs::path(parsed.get("cache")) : default_cache_dir();
  if (parsed.positional[0] == "info") {
    if (parsed.has("unused-for") || parsed.has("max-size") || parsed.has("dry-run"))
      throw UsageError("--unused-for, --max-size and --dry-run go with prune, not info");
    return parsed.has("json") ? show_info_json(root) : show_info(root);
  }
  if (parsed.has("json")) throw UsageError("--json goes with info, not prune");
  return prune(root, parsed);
}

}  // namespace kiln::cli
