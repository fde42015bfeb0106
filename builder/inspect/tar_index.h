#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

namespace kiln {

/// Where a member's bytes lie in an uncompressed tar (an OVA), so that its disk can be read
/// in place.
struct TarMember {
  std::string name;
  std::uint64_t offset = 0;
  std::uint64_t size = 0;
};

/// Reads `count` bytes at `offset` of the archive; returns fewer at its end.
using TarRead = std::function<std::string(std::uint64_t offset, std::size_t count)>;

/// Finds the first regular member whose name ends in `suffix` among the first 64 headers of
/// the ustar archive of `archive_size` bytes. Every header's checksum, size and position is
/// checked; throws kiln::Error, prefixed with `what`, on a malformed header or a member that
/// would end past the archive. nullopt when there is no such member.
std::optional<TarMember> find_tar_member(const TarRead& read, std::uint64_t archive_size,
                                         const std::string& suffix, const std::string& what);

}  // namespace kiln
