#include "builder/util/sha256.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "builder/util/error.h"

namespace kiln {

Sha256::Sha256() : ctx_(EVP_MD_CTX_new(), EVP_MD_CTX_free) {
  if (!ctx_ || EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr) != 1) {
    throw Error("OpenSSL: cannot initialise SHA-256");
  }
}

void Sha256::update(std::string_view data) {
  EVP_DigestUpdate(ctx_.get(), data.data(), data.size());
}

std::string Sha256::hex() {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_DigestFinal_ex(ctx_.get(), digest, &length);
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < length; ++i) {
    out += digits[digest[i] >> 4];
    out += digits[digest[i] & 15];
  }
  return out;
}

std::string sha256_hex(std::string_view data) {
  Sha256 hasher;
  hasher.update(data);
  return hasher.hex();
}

std::string sha256_file(const std::filesystem::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error("cannot read " + path.string() + ": " + std::strerror(errno));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0)
    throw Error("cannot read " + path.string() + ": " + std::strerror(errno));
  std::string buffer(1 << 20, '\0');
  Sha256 hasher;
  if (!S_ISREG(st.st_mode)) {  // a device or a pipe: no size to trust, no holes to skip
    for (;;) {
      ssize_t n = ::read(fd, buffer.data(), buffer.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) throw Error("cannot read " + path.string() + ": " + std::strerror(errno));
      if (n == 0) return hasher.hex();
      hasher.update(std::string_view(buffer.data(), n));
    }
  }
  const off_t size = st.st_size;

  // A disk image is mostly holes. Reading one makes the kernel fill page after page with
  // zeros (a 3 GiB image took 7 s); hashing the same zeros from memory takes none of that.
  static const std::string zeros(1 << 20, '\0');
  off_t position = 0;
  while (position < size) {
    off_t data = ::lseek(fd, position, SEEK_DATA);
    if (data < 0 && errno == ENXIO) data = size;       // only a hole remains
    if (data < 0 && errno == EINVAL) data = position;  // no hole support: read it all
    if (data < 0) throw Error("cannot read " + path.string() + ": " + std::strerror(errno));
    for (off_t left = data - position; left > 0;) {
      off_t n = std::min<off_t>(left, zeros.size());
      hasher.update(std::string_view(zeros.data(), n));
      left -= n;
    }
    off_t hole = data < size ? ::lseek(fd, data, SEEK_HOLE) : size;
    if (hole < 0 || hole > size) hole = size;
    for (off_t at = data; at < hole;) {
      ssize_t n = ::pread(fd, buffer.data(), std::min<off_t>(hole - at, buffer.size()), at);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) throw Error("cannot read " + path.string() + ": " + std::strerror(errno));
      if (n == 0) throw Error(path.string() + " shrank while it was being hashed");
      hasher.update(std::string_view(buffer.data(), n));
      at += n;
    }
    position = hole;
  }
  return hasher.hex();
}

bool is_sha256_hex(std::string_view text) {
  return text.size() == 64 && text.find_first_not_of("0123456789abcdefABCDEF") == std::string::npos;
}

}  // namespace kiln
