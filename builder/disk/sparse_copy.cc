#include "builder/disk/sparse_copy.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include "builder/util/error.h"
#include "builder/util/files.h"

namespace kiln {
namespace fs = std::filesystem;

namespace {

class Fd {
 public:
  Fd(const fs::path& path, int flags, unsigned mode = 0644)
      : fd_(::open(path.c_str(), flags, mode)) {
    if (fd_ < 0) throw Error("cannot open " + path.string() + ": " + std::strerror(errno));
  }
  ~Fd() { ::close(fd_); }
  int get() const { return fd_; }

 private:
  int fd_;
};

void copy_data(int in, int out, std::uint64_t offset, const fs::path& source) {
  off_t end = ::lseek(in, 0, SEEK_END);
  off_t position = 0;
  while (position < end) {
    off_t data = ::lseek(in, position, SEEK_DATA);
    if (data < 0) break;  // only a hole remains
    off_t hole = ::lseek(in, data, SEEK_HOLE);
    if (hole < 0) hole = end;
    loff_t from = data, to = offset + data;
    std::size_t left = hole - data;
    while (left > 0) {
      ssize_t n = ::copy_file_range(in, &from, out, &to, left, 0);
      if (n <= 0) throw Error("cannot copy " + source.string() + ": " + std::strerror(errno));
      left -= n;
    }
    position = hole;
  }
}

}  // namespace

void copy_into(const fs::path& source, const fs::path& destination, std::uint64_t offset) {
  Fd in(source, O_RDONLY), out(destination, O_WRONLY);
  copy_data(in.get(), out.get(), offset, source);
}

void copy_sparse_atomic(const fs::path& source, const fs::path& destination) {
  fs::path temp = temp_sibling(destination);
  TempPath cleanup(temp);
  {
    Fd in(source, O_RDONLY), out(temp, O_WRONLY | O_CREAT | O_TRUNC);
    if (::ftruncate(out.get(), fs::file_size(source)) != 0)
      throw Error("cannot size " + temp.string() + ": " + std::strerror(errno));
    copy_data(in.get(), out.get(), 0, source);
    if (::fsync(out.get()) != 0) throw Error("cannot fsync " + temp.string());
  }
  fs::rename(temp, destination);
  cleanup.release();
}

std::uint64_t allocated_bytes(const fs::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return 0;
  return static_cast<std::uint64_t>(st.st_blocks) * 512;
}

}  // namespace kiln
