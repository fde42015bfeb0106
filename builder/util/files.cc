#include "builder/util/files.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <memory>

#include "builder/util/error.h"
#include "builder/util/log.h"

namespace kiln {
namespace fs = std::filesystem;

namespace {
std::string errno_text() {
  return std::strerror(errno);
}

void write_all(int fd, std::string_view data, const fs::path& path) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw Error("cannot write " + path.string() + ": " + errno_text());
    data.remove_prefix(n);
  }
}
}  // namespace

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot read " + path.string() + ": " + errno_text());
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::string read_file_prefix(const fs::path& path, std::size_t limit) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot read " + path.string() + ": " + errno_text());
  std::string out(limit, '\0');
  in.read(out.data(), std::streamsize(limit));
  out.resize(std::size_t(in.gcount()));
  return out;
}

void append_line_synced(const fs::path& path, std::string_view line) {
  fs::create_directories(path.parent_path());
  int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) throw Error("cannot write " + path.string() + ": " + errno_text());
  std::string text = std::string(line) + "\n";
  bool ok = ::write(fd, text.data(), text.size()) == ssize_t(text.size()) && ::fdatasync(fd) == 0;
  std::string why = ok ? "" : errno_text();
  ::close(fd);
  if (!ok) throw Error("cannot write " + path.string() + ": " + why);
}

fs::path temp_sibling(const fs::path& path) {
  std::uint64_t random[2] = {};
  if (::getrandom(random, sizeof random, 0) != sizeof random) {
    // No entropy source (a very early boot): still unique to this process and call.
    static std::atomic<std::uint64_t> counter{0};
    random[0] = counter++ ^ static_cast<std::uint64_t>(::time(nullptr)) << 20;
  }
  char suffix[40];
  std::snprintf(suffix, sizeof suffix, "%016llx%016llx", static_cast<unsigned long long>(random[0]),
                static_cast<unsigned long long>(random[1]));
  return path.parent_path() /
         ("." + path.filename().string() + ".tmp-" + std::to_string(::getpid()) + "-" + suffix);
}

void pwrite_all(int fd, std::string_view data, std::uint64_t offset, const fs::path& path,
                PwriteFunction write) {
  while (!data.empty()) {
    ssize_t n = write(fd, data.data(), data.size(), static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw Error("cannot write " + path.string() + ": " + errno_text());
    if (n == 0) throw Error("cannot write " + path.string() + ": no progress (device full?)");
    data.remove_prefix(static_cast<std::size_t>(n));
    offset += static_cast<std::uint64_t>(n);
  }
}

bool pread_all(int fd, void* data, std::size_t size, std::uint64_t offset, const fs::path& path) {
  auto* at = static_cast<char*>(data);
  while (size > 0) {
    ssize_t n = ::pread(fd, at, size, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw Error("cannot read " + path.string() + ": " + errno_text());
    if (n == 0) return false;
    at += n;
    size -= static_cast<std::size_t>(n);
    offset += static_cast<std::uint64_t>(n);
  }
  return true;
}

void for_each_piece(const std::filesystem::path& path,
                    const std::function<void(std::string_view piece)>& piece) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error("cannot read " + path.string() + ": " + errno_text());
  std::unique_ptr<int, void (*)(int*)> closer(&fd, [](int* open_fd) { ::close(*open_fd); });
  struct stat st {};
  if (::fstat(fd, &st) != 0) throw Error("cannot read " + path.string() + ": " + errno_text());
  std::string buffer(1 << 20, '\0');
  if (!S_ISREG(st.st_mode)) {  // a device or a pipe: no size to trust, no holes to skip
    for (;;) {
      ssize_t got = ::read(fd, buffer.data(), buffer.size());
      if (got < 0 && errno == EINTR) continue;
      if (got < 0) throw Error("cannot read " + path.string() + ": " + errno_text());
      if (got == 0) return;
      piece(std::string_view(buffer.data(), std::size_t(got)));
    }
  }

  // A disk image is mostly holes. Reading one makes the kernel fill page after page with
  // zeros (a 3 GiB image took 7 s); handing out the same zeros from memory takes none of that.
  static const std::string zeros(1 << 20, '\0');
  const off_t size = st.st_size;
  off_t position = 0;
  while (position < size) {
    off_t data = ::lseek(fd, position, SEEK_DATA);
    if (data < 0 && errno == ENXIO) data = size;       // only a hole remains
    if (data < 0 && errno == EINVAL) data = position;  // no hole support: read it all
    if (data < 0) throw Error("cannot read " + path.string() + ": " + errno_text());
    for (off_t left = data - position; left > 0;) {
      std::size_t n = std::size_t(std::min<off_t>(left, off_t(zeros.size())));
      piece(std::string_view(zeros.data(), n));
      left -= off_t(n);
    }
    off_t hole = data < size ? ::lseek(fd, data, SEEK_HOLE) : size;
    if (hole < 0 || hole > size) hole = size;
    for (off_t at = data; at < hole;) {
      std::size_t n = std::size_t(std::min<off_t>(hole - at, off_t(buffer.size())));
      if (!pread_all(fd, buffer.data(), n, std::uint64_t(at), path))
        throw Error(path.string() + " shrank while it was being read");
      piece(std::string_view(buffer.data(), n));
      at += off_t(n);
    }
    position = hole;
  }
}

std::string read_at(const fs::path& path, std::uint64_t offset, std::size_t size) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error("cannot open " + path.string() + ": " + errno_text());
  struct CloseFd {
    int fd;
    ~CloseFd() { ::close(fd); }
  } close_fd{fd};
  std::string data(size, '\0');
  if (!pread_all(fd, data.data(), size, offset, path))
    throw Error("cannot read " + std::to_string(size) + " bytes at " + std::to_string(offset) +
                " of " + path.string() + ": the file ends first");
  return data;
}

