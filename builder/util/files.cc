#include "builder/util/files.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>

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

fs::path temp_sibling(const fs::path& path) {
  static std::atomic<unsigned> counter{0};
  return path.parent_path() / ("." + path.filename().string() + ".tmp-" +
                               std::to_string(::getpid()) + "-" + std::to_string(counter++));
}

std::string read_at(const fs::path& path, std::uint64_t offset, std::size_t size) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error("cannot open " + path.string() + ": " + errno_text());
  std::string data(size, '\0');
  ssize_t got = ::pread(fd, data.data(), size, offset);
  ::close(fd);
  if (got != static_cast<ssize_t>(size))
    throw Error("cannot read " + std::to_string(size) + " bytes at " + std::to_string(offset) +
                " of " + path.string());
  return data;
}

void write_at(const fs::path& path, std::string_view data, std::uint64_t offset) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) throw Error("cannot open " + path.string() + " for writing: " + errno_text());
  bool ok = ::pwrite(fd, data.data(), data.size(), offset) == static_cast<ssize_t>(data.size()) &&
            ::fsync(fd) == 0;
  std::string why = errno_text();
  ::close(fd);
  if (!ok) throw Error("cannot write " + path.string() + ": " + why);
}

void fsync_path(const fs::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

void write_file_atomic(const fs::path& path, std::string_view content, unsigned mode) {
  if (!path.parent_path().empty()) fs::create_directories(path.parent_path());
  TempPath temp(temp_sibling(path));
  int fd = ::open(temp.path().c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) throw Error("cannot create " + temp.path().string() + ": " + errno_text());
  try {
    write_all(fd, content, temp.path());
    if (::fchmod(fd, mode) != 0 || ::fsync(fd) != 0) {
      throw Error("cannot finish " + temp.path().string() + ": " + errno_text());
    }
  } catch (...) {
    ::close(fd);
    throw;
  }
  ::close(fd);
  if (::rename(temp.path().c_str(), path.c_str()) != 0) {
    throw Error("cannot rename into " + path.string() + ": " + errno_text());
  }
  temp.release();
  fsync_path(path.parent_path().empty() ? fs::path(".") : path.parent_path());
}

void copy_file_atomic(const fs::path& from, const fs::path& to) {
  if (!to.parent_path().empty()) fs::create_directories(to.parent_path());
  TempPath temp(temp_sibling(to));
  std::error_code ec;
  fs::copy_file(from, temp.path(), fs::copy_options::overwrite_existing, ec);
  if (ec) throw Error("cannot copy " + from.string() + " to " + to.string() + ": " + ec.message());
  fsync_path(temp.path());
  fs::rename(temp.path(), to, ec);
  if (ec) throw Error("cannot rename into " + to.string() + ": " + ec.message());
  temp.release();
  fsync_path(to.parent_path());
}

TempPath::~TempPath() {
  if (path_.empty()) return;
  std::error_code ec;
  fs::remove_all(path_, ec);
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
