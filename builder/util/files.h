#pragma once

#include <sys/types.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>

namespace kiln {

/// Reads a whole file; throws kiln::Error naming the path on failure.
std::string read_file(const std::filesystem::path& path);

/// Reads at most the first `limit` bytes of a file (a header, or a file that may have grown
/// beyond what its reader accepts); throws kiln::Error naming the path on failure.
std::string read_file_prefix(const std::filesystem::path& path, std::size_t limit);

/// Appends one line to a log-like file kiln keeps for itself (an upload journal), creating it
/// (0600) and its folder, and syncs it before returning: a line that was appended survives a
/// crash. Throws kiln::Error naming the path.
void append_line_synced(const std::filesystem::path& path, std::string_view line);

/// Writes through a temporary sibling, fsyncs, then renames: readers see the old file or the
/// complete new one, never a torn write. The temporary is created exclusively (never through a
/// planted symlink) and 0600, so secrets are never exposed on the way; `mode` applies to the
/// final file.
void write_file_atomic(const std::filesystem::path& path, std::string_view content,
                       unsigned mode = 0644);

/// Copies a file to `to` atomically (exclusive temp + fsync + rename), keeping its mode.
void copy_file_atomic(const std::filesystem::path& from, const std::filesystem::path& to);

/// A temporary path beside `path` that nobody can predict (".NAME.tmp-PID-RANDOM"), so no one
/// can plant a symlink there in advance. Nothing is created: open it with O_CREAT|O_EXCL (or
/// AtomicFile), and hold it in a TempPath so that errors and signals remove it.
std::filesystem::path temp_sibling(const std::filesystem::path& path);

/// Reads `size` bytes at `offset` of an existing file; throws naming the file when short.
std::string read_at(const std::filesystem::path& path, std::uint64_t offset, std::size_t size);

/// Reads the whole file in pieces of at most 1 MiB, handing each to `piece` (checksums of
/// large images without holding them). A regular file's holes are handed over as zeros
/// without being read. Throws Error when the file cannot be read.
void for_each_piece(const std::filesystem::path& path,
                    const std::function<void(std::string_view piece)>& piece);

/// Writes `data` at `offset` into an existing file in place and fsyncs it.
void write_at(const std::filesystem::path& path, std::string_view data, std::uint64_t offset);

/// The positioned-write system call; tests substitute one that stops short.
using PwriteFunction = ssize_t (*)(int fd, const void* data, std::size_t size, off_t offset);

/// Writes all of `data` at `offset` of an open file: one pwrite moves at most 2 GiB - 4 KiB on
/// Linux and may stop short or be interrupted, so this loops. Throws naming `path`.
void pwrite_all(int fd, std::string_view data, std::uint64_t offset,
                const std::filesystem::path& path, PwriteFunction write = ::pwrite);

/// Reads exactly `size` bytes at `offset` of an open file, looping on short reads and EINTR.
/// False when the file ends first; throws naming `path` on a read error.
bool pread_all(int fd, void* data, std::size_t size, std::uint64_t offset,
               const std::filesystem::path& path);

/// fsync a file or directory by path.
void fsync_path(const std::filesystem::path& path);

// Temporary paths a signal handler removes (see builder/util/signals.h).
namespace temp_registry {

/// Records a temporary file or directory to be removed if a signal ends the process before it
/// is renamed into place or removed. Returns a handle for `remove`; -1 when the registry is
/// full or the path too long (the path is then only cleaned up on the normal paths).
int add(const std::filesystem::path& path);

/// Forgets a registration (the path was renamed into place or removed). -1 is ignored.
void remove(int handle);

/// Removes every registered path (trees too, best effort). Async-signal-safe: no allocation,
/// no locks, only unlinkat/openat/getdents64/close.
void remove_registered() noexcept;

/// How many paths are registered now (for tests and debugging; not async-signal-safe).
int registered_count();

}  // namespace temp_registry

/// Removes a temporary file or tree unless released: cleanup on every error path. Registered
/// with temp_registry meanwhile, so a signal that ends the process removes it too.
class TempPath {
 public:
  explicit TempPath(std::filesystem::path path);
  ~TempPath();
  TempPath(const TempPath&) = delete;
  TempPath& operator=(const TempPath&) = delete;
  const std::filesystem::path& path() const { return path_; }
  /// The path was renamed into place (or handed on): neither remove it nor keep it registered.
  void release();

 private:
  std::filesystem::path path_;
  int registration_ = -1;
};

/// A new file written beside its destination and renamed over it on commit(): created with
/// O_CREAT|O_EXCL|O_NOFOLLOW|O_CLOEXEC and mode 0600 under an unpredictable name, so neither a
/// planted symlink nor another user sees its content; removed (also on a signal) unless
/// committed.
class AtomicFile {
 public:
  explicit AtomicFile(const std::filesystem::path& destination);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  int fd() const { return fd_; }
  const std::filesystem::path& temp_path() const { return temp_.path(); }
  /// Sets `mode`, fsyncs, closes, renames over the destination and fsyncs its directory.
  void commit(unsigned mode);

 private:
  std::filesystem::path destination_;
  TempPath temp_;
  int fd_ = -1;
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
