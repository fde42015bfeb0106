#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace kiln {

/// Reads a whole file; throws kiln::Error naming the path on failure.
std::string read_file(const std::filesystem::path& path);

/// Writes through a temporary sibling, fsyncs, then renames: readers see the old file or the
/// complete new one, never a torn write. The mode applies to the final file.
void write_file_atomic(const std::filesystem::path& path, std::string_view content,
                       unsigned mode = 0644);

/// Copies a file to `to` atomically (temp + fsync + rename).
void copy_file_atomic(const std::filesystem::path& from, const std::filesystem::path& to);

/// A temporary path beside `path`, unique to this process and call.
std::filesystem::path temp_sibling(const std::filesystem::path& path);

/// Reads `size` bytes at `offset` of an existing file; throws naming the file when short.
std::string read_at(const std::filesystem::path& path, std::uint64_t offset, std::size_t size);

/// Writes `data` at `offset` into an existing file in place and fsyncs it.
void write_at(const std::filesystem::path& path, std::string_view data, std::uint64_t offset);

/// fsync a file or directory by path.
void fsync_path(const std::filesystem::path& path);

/// Removes a temporary file or tree unless released: cleanup on every error path.
class TempPath {
 public:
  explicit TempPath(std::filesystem::path path) : path_(std::move(path)) {}
  ~TempPath();
  TempPath(const TempPath&) = delete;
  TempPath& operator=(const TempPath&) = delete;
  const std::filesystem::path& path() const { return path_; }
  void release() { path_.clear(); }

 private:
  std::filesystem::path path_;
};

/// An exclusive advisory lock (flock) held for the object's lifetime; blocks until free.
class FileLock {
 public:
  explicit FileLock(const std::filesystem::path& lock_file);
  ~FileLock();
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

 private:
  int fd_ = -1;
};

}  // namespace kiln
