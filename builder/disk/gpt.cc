#include "builder/disk/gpt.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstring>

#include "builder/util/error.h"
#include "builder/util/files.h"

namespace kiln {
namespace fs = std::filesystem;

namespace {

constexpr std::uint32_t kEntryCount = 128;
constexpr std::uint32_t kEntrySize = 128;
constexpr std::uint64_t kEntryArrayBytes = kEntryCount * kEntrySize;  // 16 KiB

// Bounds for reading images kiln did not necessarily write: real tables use 128 entries of
// 128 bytes; anything far beyond that is damage or an attempt to make kiln allocate.
constexpr std::uint32_t kMaxEntrySize = 4096;
constexpr std::uint32_t kMaxEntryCount = 4096;
constexpr std::uint64_t kMaxEntryArrayBytes = 1 << 20;

void put_le(std::uint8_t* at, std::uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) at[i] = static_cast<std::uint8_t>(value >> (8 * i));
}

std::uint64_t get_le(const std::uint8_t* at, int bytes) {
  std::uint64_t value = 0;
  for (int i = bytes - 1; i >= 0; --i) value = (value << 8) | at[i];
  return value;
}

class File {
 public:
  File(const fs::path& path, int flags)
      : path_(path), fd_(::open(path.c_str(), flags | O_CLOEXEC)) {
    if (fd_ < 0) throw Error("cannot open " + path.string() + ": " + std::strerror(errno));
  }
  ~File() { ::close(fd_); }
  void write_at(const void* data, std::size_t size, std::uint64_t offset) {
    pwrite_all(fd_, std::string_view(static_cast<const char*>(data), size), offset, path_);
  }
  void read_at(void* data, std::size_t size, std::uint64_t offset) {
    if (!pread_all(fd_, data, size, offset, path_))
      throw Error(path_.string() + " is too short to be a disk image");
  }

 private:
  fs::path path_;
  int fd_;
};

std::vector<std::uint8_t> entry_array(const GptDisk& disk) {
  std::vector<std::uint8_t> entries(kEntryCount * kEntrySize, 0);
  for (std::size_t i = 0; i < disk.partitions.size(); ++i) {
    const GptPartition& p = disk.partitions[i];
    std::uint8_t* e = &entries[i * kEntrySize];
    auto type = p.type.to_gpt_bytes();
    auto uuid = p.uuid.to_gpt_bytes();
    std::memcpy(e, type.data(), 16);
    std::memcpy(e + 16, uuid.data(), 16);
    put_le(e + 32, p.offset / disk.sector_size, 8);
    put_le(e + 40, (p.offset + p.size) / disk.sector_size - 1, 8);
    put_le(e + 48, p.attributes, 8);
    for (std::size_t c = 0; c < p.name.size() && c < 36; ++c) put_le(e + 56 + 2 * c, p.name[c], 2);
  }
  return entries;
}

std::array<std::uint8_t, kSectorSize> header(const GptDisk& disk, std::uint64_t self,
                                             std::uint64_t other, std::uint64_t entries_lba,
                                             std::uint32_t entries_crc) {
  const std::uint64_t last = disk.size / disk.sector_size - 1;
  const std::uint64_t entry_sectors = kEntryArrayBytes / disk.sector_size;
  std::array<std::uint8_t, kSectorSize> h{};
  std::memcpy(h.data(), "EFI PART", 8);
  put_le(&h[8], 0x00010000, 4);
  put_le(&h[12], 92, 4);
  put_le(&h[24], self, 8);
  put_le(&h[32], other, 8);
  put_le(&h[40], 2 + entry_sectors, 8);
  put_le(&h[48], last - entry_sectors - 1, 8);
  auto guid = disk.guid.to_gpt_bytes();
  std::memcpy(&h[56], guid.data(), 16);
  put_le(&h[72], entries_lba, 8);
  put_le(&h[80], kEntryCount, 4);
  put_le(&h[84], kEntrySize, 4);
  put_le(&h[88], entries_crc, 4);
  put_le(&h[16], crc32(h.data(), 92), 4);
  return h;
}

}  // namespace

