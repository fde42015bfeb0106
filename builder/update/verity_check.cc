#include "builder/update/verity_check.h"

#include <fmt/format.h>
#include <openssl/evp.h>

#include <cstring>
#include <memory>
#include <vector>

#include "builder/util/error.h"
#include "builder/util/files.h"

namespace kiln {

namespace {

constexpr std::size_t kSuperblockSize = 512;
constexpr std::uint32_t kBlock = 4096;
constexpr std::size_t kDigest = 32;
constexpr std::size_t kHashesPerBlock = kBlock / kDigest;

std::uint64_t le(std::string_view bytes, std::size_t at, int width) {
  std::uint64_t value = 0;
  for (int i = width - 1; i >= 0; --i)
    value = value << 8 | static_cast<unsigned char>(bytes[at + i]);
  return value;
}

/// SHA-256 of salt || block: dm-verity's hash (format 1).
class SaltedHash {
 public:
  explicit SaltedHash(std::string salt)
      : salt_(std::move(salt)), ctx_(EVP_MD_CTX_new(), EVP_MD_CTX_free) {}
  void hash(const char* block, std::size_t size, char* out) {
    unsigned int length = 0;
    if (EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr) != 1 ||
        EVP_DigestUpdate(ctx_.get(), salt_.data(), salt_.size()) != 1 ||
        EVP_DigestUpdate(ctx_.get(), block, size) != 1 ||
        EVP_DigestFinal_ex(ctx_.get(), reinterpret_cast<unsigned char*>(out), &length) != 1)
      throw Error("SHA-256 failed");
  }

 private:
  std::string salt_;
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx_;
};

std::string to_hex(std::string_view bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) out += digits[c >> 4], out += digits[c & 15];
  return out;
}

/// pread_all that reports a read error as a failed check rather than an exception.
VerityRead fd_reader(int fd, const char* what) {
  return [fd, what](void* data, std::size_t size, std::uint64_t offset) {
    try {
      return pread_all(fd, data, size, offset, what);
    } catch (const std::exception&) {
      return false;
    }
  };
}

std::uint64_t blocks_of(std::uint64_t entries) {
  return (entries + kHashesPerBlock - 1) / kHashesPerBlock;
}

}  // namespace

VeritySuperblock parse_verity_superblock(std::string_view bytes) {
  if (bytes.size() < kSuperblockSize || bytes.substr(0, 8) != std::string_view("verity\0\0", 8))
    throw Error("the hash device has no dm-verity superblock");
  if (le(bytes, 8, 4) != 1 || le(bytes, 12, 4) != 1)
    throw Error("the dm-verity superblock is not version 1, hash type 1");
  std::string_view algorithm = bytes.substr(32, 32);
  if (algorithm.substr(0, 7) != std::string_view("sha256\0", 7))
    throw Error("the dm-verity superblock names another hash than sha256");
  VeritySuperblock sb;
  sb.data_block_size = static_cast<std::uint32_t>(le(bytes, 64, 4));
  sb.hash_block_size = static_cast<std::uint32_t>(le(bytes, 68, 4));
  sb.data_blocks = le(bytes, 72, 8);
  std::uint64_t salt_size = le(bytes, 80, 2);
  if (sb.data_block_size != kBlock || sb.hash_block_size != kBlock)
    throw Error("the dm-verity superblock's block sizes are not 4096");
  if (salt_size > 256) throw Error("the dm-verity superblock's salt is longer than 256 bytes");
  sb.salt = std::string(bytes.substr(88, salt_size));
  return sb;
}

std::string verify_verity(int data_fd, std::uint64_t data_bytes, int hash_fd,
                          std::string_view root_hash,
                          void (*progress)(std::uint64_t, std::uint64_t)) {
  return verify_verity(fd_reader(data_fd, "the root slot"), data_bytes,
                       fd_reader(hash_fd, "the verity slot"), root_hash, progress);
}

