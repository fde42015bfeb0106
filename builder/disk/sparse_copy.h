#pragma once

#include <cstdint>
#include <filesystem>

namespace kiln {

/// Copies `source` into `destination` at byte `offset`, skipping holes so sparse images
/// stay sparse. `destination` must exist.
void copy_into(const std::filesystem::path& source, const std::filesystem::path& destination,
               std::uint64_t offset);

/// Copies a sparse file to a new sparse file (temp + fsync + rename).
void copy_sparse_atomic(const std::filesystem::path& source,
                        const std::filesystem::path& destination);

/// Bytes actually allocated on disk (st_blocks), for size reports.
std::uint64_t allocated_bytes(const std::filesystem::path& path);

}  // namespace kiln