std::uint32_t crc32(const void* data, std::size_t size) {
  static const auto table = [] {
    std::array<std::uint32_t, 256> t{};
    for (std::uint32_t i = 0; i < 256; ++i) {
      std::uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  std::uint32_t crc = 0xffffffffu;
  const auto* bytes = static_cast<const std::uint8_t*>(data);
  for (std::size_t i = 0; i < size; ++i) crc = table[(crc ^ bytes[i]) & 0xff] ^ (crc >> 8);
  return crc ^ 0xffffffffu;
}

void write_gpt(const fs::path& path, const GptDisk& disk) {
  const std::uint64_t sector = disk.sector_size;
  if (sector != kSectorSize && sector != k4KSectorSize)
    throw Error("GPT sector size must be 512 or 4096, not " + std::to_string(sector));
  const std::uint64_t sectors = disk.size / sector;
  const std::uint64_t entry_sectors = kEntryArrayBytes / sector;
  File file(path, O_WRONLY);

  // Protective MBR: one 0xEE partition covering the disk, so MBR-only tools keep off.
  std::array<std::uint8_t, kSectorSize> mbr{};
  std::uint8_t* entry = &mbr[446];
  entry[1] = 0x00, entry[2] = 0x02, entry[3] = 0x00;  // CHS of LBA 1
  entry[4] = 0xee;
  entry[5] = 0xff, entry[6] = 0xff, entry[7] = 0xff;
  put_le(entry + 8, 1, 4);
  put_le(entry + 12, std::min<std::uint64_t>(sectors - 1, 0xffffffffu), 4);
  mbr[510] = 0x55, mbr[511] = 0xaa;
  file.write_at(mbr.data(), mbr.size(), 0);

  auto entries = entry_array(disk);
  std::uint32_t entries_crc = crc32(entries.data(), entries.size());
  const std::uint64_t last = sectors - 1;
  auto primary = header(disk, 1, last, 2, entries_crc);
  auto backup = header(disk, last, 1, last - entry_sectors, entries_crc);
  // A header fills its sector: the rest of a 4096-byte one is zero.
  const std::string zeros(sector - primary.size(), '\0');
  file.write_at(primary.data(), primary.size(), sector);
  file.write_at(zeros.data(), zeros.size(), sector + primary.size());
  file.write_at(entries.data(), entries.size(), 2 * sector);
  file.write_at(entries.data(), entries.size(), (last - entry_sectors) * sector);
  file.write_at(backup.data(), backup.size(), last * sector);
  file.write_at(zeros.data(), zeros.size(), last * sector + backup.size());
}

GptDisk read_gpt(const fs::path& path) {
  File file(path, O_RDONLY);
  return read_gpt(path, fs::file_size(path), [&](void* data, std::size_t size, std::uint64_t at) {
    file.read_at(data, size, at);
  });
}

GptDisk read_gpt(const fs::path& path, std::uint64_t disk_size, const GptRead& read_at) {
  std::array<std::uint8_t, kSectorSize> h{};
  std::uint64_t sector = kSectorSize;
  read_at(h.data(), h.size(), kSectorSize);
  if (std::memcmp(h.data(), "EFI PART", 8) != 0 &&
      (disk_size == 0 || disk_size >= 2 * k4KSectorSize)) {
    sector = k4KSectorSize;  // a 4Kn disk's header is in its second 4096-byte sector
    read_at(h.data(), h.size(), sector);
  }
  if (std::memcmp(h.data(), "EFI PART", 8) != 0)
    throw Error(path.string() + " has no GPT partition table (is it a raw disk image?)");
  std::uint32_t stored_crc = get_le(&h[16], 4);
  std::uint32_t header_size = get_le(&h[12], 4);
  if (header_size < 92 || header_size > kSectorSize)
    throw Error(path.string() + ": malformed GPT header");
  std::array<std::uint8_t, kSectorSize> zeroed = h;
  put_le(&zeroed[16], 0, 4);
  if (crc32(zeroed.data(), header_size) != stored_crc)
    throw Error(path.string() + ": GPT header checksum mismatch (corrupted image?)");

  GptDisk disk;
  disk.sector_size = sector;
  // A disk read as a stream does not say its size: the backup header's sector (the disk's
  // last) does. Partitions are still checked against it, and reads past the stream's end fail.
  disk.size = disk_size != 0
                  ? disk_size
                  : std::min<std::uint64_t>(get_le(&h[32], 8), 1ull << 41) * sector + sector;
  disk.guid = Guid::from_gpt_bytes(&h[56]);
  // Everything below is bounded by the file itself: a damaged or hostile table can neither
  // make kiln allocate more than kMaxEntryArrayBytes nor point a partition past the end.
  const std::uint64_t sectors = disk.size / sector;
  const std::string where = path.string() + ": malformed GPT: ";
  std::uint64_t entries_lba = get_le(&h[72], 8);
  std::uint32_t count = get_le(&h[80], 4), size = get_le(&h[84], 4);
  if (size < 128 || size > kMaxEntrySize || (size & (size - 1)) != 0)
    throw Error(where + "partition entry size " + std::to_string(size) + " is not 128, 256, ... " +
                std::to_string(kMaxEntrySize) + " bytes");
  if (count == 0 || count > kMaxEntryCount || std::uint64_t(count) * size > kMaxEntryArrayBytes)
    throw Error(where + std::to_string(count) + " partition entries of " + std::to_string(size) +
                " bytes (at most " + std::to_string(kMaxEntryArrayBytes >> 10) + " KiB)");
  std::uint64_t array_sectors = (std::uint64_t(count) * size + sector - 1) / sector;
  if (entries_lba < 2 || entries_lba >= sectors || array_sectors > sectors - entries_lba)
    throw Error(where + "the partition entry array (sector " + std::to_string(entries_lba) + ", " +
                std::to_string(array_sectors) + " sectors) lies outside the " +
                std::to_string(disk.size) + "-byte file");
  std::vector<std::uint8_t> entries(std::size_t(count) * size);
  read_at(entries.data(), entries.size(), entries_lba * sector);
  if (crc32(entries.data(), entries.size()) != get_le(&h[88], 4))
    throw Error(path.string() + ": GPT partition entries checksum mismatch (corrupted image?)");
  for (std::uint32_t i = 0; i < count; ++i) {
    const std::uint8_t* e = &entries[std::size_t(i) * size];
    if (std::all_of(e, e + 16, [](std::uint8_t b) { return b == 0; })) continue;
    GptPartition p;
    p.type = Guid::from_gpt_bytes(e);
    p.uuid = Guid::from_gpt_bytes(e + 16);
    std::uint64_t first = get_le(e + 32, 8), last = get_le(e + 40, 8);
    for (int c = 0; c < 36; ++c) {
      auto ch = static_cast<char16_t>(get_le(e + 56 + 2 * c, 2));
      if (ch == 0) break;
      p.name += ch < 128 && ch >= 32 ? static_cast<char>(ch) : '?';
    }
    std::string which = "partition " + std::to_string(i + 1) + " ('" + p.name + "')";
    if (last < first)
      throw Error(where + which + " ends (sector " + std::to_string(last) +
                  ") before it starts (sector " + std::to_string(first) + ")");
    if (first < 1 || last >= sectors)
      throw Error(where + which + " (sectors " + std::to_string(first) + "-" +
                  std::to_string(last) + ") lies outside the " + std::to_string(disk.size) +
                  "-byte file (" + std::to_string(sectors) + " sectors)");
    p.offset = first * sector;
    p.size = (last - first + 1) * sector;
    p.attributes = get_le(e + 48, 8);
    disk.partitions.push_back(p);
  }
  return disk;
}

const GptPartition& find_partition(const GptDisk& disk, const std::string& name,
                                   const fs::path& image) {
  for (const auto& p : disk.partitions) {
    if (p.name == name) return p;
  }
  throw Error(image.string() + " has no '" + name + "' partition (not a kiln disk image?)");
}

}  // namespace kiln
