#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "builder/disk/guid.h"

namespace kiln {

inline constexpr std::uint64_t kSectorSize = 512;

/// GPT attribute bits used by kiln (UEFI spec and Discoverable Partitions Specification).
namespace gpt_attribute {
inline constexpr std::uint64_t read_only = 1ull << 60;
inline constexpr std::uint64_t no_auto = 1ull << 63;
}  // namespace gpt_attribute

struct GptPartition {
  std::string name;  ///< GPT partition name (PARTLABEL), ASCII
  Guid type;
  Guid uuid;
  std::uint64_t offset = 0;  ///< bytes, sector-aligned
  std::uint64_t size = 0;    ///< bytes, sector-aligned
  std::uint64_t attributes = 0;
};

struct GptDisk {
  std::uint64_t size = 0;  ///< bytes
  Guid guid;
  std::vector<GptPartition> partitions;
};

/// Writes the protective MBR, the primary GPT (sectors 1-33) and the backup GPT (last 33
/// sectors) of `disk` into the file at `path`, which must already be disk.size bytes.
void write_gpt(const std::filesystem::path& path, const GptDisk& disk);

/// Reads and checks (signature, CRCs) the primary GPT of a raw disk image.
GptDisk read_gpt(const std::filesystem::path& path);

/// Fills `size` bytes at `offset` of a disk; throws kiln::Error when it cannot.
using GptRead = std::function<void(void* data, std::size_t size, std::uint64_t offset)>;

/// The same for a disk of `disk_size` bytes read through `read` (in increasing offsets, so a
/// stream will do); `path` names it in errors. A `disk_size` of 0 takes the size from the
/// header's backup-header sector.
GptDisk read_gpt(const std::filesystem::path& path, std::uint64_t disk_size, const GptRead& read);

/// The partition named `name`; throws naming the image when absent.
const GptPartition& find_partition(const GptDisk& disk, const std::string& name,
                                   const std::filesystem::path& image);

/// CRC-32 (IEEE 802.3), as GPT headers use.
std::uint32_t crc32(const void* data, std::size_t size);

}  // namespace kiln
