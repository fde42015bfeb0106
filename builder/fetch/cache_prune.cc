#include "builder/fetch/cache_prune.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "builder/fetch/cache.h"
#include "builder/util/error.h"

namespace kiln {
namespace fs = std::filesystem;

namespace {

std::chrono::system_clock::time_point modified(const struct stat& st) {
  return std::chrono::system_clock::time_point(std::chrono::seconds(st.st_mtim.tv_sec));
}

/// Allocated bytes under `path`, and its own modification time (the mark of last use).
CacheEntry measure(const fs::path& path, const std::string& kind) {
  CacheEntry entry{path, kind, 0, {}};
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return entry;
  entry.last_used = modified(st);
  entry.bytes = std::uint64_t(st.st_blocks) * 512;
  if (S_ISDIR(st.st_mode)) {
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(path, ec); !ec && it != fs::end(it);
         it.increment(ec)) {
      struct stat child {};
      if (::lstat(it->path().c_str(), &child) == 0)
        entry.bytes += std::uint64_t(child.st_blocks) * 512;
    }
  }
  return entry;
}

void add_children(std::vector<CacheEntry>& out, const fs::path& dir, const std::string& kind,
                  bool files_only) {
  std::error_code ec;
  for (const auto& child : fs::directory_iterator(dir, ec)) {
    // With the cache locked, a half-published ".name.tmp-…" is an interrupted build's
    // leftover and goes by its age like the rest.
    if (files_only && !child.is_regular_file()) continue;
    out.push_back(measure(child.path(), kind));
  }
}

/// Holds the cache's lock exclusively, or throws when a build holds it shared.
class ExclusiveCacheLock {
 public:
  explicit ExclusiveCacheLock(const fs::path& root) {
    fs::path file = cache_use_lock_path(root);
    fs::create_directories(file.parent_path());
    fd_ = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) throw Error("cannot open " + file.string() + ": " + std::strerror(errno));
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      ::close(fd_);
      throw Error("the cache " + root.string() +
                  " is in use by a running kiln command; prune it when that has finished");
    }
  }
  ~ExclusiveCacheLock() { ::close(fd_); }
  ExclusiveCacheLock(const ExclusiveCacheLock&) = delete;
  ExclusiveCacheLock& operator=(const ExclusiveCacheLock&) = delete;

 private:
  int fd_ = -1;
};

}  // namespace

std::vector<CacheEntry> list_cache_entries(const fs::path& root) {
  std::vector<CacheEntry> entries;
  add_children(entries, root / "stages", "stage output", false);
  add_children(entries, root / "blobs/sha256", "download", true);
  add_children(entries, root / "apt-archives", "package archive", true);
  add_children(entries, root / "partial", "partial download", true);
  std::sort(entries.begin(), entries.end(), [](const CacheEntry& a, const CacheEntry& b) {
    return a.last_used != b.last_used ? a.last_used < b.last_used : a.path < b.path;
  });
  return entries;
}

PruneResult prune_cache(const fs::path& root, const PruneRules& rules) {
  // A cache no build has made yet has nothing to prune; a folder that is not one is refused.
  if (!fs::exists(root)) return {};
  if (!fs::is_directory(root / "stages"))
    throw Error(root.string() + " is not a kiln cache (it has no stages/ folder)");
  ExclusiveCacheLock lock(root);
  const auto cutoff = std::chrono::system_clock::now() - rules.unused_for;
  auto entries = list_cache_entries(root);  // least recently used first
  std::uint64_t kept_bytes = 0;
  for (const auto& entry : entries)
    if (entry.last_used >= cutoff) kept_bytes += entry.bytes;
  PruneResult result;
  int removed = 0;
  for (auto& entry : entries) {
    bool stale = entry.last_used < cutoff;
    bool over_budget = !stale && rules.max_bytes && kept_bytes > *rules.max_bytes;
    if (!stale && !over_budget) {
      result.kept.push_back(std::move(entry));
      continue;
    }
    if (over_budget) kept_bytes -= entry.bytes;
    if (!rules.dry_run) {
      // Out of sight in one rename; deleting the contents may take a while.
      fs::path doomed = root / "scratch" /
                        ("pruned" + std::to_string(removed++) + "-" + std::to_string(::getpid()));
      fs::create_directories(doomed.parent_path());
      fs::rename(entry.path, doomed);
      fs::remove_all(doomed);
    }
    result.removed.push_back(std::move(entry));
  }
  return result;
}

}  // namespace kiln