void write_at(const fs::path& path, std::string_view data, std::uint64_t offset) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) throw Error("cannot open " + path.string() + " for writing: " + errno_text());
  struct CloseFd {
    int fd;
    ~CloseFd() { ::close(fd); }
  } close_fd{fd};
  pwrite_all(fd, data, offset, path);
  if (::fsync(fd) != 0) throw Error("cannot write " + path.string() + ": " + errno_text());
}

void fsync_path(const fs::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

AtomicFile::AtomicFile(const fs::path& destination)
    : destination_(destination), temp_(temp_sibling(destination)) {
  fd_ = ::open(temp_.path().c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd_ < 0) {
    std::string why = errno_text();
    temp_.release();  // not ours: never remove what someone else created there
    throw Error("cannot create " + temp_.path().string() + ": " + why);
  }
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
}

void AtomicFile::commit(unsigned mode) {
  if (::fchmod(fd_, mode) != 0 || ::fsync(fd_) != 0)
    throw Error("cannot finish " + temp_.path().string() + ": " + errno_text());
  int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) throw Error("cannot finish " + temp_.path().string() + ": " + errno_text());
  if (::rename(temp_.path().c_str(), destination_.c_str()) != 0)
    throw Error("cannot rename into " + destination_.string() + ": " + errno_text());
  temp_.release();
  fsync_path(destination_.parent_path().empty() ? fs::path(".") : destination_.parent_path());
}

void write_file_atomic(const fs::path& path, std::string_view content, unsigned mode) {
  if (!path.parent_path().empty()) fs::create_directories(path.parent_path());
  AtomicFile file(path);
  write_all(file.fd(), content, file.temp_path());
  file.commit(mode);
}

void copy_file_atomic(const fs::path& from, const fs::path& to) {
  if (!to.parent_path().empty()) fs::create_directories(to.parent_path());
  int in = ::open(from.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) throw Error("cannot copy " + from.string() + ": " + errno_text());
  struct CloseFd {
    int fd;
    ~CloseFd() { ::close(fd); }
  } close_in{in};
  struct stat st {};
  if (::fstat(in, &st) != 0) throw Error("cannot copy " + from.string() + ": " + errno_text());
  AtomicFile file(to);
  for (;;) {
    // copy_file_range shares extents where the file system can (reflinks), else copies in
    // the kernel; plain read/write where it is not supported across these file systems.
    ssize_t n = ::copy_file_range(in, nullptr, file.fd(), nullptr, 1 << 30, 0);
    if (n > 0) continue;
    if (n == 0) break;
    if (errno == EINTR) continue;
    if (errno != EXDEV && errno != ENOSYS && errno != EINVAL && errno != EOPNOTSUPP)
      throw Error("cannot copy " + from.string() + " to " + to.string() + ": " + errno_text());
    char buffer[1 << 16];
    for (;;) {
      ssize_t got = ::read(in, buffer, sizeof buffer);
      if (got < 0 && errno == EINTR) continue;
      if (got < 0) throw Error("cannot read " + from.string() + ": " + errno_text());
      if (got == 0) break;
      write_all(file.fd(), std::string_view(buffer, got), file.temp_path());
    }
    break;
  }
  file.commit(st.st_mode & 07777);
}

