#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace kiln {

/// What `veritysetup format` records in the superblock at the start of a hash device.
struct VeritySuperblock {
  std::uint64_t data_blocks = 0;
  std::uint32_t data_block_size = 0;
  std::uint32_t hash_block_size = 0;
  std::string salt;  ///< raw bytes
};

/// Parses the 512-byte superblock; throws kiln::Error unless it is what kiln writes (version
/// 1, hash type 1, sha256, 4 KiB blocks, a salt of at most 256 bytes).
VeritySuperblock parse_verity_superblock(std::string_view bytes);

/// Checks a root slot the way the kernel's dm-verity will read it, before anything boots it:
/// recomputes the hash of every data block and every level of the tree, compares each hash
/// block with the one stored on `hash_fd`, and the top with `root_hash` (64 hex digits). Reads
/// with pread from both descriptors (block devices or files) in 1 MiB pieces; keeps one level
/// of the tree above the data in memory (1/128 of the data's hashes). Returns an empty string
/// when the slot matches, else where it first differs. `progress` (may be empty) gets the bytes
/// of data read so far.
std::string verify_verity(int data_fd, std::uint64_t data_bytes, int hash_fd,
                          std::string_view root_hash,
                          void (*progress)(std::uint64_t done, std::uint64_t total) = nullptr);

/// Reads `size` bytes at `offset` of a data or hash area; false when it cannot.
using VerityRead = std::function<bool(void* data, std::size_t size, std::uint64_t offset)>;

/// The same check through readers, for images that are not plain files (a qcow2 through
/// qemu's block layer, a partition already in memory). The data is read in increasing
/// offsets only, so a reader may stream it.
std::string verify_verity(const VerityRead& read_data, std::uint64_t data_bytes,
                          const VerityRead& read_hash, std::string_view root_hash,
                          void (*progress)(std::uint64_t done, std::uint64_t total) = nullptr);

}  // namespace kiln
