#pragma once

// Helpers shared by the libFuzzer harnesses: the input as text, split into parts, or as a
// file for parsers that read a path.

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <utility>

namespace kiln::fuzz {

inline std::string_view as_text(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

/// The input before and after its first NUL byte: harnesses that take two strings (a JWS and
/// the content it signs) read them this way, so seeds stay readable text.
inline std::pair<std::string, std::string> split_at_nul(std::string_view input) {
  auto nul = input.find('\0');
  if (nul == std::string_view::npos) return {std::string(input), {}};
  return {std::string(input.substr(0, nul)), std::string(input.substr(nul + 1))};
}

/// An anonymous in-memory file holding each input in turn, for readers that take a path:
/// /proc/self/fd/N names it. No disk traffic, nothing left behind.
class MemoryFile {
 public:
  MemoryFile() : fd_(::memfd_create("kiln-fuzz-input", MFD_CLOEXEC)) {
    if (fd_ < 0) std::abort();
  }
  MemoryFile(const MemoryFile&) = delete;
  MemoryFile& operator=(const MemoryFile&) = delete;
  ~MemoryFile() { ::close(fd_); }

  void hold(std::string_view data) {
    if (::ftruncate(fd_, 0) != 0) std::abort();
    for (std::size_t at = 0; at < data.size();) {
      ssize_t n = ::pwrite(fd_, data.data() + at, data.size() - at, off_t(at));
      if (n <= 0) std::abort();
      at += std::size_t(n);
    }
  }
  std::filesystem::path path() const { return "/proc/self/fd/" + std::to_string(fd_); }

 private:
  int fd_;
};

/// A directory of this process's own under $TMPDIR, removed at exit: for parsers that need
/// a real file name (the recipe parser resolves includes against canonical paths).
inline const std::filesystem::path& private_directory() {
  static const std::filesystem::path dir = [] {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/kiln-fuzz-XXXXXX";
    if (!::mkdtemp(pattern.data())) std::abort();
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(private_directory(), ec);
    });
    return std::filesystem::path(pattern);
  }();
  return dir;
}

inline void write_text(const std::filesystem::path& file, std::string_view text) {
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out.write(text.data(), std::streamsize(text.size()));
  if (!out.flush()) std::abort();
}

}  // namespace kiln::fuzz
