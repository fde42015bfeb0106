#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include "builder/util/files.h"

namespace kiln {

/// The default cache: $KILN_CACHE, else $XDG_CACHE_HOME/kiln, else ~/.cache/kiln.
std::filesystem::path default_cache_dir();

/// The lock every kiln process using the cache at `root` holds shared, and `kiln cache
/// prune` exclusively.
std::filesystem::path cache_use_lock_path(const std::filesystem::path& root);

/// Content-addressed store of downloads (blobs/sha256/<hex>) plus the stage outputs of
/// builds (stages/<name>-<key>). Entries appear only complete and verified (rename into
/// place); partial downloads live under partial/ and are resumed. Safe for concurrent builds.
class Cache {
 public:
  /// Holds the cache's use lock (shared) until destroyed, so a prune never removes what this
  /// process may still read.
  Cache(std::filesystem::path root, bool offline);
  ~Cache();
  Cache(const Cache&) = delete;
  Cache& operator=(const Cache&) = delete;

  const std::filesystem::path& root() const { return root_; }
  bool offline() const { return offline_; }

  /// The verified blob for `url`, downloading (or copying from a local mirror path) when
  /// missing. A digest mismatch is an Error naming the URL and both digests.
  std::filesystem::path fetch(const std::string& url, const std::string& sha256,
                              const std::string& label);

  /// Fetches a published checksum file (`<url>.sha256`) and returns its digest; remembered
  /// so that --offline builds can use it later.
  std::string fetch_published_digest(const std::string& sha256_url);

  /// The blob path for a digest whether or not it exists.
  std::filesystem::path blob_path(const std::string& sha256) const;

  /// Directory for a cached stage output; complete when it exists.
  std::filesystem::path stage_path(const std::string& stage, const std::string& key) const;
  /// Records that a build took `entry` (a stage output or blob) from the cache: its
  /// modification time is what `kiln cache prune --unused-for` goes by.
  void mark_used(const std::filesystem::path& entry) const;
  /// A lock file serialising producers of one stage output.
  std::filesystem::path lock_path(const std::string& name) const;
  /// Moves a finished scratch directory into place as a stage output (replacing any older
  /// one); the scratch path is released from its cleanup guard.
  void publish_stage(TempPath& scratch, const std::filesystem::path& stage);

  /// A scratch directory inside the cache's file system, so renames into place are atomic.
  std::filesystem::path scratch_path(const std::string& name) const;

 private:
  void remove_abandoned_scratch();

  std::filesystem::path root_;
  bool offline_;
  int use_lock_ = -1;
};

/// One stage's output in the cache, opened under the stage's lock (held until destroyed) so
/// that concurrent builds produce it once. Either reuse() it, or make it in scratch() and
/// publish() it.
class StageEntry {
 public:
  /// `stage` names it ("base", "rootfs" ...) in paths and the log; `key` is its cache key.
  /// With `rebuild`, a cached output is never reused.
  StageEntry(Cache& cache, std::string stage, const std::string& key, bool rebuild);
  StageEntry(const StageEntry&) = delete;
  StageEntry& operator=(const StageEntry&) = delete;

  /// True when the complete output is cached and may be used: logs so and marks it used.
  bool reuse();
  /// The output directory (complete once reused or published).
  const std::filesystem::path& path() const { return path_; }
  /// A fresh, empty directory in the cache to make the output in; removed unless published.
  const std::filesystem::path& scratch();
  /// Moves the scratch directory into place as the output.
  void publish();

 private:
  Cache& cache_;
  std::string stage_;
  std::filesystem::path path_;
  bool rebuild_;
  FileLock lock_;
  std::optional<TempPath> scratch_;
};

}  // namespace kiln
