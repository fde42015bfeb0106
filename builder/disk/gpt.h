#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "builder/disk/guid.h"

namespace kiln {

/// The logical sector size of most disks, and of every kiln image unless the recipe asks for
/// 4096-byte sectors (disk.sector_size) for 4Kn disks.
inline constexpr std::uint64_t kSectorSize = 512;
inline constexpr std::uint64_t k4KSectorSize = 4096;

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
  /// Logical sector size the table is written for (512 or 4096): GPT counts in sectors, so
  /// a table for one size is not found on a disk of the other.
  std::uint64_t sector_size = kSectorSize;
  Guid guid;
  std::vector<GptPartition> partitions;
};

/// Writes the protective MBR, the primary GPT (sector 1 and the 16 KiB entry array after it)
/// and the backup GPT (the disk's last 16 KiB and sector) of `disk`, in its sector size, into
/// the file at `path`, which must already be disk.size bytes.
void write_gpt(const std::filesystem::path& path, const GptDisk& disk);

/// Reads and checks (signature, CRCs) the primary GPT of a raw disk image, written for 512- or
/// 4096-byte sectors (the header is looked for at both).
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