namespace temp_registry {
namespace {

// A fixed table, so that a signal handler can walk it without allocating or locking. A slot
// is free, being filled, or ready; the handler reads only ready slots.
enum State : int { kFree = 0, kFilling = 1, kReady = 2 };

struct Slot {
  std::atomic<int> state{kFree};
  char path[PATH_MAX];
};

constexpr int kSlots = 256;
Slot slots[kSlots];

// Deep enough for a root file system tree; each level holds one directory buffer on the stack.
constexpr int kMaxDepth = 48;

/// Removes `name` under `parent` and, when it is a directory, everything in it that is on the
/// same file system: a mount left inside a temporary tree (a chroot's /proc or /dev) is never
/// descended into.
void remove_tree_at(int parent, const char* name, int depth, dev_t device) noexcept {
  if (::unlinkat(parent, name, 0) == 0 || errno == ENOENT) return;
  if (errno != EISDIR || depth > kMaxDepth) return;
  int dir = ::openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dir < 0) return;
  struct stat st {};
  if (::fstat(dir, &st) != 0 || (depth > 0 && st.st_dev != device)) {
    ::close(dir);
    return;
  }
  device = st.st_dev;
  // Entries removed while reading can make the directory stream skip others: read again from
  // the start until a pass finds nothing left to remove.
  for (bool removed_any = true; removed_any;) {
    removed_any = false;
    ::lseek(dir, 0, SEEK_SET);
    alignas(struct dirent64) char buffer[2048];
    for (;;) {
      ssize_t n = ::getdents64(dir, buffer, sizeof buffer);
      if (n <= 0) break;
      for (ssize_t at = 0; at < n;) {
        const auto* entry = reinterpret_cast<const struct dirent64*>(buffer + at);
        at += entry->d_reclen;
        const char* child = entry->d_name;
        if (std::strcmp(child, ".") == 0 || std::strcmp(child, "..") == 0) continue;
        remove_tree_at(dir, child, depth + 1, device);
        removed_any = true;
      }
    }
    if (::unlinkat(parent, name, AT_REMOVEDIR) == 0) break;
    if (errno != ENOTEMPTY && errno != EEXIST) break;
  }
  ::close(dir);
  ::unlinkat(parent, name, AT_REMOVEDIR);
}

}  // namespace

int add(const std::filesystem::path& path) {
  std::error_code ec;
  std::string absolute = std::filesystem::absolute(path, ec).string();
  if (ec || absolute.empty() || absolute.size() >= PATH_MAX) return -1;
  for (int i = 0; i < kSlots; ++i) {
    int expected = kFree;
    if (!slots[i].state.compare_exchange_strong(expected, kFilling, std::memory_order_acquire))
      continue;
    std::memcpy(slots[i].path, absolute.c_str(), absolute.size() + 1);
    slots[i].state.store(kReady, std::memory_order_release);
    return i;
  }
  return -1;
}

void remove(int handle) {
  if (handle < 0 || handle >= kSlots) return;
  slots[handle].state.store(kFree, std::memory_order_release);
}

void remove_registered() noexcept {
  int saved_errno = errno;
  for (auto& slot : slots) {
    if (slot.state.load(std::memory_order_acquire) != kReady) continue;
    remove_tree_at(AT_FDCWD, slot.path, 0, 0);
  }
  errno = saved_errno;
}

int registered_count() {
  int count = 0;
  for (const auto& slot : slots) count += slot.state.load() == kReady;
  return count;
}

}  // namespace temp_registry

TempPath::TempPath(fs::path path) : path_(std::move(path)) {
  if (!path_.empty()) registration_ = temp_registry::add(path_);
}

void TempPath::release() {
  temp_registry::remove(registration_);
  registration_ = -1;
  path_.clear();
}

TempPath::~TempPath() {
  if (path_.empty()) return;
  std::error_code ec;
  fs::remove_all(path_, ec);
  temp_registry::remove(registration_);
}

FileLock::FileLock(const fs::path& lock_file) {
  fs::create_directories(lock_file.parent_path());
  fd_ = ::open(lock_file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) throw Error("cannot open lock " + lock_file.string() + ": " + errno_text());
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    log::info("waiting for another kiln process holding {}", lock_file.string());
    while (::flock(fd_, LOCK_EX) != 0 && errno == EINTR) {
    }
  }
}

FileLock::~FileLock() {
  if (fd_ >= 0) ::close(fd_);
}

}  // namespace kiln
