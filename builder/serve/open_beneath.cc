#include "builder/serve/open_beneath.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdlib>

namespace kiln {
namespace {

// O_NONBLOCK: a FIFO planted in the folder must not hang the connection in open(); it has no
// effect on reads of regular files.
constexpr int kOpenFlags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;

int openat2_beneath(const std::filesystem::path& folder, const std::string& relative) {
  int folder_fd = ::open(folder.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (folder_fd < 0) return -errno;
  open_how how{};
  how.flags = kOpenFlags;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
  // glibc 2.36 has no openat2() wrapper yet.
  int fd = int(::syscall(SYS_openat2, folder_fd, relative.empty() ? "." : relative.c_str(), &how,
                         sizeof how));
  int error = errno;
  ::close(folder_fd);
  return fd < 0 ? -error : fd;
}

std::string real_path(const std::filesystem::path& path) {
  char resolved[PATH_MAX];
  return ::realpath(path.c_str(), resolved) ? resolved : "";
}

}  // namespace

int open_beneath(const std::filesystem::path& folder, const std::string& relative) {
  // Kernels before 5.6, and seccomp filters that do not know the call, answer ENOSYS or EPERM.
  static std::atomic<bool> openat2_works{true};
  if (openat2_works) {
    int fd = openat2_beneath(folder, relative);
    if (fd != -ENOSYS && fd != -EPERM) return fd;
    openat2_works = false;
  }
  return open_beneath_by_realpath(folder, relative);
}

int open_beneath_by_realpath(const std::filesystem::path& folder, const std::string& relative) {
  std::string real_folder = real_path(folder);
  if (real_folder.empty()) return -errno;
  std::string inside = real_path(relative.empty() ? folder : folder / relative);
  if (inside.empty()) return -errno;
  bool beneath =
      inside == real_folder || (inside.compare(0, real_folder.size(), real_folder) == 0 &&
                                (real_folder == "/" || inside[real_folder.size()] == '/'));
  if (!beneath) return -EXDEV;
  int fd = ::open(inside.c_str(), kOpenFlags | O_NOFOLLOW);
  return fd < 0 ? -errno : fd;
}

}  // namespace kiln
