#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "builder/recipe/recipe.h"

namespace kiln {

/// Unpacks a tar (owners, modes, xattrs, mtimes kept) into an empty directory.
void extract_tar(const std::filesystem::path& archive, const std::filesystem::path& directory);

/// Makes a read-only EROFS image of `tree` with every timestamp at `epoch`.
void make_erofs(const std::filesystem::path& tree, const std::filesystem::path& image,
                const std::string& uuid, long long epoch, RootCompression compression);

/// Writes the dm-verity hash tree of `data` to `hash` (4 KiB blocks, salt and UUID fixed so
/// the output is reproducible) and returns the root hash.
std::string make_verity(const std::filesystem::path& data, const std::filesystem::path& hash,
                        const std::string& salt_hex, const std::string& uuid);

/// A FAT image of `size` bytes (FAT32 from 64 MiB up, else FAT12/16) holding `tree`, with
/// volume label, volume ID and every timestamp fixed, for disks of `sector_size`-byte logical
/// sectors (512 or 4096). Needs no mount: mkfs.fat and mtools.
void make_fat(const std::filesystem::path& image, std::uint64_t size, const std::string& label,
              std::uint32_t volume_id, const std::filesystem::path& tree, long long epoch,
              std::uint64_t sector_size = 512);

/// An ext4 image of `size` bytes seeded with `tree`, with fixed UUID, hash seed and times.
void make_ext4(const std::filesystem::path& image, std::uint64_t size, const std::string& label,
               const std::string& uuid, const std::filesystem::path& tree, long long epoch);

/// Bytes used by the files under `tree` (rounded to 4 KiB blocks), for size checks.
std::uint64_t tree_usage(const std::filesystem::path& tree);

}  // namespace kiln
