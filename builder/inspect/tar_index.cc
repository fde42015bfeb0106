#include "builder/inspect/tar_index.h"

#include <fmt/format.h>

#include "builder/util/error.h"

namespace kiln {

namespace {

constexpr std::size_t kBlock = 512;
constexpr int kMaxHeaders = 64;

/// A NUL- or space-terminated octal field, or the base-256 form GNU tar uses for large sizes.
std::optional<std::uint64_t> numeric_field(std::string_view field) {
  if (!field.empty() && (static_cast<unsigned char>(field[0]) & 0x80)) {
    std::uint64_t value = 0;
    for (std::size_t i = 1; i < field.size(); ++i) {
      if (value >> 55) return std::nullopt;
      value = value << 8 | static_cast<unsigned char>(field[i]);
    }
    return (static_cast<unsigned char>(field[0]) & 0x7f) ? std::nullopt : std::optional(value);
  }
  std::uint64_t value = 0;
  std::size_t i = 0;
  while (i < field.size() && field[i] == ' ') ++i;
  std::size_t digits = 0;
  for (; i < field.size() && field[i] >= '0' && field[i] <= '7'; ++i, ++digits) {
    if (value >> 60) return std::nullopt;
    value = value << 3 | std::uint64_t(field[i] - '0');
  }
  for (; i < field.size(); ++i)
    if (field[i] != ' ' && field[i] != '\0') return std::nullopt;
  if (digits == 0) return std::nullopt;
  return value;
}

std::string c_string(std::string_view field) {
  return std::string(field.substr(0, std::min(field.find('\0'), field.size())));
}

}  // namespace

std::optional<TarMember> find_tar_member(const TarRead& read, std::uint64_t archive_size,
                                         const std::string& suffix, const std::string& what) {
  std::uint64_t position = 0;
  for (int headers = 0; headers < kMaxHeaders; ++headers) {
    if (position > archive_size || archive_size - position < kBlock) return std::nullopt;
    std::string header = read(position, kBlock);
    if (header.size() < kBlock) return std::nullopt;
    if (header.find_first_not_of('\0') == std::string::npos) return std::nullopt;  // the end
    auto fail = [&](const std::string& why) {
      throw Error(fmt::format("{}: the tar header at byte {} {}", what, position, why));
    };
    auto checksum = numeric_field(std::string_view(header).substr(148, 8));
    std::uint64_t sum = 0;
    for (std::size_t i = 0; i < kBlock; ++i)
      sum += (i >= 148 && i < 156) ? ' ' : static_cast<unsigned char>(header[i]);
    if (!checksum || *checksum != sum) fail("has a wrong checksum (not a tar archive?)");
    auto size = numeric_field(std::string_view(header).substr(124, 12));
    if (!size) fail("has a malformed size");
    std::uint64_t data = position + kBlock;
    if (*size > archive_size - data) fail("describes a member that ends past the archive");
    std::string name = c_string(std::string_view(header).substr(0, 100));
    if (std::string_view(header).substr(257, 5) == "ustar") {
      std::string prefix = c_string(std::string_view(header).substr(345, 155));
      if (!prefix.empty()) name = prefix + "/" + name;
    }
    char type = header[156];
    if ((type == '0' || type == '\0') && name.size() >= suffix.size() &&
        name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0)
      return TarMember{name, data, *size};
    std::uint64_t padded = (*size + kBlock - 1) / kBlock * kBlock;
    position = data + padded;
  }
  return std::nullopt;
}

}  // namespace kiln
