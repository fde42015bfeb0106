#include "firstboot/image_writer.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "builder/util/error.h"
#include "builder/util/log.h"
#include "builder/util/process.h"

namespace kiln::firstboot {
namespace {

// Small enough that the zero runs inside a partition's used area are found, large enough that
// a 3 GiB image is a few tens of thousands of requests.
constexpr std::size_t kBlock = 64 << 10;
constexpr std::size_t kBuffer = 4 << 20;

std::string errno_text() {
  return std::strerror(errno);
}

bool all_zero(const char* data, std::size_t size) {
  // Zero first byte and every byte equal to its successor: one vectorised memcmp, which
  // matters when the installer runs under emulation.
  return size == 0 || (data[0] == 0 && std::memcmp(data, data + 1, size - 1) == 0);
}

void write_all(int fd, const char* data, std::size_t size, std::uint64_t offset) {
  while (size > 0) {
    ssize_t n = ::pwrite(fd, data, size, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0)
      throw Error("cannot write the disk image at byte " + std::to_string(offset) + ": " +
                  errno_text());
    data += n;
    size -= static_cast<std::size_t>(n);
    offset += static_cast<std::uint64_t>(n);
  }
}

void zero_range(int fd, std::uint64_t offset, std::uint64_t length) {
  std::uint64_t range[2] = {offset, length};
  if (::ioctl(fd, BLKZEROOUT, range) == 0) return;
  if (errno != ENOTTY)
    throw Error("cannot zero " + std::to_string(length) + " bytes at byte " +
                std::to_string(offset) + ": " + errno_text());
  // Not a block device (a file in tests): write the zeros.
  static const std::vector<char> zeros(kBlock);
  for (std::uint64_t done = 0; done < length; done += kBlock)
    write_all(fd, zeros.data(), std::min<std::uint64_t>(kBlock, length - done), offset + done);
}

/// Bytes a block device (or, in tests, a file) holds.
std::uint64_t capacity_of(int fd) {
  std::uint64_t bytes = 0;
  if (::ioctl(fd, BLKGETSIZE64, &bytes) == 0) return bytes;
  struct stat st {};
  if (::fstat(fd, &st) != 0) throw Error("cannot stat the install target: " + errno_text());
  return static_cast<std::uint64_t>(st.st_size);
}

/// Reads until `size` bytes or the end of input; returns how many arrived.
std::size_t read_full(int fd, char* data, std::size_t size) {
  std::size_t got = 0;
  while (got < size) {
    ssize_t n = ::read(fd, data + got, size - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw Error("cannot read the disk image: " + errno_text());
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  return got;
}

}  // namespace

WrittenImage write_image(int in, int target) {
  WrittenImage result;
  std::vector<char> buffer(kBuffer);
  std::uint64_t zero_start = 0, zero_length = 0;  // the zero run not yet sent
  auto flush_zeros = [&] {
    if (zero_length == 0) return;
    zero_range(target, zero_start, zero_length);
    result.zeroed += zero_length;
    zero_length = 0;
  };
  for (;;) {
    std::size_t filled = read_full(in, buffer.data(), buffer.size());
    if (filled == 0) break;
    // Consecutive data blocks go out as one write.
    std::size_t data_start = 0, data_length = 0;
    for (std::size_t at = 0; at < filled; at += kBlock) {
      std::size_t length = std::min(kBlock, filled - at);
      std::uint64_t offset = result.size + at;
      // A short last block is written as data: zero-range requests must be sector-aligned.
      if (length == kBlock && all_zero(buffer.data() + at, length)) {
        if (data_length)
          write_all(target, buffer.data() + data_start, data_length, result.size + data_start);
        data_length = 0;
        if (zero_length == 0) zero_start = offset;
        zero_length += length;
      } else {
        flush_zeros();
        if (data_length == 0) data_start = at;
        data_length += length;
      }
    }
    if (data_length)
      write_all(target, buffer.data() + data_start, data_length, result.size + data_start);
    result.size += filled;
    if (filled < buffer.size()) break;
  }
  flush_zeros();
  if (::fsync(target) != 0) throw Error("cannot flush the disk image: " + errno_text());
  return result;
}

std::optional<std::uint64_t> zstd_content_size(const std::filesystem::path& zst) {
  // RFC 8878 section 3.1.1: magic, frame header descriptor, optional window descriptor and
  // dictionary ID, then the frame content size in 0, 1, 2, 4 or 8 little-endian bytes.
  std::string header(18, '\0');
  int fd = ::open(zst.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error("cannot open " + zst.string() + ": " + errno_text());
  ssize_t got = ::pread(fd, header.data(), header.size(), 0);
  ::close(fd);
  header.resize(got > 0 ? static_cast<std::size_t>(got) : 0);
  auto byte = [&](std::size_t i) { return static_cast<unsigned char>(header[i]); };
  if (header.size() < 6 || header.compare(0, 4, "\x28\xb5\x2f\xfd") != 0) return std::nullopt;
  const unsigned descriptor = byte(4);
  const unsigned size_flag = descriptor >> 6;
  const bool single_segment = descriptor & 0x20;
  static constexpr std::size_t kDictionaryIdBytes[] = {0, 1, 2, 4};
  static constexpr std::size_t kSizeBytes[] = {0, 2, 4, 8};
  const std::size_t size_bytes = size_flag == 0 && single_segment ? 1 : kSizeBytes[size_flag];
  if (size_bytes == 0) return std::nullopt;
  const std::size_t at = 5 + (single_segment ? 0 : 1) + kDictionaryIdBytes[descriptor & 3];
  if (header.size() < at + size_bytes) return std::nullopt;
  std::uint64_t size = 0;
  for (std::size_t i = 0; i < size_bytes; ++i) size |= std::uint64_t(byte(at + i)) << (8 * i);
  return size_bytes == 2 ? size + 256 : size;
}

WrittenImage write_zstd_image(const std::filesystem::path& zst,
                              const std::filesystem::path& device) {
  int target = ::open(device.c_str(), O_WRONLY | O_CLOEXEC);
  if (target < 0) throw Error("cannot open " + device.string() + ": " + errno_text());
  try {
    std::uint64_t capacity = capacity_of(target);
    if (auto size = zstd_content_size(zst); size && *size > capacity) {
      throw Error(device.string() + " holds " + log::human_bytes(double(capacity)) +
                  ", less than the disk image's " + log::human_bytes(double(*size)) +
                  "; nothing was written to it");
    }
    StreamingCommand zstd({"zstd", "--decompress", "--stdout", "--quiet", zst.string()});
    WrittenImage written = write_image(zstd.output(), target);
    zstd.finish();
    ::close(target);
    return written;
  } catch (...) {
    ::close(target);
    throw;
  }
}

}  // namespace kiln::firstboot
