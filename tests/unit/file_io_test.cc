// Positioned reads and writes finish what they start: one pwrite moves at most 2 GiB - 4 KiB on
// Linux and any call may stop short or be interrupted.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cerrno>

#include "builder/util/error.h"
#include "builder/util/files.h"
#include "builder/util/sha256.h"
#include "support/temp_dir.h"

namespace fs = std::filesystem;

namespace {

/// What the fake system call saw: calls that continue where the previous one stopped.
struct Recorded {
  const char* expected_data = nullptr;
  std::uint64_t next_offset = 0;
  std::uint64_t written = 0;
  int calls = 0;
  bool contiguous = true;
  bool interrupted = false;
};
Recorded recorded;

/// Behaves like Linux's pwrite on a huge buffer, without touching it: moves at most
/// 0x7ffff000 bytes, fails once with EINTR, and stops short once more at 1 MiB.
ssize_t kernel_like_pwrite(int, const void* data, std::size_t size, off_t offset) {
  ++recorded.calls;
  if (!recorded.interrupted) {
    recorded.interrupted = true;
    errno = EINTR;
    return -1;
  }
  if (static_cast<const char*>(data) != recorded.expected_data + recorded.written ||
      static_cast<std::uint64_t>(offset) != recorded.next_offset)
    recorded.contiguous = false;
  std::size_t n = std::min<std::size_t>(size, 0x7ffff000);
  if (recorded.calls == 3) n = std::min<std::size_t>(n, 1 << 20);
  recorded.written += n;
  recorded.next_offset += n;
  return static_cast<ssize_t>(n);
}

ssize_t stuck_pwrite(int, const void*, std::size_t, off_t) {
  return 0;
}

}  // namespace

TEST_CASE("a positioned write of more than 2 GiB is complete despite short writes and EINTR") {
  // 2 GiB + 1 MiB of untouched, unbacked address space: the fake never reads it.
  const std::size_t size = (2ull << 30) + (1 << 20);
  void* memory =
      ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  REQUIRE(memory != MAP_FAILED);
  recorded = {};
  recorded.expected_data = static_cast<const char*>(memory);
  recorded.next_offset = 4096;
  kiln::pwrite_all(-1, std::string_view(static_cast<const char*>(memory), size), 4096, "disk.raw",
                   kernel_like_pwrite);
  ::munmap(memory, size);
  CHECK(recorded.written == size);
  CHECK(recorded.contiguous);
  CHECK(recorded.calls == 4);  // EINTR, 1 MiB, 0x7ffff000, the rest
}

TEST_CASE("a positioned write that makes no progress fails instead of spinning") {
  CHECK_THROWS_WITH(kiln::pwrite_all(-1, "data", 0, "disk.raw", stuck_pwrite),
                    "cannot write disk.raw: no progress (device full?)");
}

TEST_CASE("write_at and read_at move exactly the bytes asked for, in place") {
  kiln::test::TempDir dir;
  fs::path file = dir.path() / "disk.raw";
  kiln::write_file_atomic(file, std::string(8192, 'a'));
  kiln::write_at(file, std::string(3000, 'b'), 1000);
  CHECK(kiln::read_at(file, 999, 3002) == "a" + std::string(3000, 'b') + "a");
  CHECK(fs::file_size(file) == 8192);
  CHECK_THROWS_WITH(kiln::read_at(file, 8000, 500),
                    "cannot read 500 bytes at 8000 of " + file.string() + ": the file ends first");
}

TEST_CASE("a sparse file hashes exactly as its bytes do, holes read as zeros") {
  kiln::test::TempDir dir;
  fs::path file = dir.path() / "sparse.raw";
  // Data, a hole of several hashing buffers, data, and a hole to the end.
  const std::uint64_t size = 9ull << 20;
  const std::uint64_t second = (6ull << 20) + 12345;
  kiln::write_file_atomic(file, std::string(5000, 'x'));
  fs::resize_file(file, size);
  kiln::write_at(file, std::string(70000, 'y'), second);
  std::string bytes(size, '\0');
  std::fill_n(bytes.begin(), 5000, 'x');
  std::fill_n(bytes.begin() + second, 70000, 'y');
  CHECK(kiln::sha256_file(file) == kiln::sha256_hex(bytes));
  // Filled in, the same bytes give the same digest.
  fs::path dense = dir.path() / "dense.raw";
  kiln::write_file_atomic(dense, bytes);
  CHECK(kiln::sha256_file(dense) == kiln::sha256_hex(bytes));
  fs::path empty = dir.path() / "empty";
  kiln::write_file_atomic(empty, "");
  CHECK(kiln::sha256_file(empty) == kiln::sha256_hex(""));
  // A character device has no size to go by: it is read to its end.
  CHECK(kiln::sha256_file("/dev/null") == kiln::sha256_hex(""));
}