std::string verify_verity(const VerityRead& read_data, std::uint64_t data_bytes,
                          const VerityRead& read_hash, std::string_view root_hash,
                          void (*progress)(std::uint64_t, std::uint64_t)) {
  char head[kSuperblockSize];
  if (!read_hash(head, sizeof head, 0)) return "cannot read the verity superblock";
  VeritySuperblock sb;
  try {
    sb = parse_verity_superblock(std::string_view(head, sizeof head));
  } catch (const Error& e) {
    return e.what();
  }
  if (data_bytes % kBlock != 0 || sb.data_blocks != data_bytes / kBlock) {
    return fmt::format("the verity superblock covers {} blocks but the root has {} bytes",
                       sb.data_blocks, data_bytes);
  }
  // Tree levels as the kernel lays them out after the superblock's block: the level nearest
  // the root first, the hashes of the data blocks last.
  std::vector<std::uint64_t> level_blocks;  // [0] = hashes of data blocks
  for (std::uint64_t entries = sb.data_blocks; entries > 1 || level_blocks.empty();) {
    level_blocks.push_back(blocks_of(entries));
    entries = level_blocks.back();
    if (entries == 1) break;
  }
  if (sb.data_blocks <= 1) level_blocks.clear();  // one data block: its hash is the root
  std::vector<std::uint64_t> level_start(level_blocks.size());
  std::uint64_t position = kBlock;
  for (std::size_t i = level_blocks.size(); i-- > 0;) {
    level_start[i] = position;
    position += level_blocks[i] * kBlock;
  }

  SaltedHash hasher(sb.salt);
  std::vector<char> buffer(1 << 20), stored(kBlock);
  std::string below;  // hashes of the level being built, one hash block at a time
  std::string current(kBlock, '\0');
  std::size_t in_block = 0;
  std::uint64_t block_index = 0;
  // Seals one hash block of level `level`: compares it with the stored one, hashes it upward.
  auto seal = [&](std::size_t level, std::string& block, std::string& upward) -> std::string {
    if (!read_hash(stored.data(), kBlock, level_start[level] + block_index * kBlock))
      return fmt::format("cannot read hash block {} of level {}", block_index, level);
    if (std::memcmp(stored.data(), block.data(), kBlock) != 0) {
      return fmt::format("hash block {} of level {} differs from the data below it", block_index,
                         level);
    }
    char digest[kDigest];
    hasher.hash(block.data(), kBlock, digest);
    upward.append(digest, kDigest);
    std::fill(block.begin(), block.end(), '\0');
    ++block_index;
    return "";
  };

  // Level 0 streams over the data; each level above is built from the one below in memory.
  std::string level_above;
  if (sb.data_blocks == 1) {
    if (!read_data(buffer.data(), kBlock, 0)) return "cannot read the root";
    char digest[kDigest];
    hasher.hash(buffer.data(), kBlock, digest);
    level_above.assign(digest, kDigest);
  } else {
    for (std::uint64_t done = 0; done < data_bytes;) {
      std::size_t take = std::min<std::uint64_t>(buffer.size(), data_bytes - done);
      if (!read_data(buffer.data(), take, done))
        return fmt::format("cannot read the root at byte {}", done);
      for (std::size_t at = 0; at < take; at += kBlock) {
        hasher.hash(buffer.data() + at, kBlock, current.data() + in_block * kDigest);
        if (++in_block == kHashesPerBlock) {
          if (auto why = seal(0, current, level_above); !why.empty()) return why;
          in_block = 0;
        }
      }
      done += take;
      if (progress) progress(done, data_bytes);
    }
    if (in_block > 0) {
      if (auto why = seal(0, current, level_above); !why.empty()) return why;
    }
    for (std::size_t level = 1; level < level_blocks.size(); ++level) {
      below.swap(level_above);
      level_above.clear();
      block_index = 0;
      for (std::size_t at = 0; at < below.size(); at += kBlock) {
        std::size_t take = std::min<std::size_t>(kBlock, below.size() - at);
        std::fill(current.begin(), current.end(), '\0');
        std::memcpy(current.data(), below.data() + at, take);
        if (auto why = seal(level, current, level_above); !why.empty()) return why;
      }
    }
  }
  if (level_above.size() != kDigest) return "the verity tree does not end in one block";
  std::string computed = to_hex(level_above);
  if (computed != root_hash) {
    return fmt::format("the slot's root hash is {}, not the {} the release was signed with",
                       computed, root_hash);
  }
  return "";
}

}  // namespace kiln
