#pragma once

#include <cstdint>
#include <string>

#include "builder/disk/gpt.h"
#include "builder/plan/plan.h"

namespace kiln {

inline constexpr std::uint64_t kMiB = 1ull << 20;
inline constexpr std::uint64_t kGiB = 1ull << 30;

/// Sizes of what goes into the disk, measured after the file systems are made.
struct DiskContent {
  std::uint64_t esp_used = 0;
  std::uint64_t root_bytes = 0;  ///< the EROFS image
  std::uint64_t state_used = 0;  ///< the seed of /var
  std::string root_hash;         ///< dm-verity root hash, 64 hex digits
};

/// Fixed partition sizes kiln uses unless the recipe says otherwise.
inline constexpr std::uint64_t kEspSize = 256 * kMiB;
/// With 4096-byte sectors a FAT32 of 256 MiB has too few clusters to be FAT32 (firmware
/// would read it as FAT16); 260 MiB is the smallest that is, as on Windows' 4Kn disks.
inline constexpr std::uint64_t kEsp4KSize = 260 * kMiB;
inline constexpr std::uint64_t kBiosBootSize = 1 * kMiB;
inline constexpr std::uint64_t kConfigSize = 8 * kMiB;
inline constexpr std::uint64_t kDefaultStateSize = 1 * kGiB;

/// The ESP's size on a disk of `sector_size`-byte sectors.
constexpr std::uint64_t esp_size(std::uint64_t sector_size) {
  return sector_size == 512 ? kEspSize : kEsp4KSize;
}

/// Whether the disk also boots by legacy BIOS (GRUB's i386-pc core in a bios-boot
/// partition): PCs only, and only with 512-byte sectors, which GRUB's core reads.
constexpr bool boots_by_bios(const Recipe& recipe) {
  return recipe.base.arch == Arch::amd64 && recipe.disk.sector_size == 512;
}

/// Bytes of the dm-verity hash tree (plus its superblock) for `data_bytes` of data with 4 KiB
/// data and hash blocks, as `veritysetup format` lays it out.
std::uint64_t verity_hash_size(std::uint64_t data_bytes);

/// Refuses, before any work, a disk.size that cannot hold even the fixed partitions.
void check_disk_size(const BuildPlan& plan);

/// The GPT of a kiln disk: esp, bios-boot (BIOS-booting disks only), root, root-verity, root-b,
/// root-b-verity, kiln-config, state — 1 MiB aligned, UUIDs derived from the recipe (the root
/// pair's from the root hash, as the Discoverable Partitions Specification asks). Throws an Error
/// with the numbers and the recipe location when the recipe's sizes cannot hold the content.
GptDisk plan_disk_layout(const BuildPlan& plan, const DiskContent& content);

}  // namespace kiln
