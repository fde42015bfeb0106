#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kiln {

/// Reads files from a FAT12/16/32 file system held in memory (an ESP or kiln-config partition
/// taken from an image), without mounting it or trusting it: every cluster number, chain and
/// size is checked against the bytes there are, and chains are followed at most once around
/// the volume, so a hostile image costs time linear in its size at worst.
class FatVolume {
 public:
  /// Returns exactly `count` bytes at `offset` of the file system, or throws.
  using Read = std::function<std::string(std::uint64_t offset, std::size_t count)>;

  /// Checks the boot sector; throws kiln::Error, prefixed with `what`, unless the `size`
  /// bytes `read` gives hold a FAT file system whose sizes fit them. Keeps one copy of the
  /// allocation table in memory (at most 16 MiB) and reads clusters as files need them.
  FatVolume(Read read, std::uint64_t size, std::string what);
  /// The same over bytes in memory, which must outlive the volume.
  FatVolume(std::string_view bytes, std::string what);

  /// The names in the directory at `path` ("/" or "/loader/entries"), long names where the
  /// entries have them; nullopt when there is no such directory.
  std::optional<std::vector<std::string>> list(std::string_view path) const;

  /// The file at `path` (matched without regard to case, as FAT does); nullopt when absent.
  /// Throws when it is larger than `limit` bytes.
  std::optional<std::string> read(std::string_view path, std::size_t limit) const;

 private:
  struct Entry {
    std::string name;
    bool directory = false;
    std::uint32_t cluster = 0;
    std::uint32_t size = 0;
  };
  std::vector<Entry> entries(const Entry* directory) const;  // nullptr: the root
  std::optional<Entry> find(std::string_view path) const;
  std::uint32_t next_cluster(std::uint32_t cluster) const;
  std::string chain(std::uint32_t first, std::uint64_t limit) const;

  Read read_;
  std::string fat_;  ///< the first allocation table
  std::string what_;
  int fat_bits_ = 0;
  std::uint32_t sector_size_ = 0;
  std::uint32_t cluster_size_ = 0;
  std::uint64_t root_offset_ = 0;  ///< FAT12/16's fixed root directory
  std::uint32_t root_entries_ = 0;
  std::uint32_t root_cluster_ = 0;  ///< FAT32's root directory chain
  std::uint64_t data_offset_ = 0;
  std::uint32_t clusters_ = 0;
};

}  // namespace kiln
