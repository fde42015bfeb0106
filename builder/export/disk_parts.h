#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "builder/disk/disk_image.h"

namespace kiln {

/// Bytes the disk stage put into `partition` (the EROFS root, its hash tree ...).
std::uint64_t used_bytes(const DiskArtifact& disk, const std::string& partition);

/// Appends `size` bytes of `from` starting at `offset` to the open descriptor.
void append_range(const std::filesystem::path& from, std::uint64_t offset, std::uint64_t size,
                  int to);

/// Writes the used bytes of `partition` of the disk into a new file `out`.
void copy_partition_content(const DiskArtifact& disk, const std::string& partition,
                            const std::filesystem::path& out);

/// Copies /kiln/`file` (vmlinuz, initrd.img) from the disk's ESP, read with mtools as written.
void copy_from_esp(const DiskArtifact& disk, const std::string& file,
                   const std::filesystem::path& out);

}  // namespace kiln
