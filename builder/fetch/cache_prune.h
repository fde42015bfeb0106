#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace kiln {

/// One removable thing in the cache: a stage output, a download, a package archive or a
/// partial download.
struct CacheEntry {
  std::filesystem::path path;
  std::string kind;         ///< "stage output", "download", "package archive", "partial download"
  std::uint64_t bytes = 0;  ///< space it takes on disk (sparse images count what they use)
  std::chrono::system_clock::time_point last_used;
};

/// Every removable entry of the cache at `root`, oldest use first. Builds mark an entry used
/// whenever they take it from the cache.
std::vector<CacheEntry> list_cache_entries(const std::filesystem::path& root);

struct PruneResult {
  std::vector<CacheEntry> removed;  ///< or, on a dry run, those that would be
  std::vector<CacheEntry> kept;
};

struct PruneRules {
  std::chrono::seconds unused_for;  ///< remove what no build has used for this long
  /// Then, when what is left takes more than this, remove the least recently used until it
  /// fits (CI runners and laptops with a disk budget).
  std::optional<std::uint64_t> max_bytes;
  bool dry_run = false;
};

/// Removes the entries `rules` select. Takes the cache's exclusive lock first, so it never
/// removes what a running build may still read: with a build running it throws kiln::Error
/// saying so. Each entry is moved into scratch/ before it is deleted, so an interrupted prune
/// leaves no half-removed entry (the next kiln run clears scratch/).
/// A `root` that does not exist yet is an empty cache: nothing is removed.
PruneResult prune_cache(const std::filesystem::path& root, const PruneRules& rules);

}  // namespace kiln
