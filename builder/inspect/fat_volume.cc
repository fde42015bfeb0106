#include "builder/inspect/fat_volume.h"

#include <fmt/format.h>

#include "builder/util/error.h"
#include "builder/util/scan.h"

namespace kiln {

namespace {

constexpr std::size_t kEntrySize = 32;
constexpr std::uint8_t kAttrDirectory = 0x10, kAttrVolume = 0x08, kAttrLongName = 0x0f;
constexpr int kMaxDepth = 16;

std::uint32_t le(std::string_view bytes, std::size_t at, int width) {
  std::uint32_t value = 0;
  for (int i = width - 1; i >= 0; --i)
    value = value << 8 | static_cast<unsigned char>(bytes[at + std::size_t(i)]);
  return value;
}

bool power_of_two(std::uint32_t value) {
  return value != 0 && (value & (value - 1)) == 0;
}

/// One UCS-2 unit as UTF-8 (names kiln writes are ASCII; others still compare exactly).
void append_utf8(std::string& out, std::uint32_t unit) {
  if (unit < 0x80) {
    out += char(unit);
  } else if (unit < 0x800) {
    out += char(0xc0 | unit >> 6), out += char(0x80 | (unit & 0x3f));
  } else {
    out += char(0xe0 | unit >> 12), out += char(0x80 | ((unit >> 6) & 0x3f)),
        out += char(0x80 | (unit & 0x3f));
  }
}

/// The 8.3 name, with the lower-case flags Windows NT (and mtools) set in byte 12.
std::string short_name(std::string_view entry) {
  auto part = [&](std::size_t at, std::size_t width, bool lower) {
    std::string text(entry.substr(at, width));
    while (!text.empty() && text.back() == ' ') text.pop_back();
    if (lower)
      for (char& c : text) c = char(scan::to_lower(c));
    return text;
  };
  std::uint8_t flags = std::uint8_t(entry[12]);
  std::string name = part(0, 8, flags & 0x08), extension = part(8, 3, flags & 0x10);
  if (!name.empty() && name[0] == '\x05') name[0] = '\xe5';
  return extension.empty() ? name : name + "." + extension;
}

std::uint8_t short_name_checksum(std::string_view entry) {
  std::uint8_t sum = 0;
  for (int i = 0; i < 11; ++i) sum = std::uint8_t(((sum & 1) << 7) + (sum >> 1) + entry[i]);
  return sum;
}

}  // namespace

FatVolume::FatVolume(std::string_view bytes, std::string what)
    : FatVolume(
          [bytes](std::uint64_t offset, std::size_t count) {
            if (offset > bytes.size() || count > bytes.size() - offset)
              throw Error("a FAT read past the end of its bytes");
            return std::string(bytes.substr(offset, count));
          },
          bytes.size(), std::move(what)) {}

FatVolume::FatVolume(Read read, std::uint64_t size, std::string what)
    : read_(std::move(read)), what_(std::move(what)) {
  // The largest allocation table kept in memory: a 1 GiB FAT32 of 512-byte clusters needs 8 MiB.
  constexpr std::uint64_t kMaxFatBytes = 16u << 20;
  auto fail = [&](const std::string& why) { throw Error(what_ + ": " + why); };
  if (size < 512) fail("too small for a FAT file system");
  std::string boot = read_(0, 512);
  std::string_view bytes = boot;
  if (std::uint8_t(bytes[510]) != 0x55 || std::uint8_t(bytes[511]) != 0xaa)
    fail("no FAT boot sector (signature 55 aa missing)");
  sector_size_ = le(bytes, 11, 2);
  std::uint32_t sectors_per_cluster = le(bytes, 13, 1);
  std::uint32_t reserved = le(bytes, 14, 2);
  std::uint32_t fats = le(bytes, 16, 1);
  root_entries_ = le(bytes, 17, 2);
  std::uint64_t total = le(bytes, 19, 2);
  std::uint64_t fat_sectors = le(bytes, 22, 2);
  if (total == 0) total = le(bytes, 32, 4);
  if (fat_sectors == 0) fat_sectors = le(bytes, 36, 4);
  if (!power_of_two(sector_size_) || sector_size_ < 512 || sector_size_ > 4096 ||
      !power_of_two(sectors_per_cluster) || sectors_per_cluster > 128 || reserved == 0 ||
      fats == 0 || fats > 4 || fat_sectors == 0 || total == 0)
    fail("the boot sector's geometry is not a FAT file system's");
  if (total * sector_size_ > size)
    fail(fmt::format("the file system's {} sectors do not fit its {} bytes", total, size));
  cluster_size_ = sector_size_ * sectors_per_cluster;
  std::uint64_t root_sectors =
      (std::uint64_t(root_entries_) * kEntrySize + sector_size_ - 1) / sector_size_;
  std::uint64_t data_sector = reserved + fats * fat_sectors + root_sectors;
  if (data_sector >= total) fail("the boot sector leaves no room for data");
  std::uint64_t clusters = (total - data_sector) / sectors_per_cluster;
  fat_bits_ = clusters < 4085 ? 12 : clusters < 65525 ? 16 : 32;
  clusters_ = std::uint32_t(std::min<std::uint64_t>(clusters, 0x0ffffff0));
  std::uint64_t fat_bytes = fat_sectors * sector_size_;
  if (fat_bytes * 8 < (std::uint64_t(clusters_) + 2) * std::uint64_t(fat_bits_))
    fail("its allocation table is too small for its clusters");
  // Only the entries of clusters that exist are read; the table may be padded beyond them.
  std::uint64_t used = ((std::uint64_t(clusters_) + 2) * std::uint64_t(fat_bits_) + 7) / 8 + 1;
  if (used > kMaxFatBytes) fail("its allocation table is larger than kiln reads");
  fat_ = read_(std::uint64_t(reserved) * sector_size_, std::size_t(std::min(used, fat_bytes)));
  root_offset_ = (reserved + fats * fat_sectors) * sector_size_;
  data_offset_ = data_sector * sector_size_;
  if (fat_bits_ == 32) {
    if (root_entries_ != 0) fail("a FAT32 file system with a fixed root directory");
    root_cluster_ = le(bytes, 44, 4);
    if (root_cluster_ < 2 || root_cluster_ >= clusters_ + 2)
      fail("its root cluster is out of range");
  }
}

std::uint32_t FatVolume::next_cluster(std::uint32_t cluster) const {
  std::uint64_t at =
      fat_bits_ == 12 ? cluster + cluster / 2 : std::uint64_t(cluster) * (fat_bits_ / 8);
  int width = fat_bits_ == 32 ? 4 : 2;
  if (at + std::uint64_t(width) > fat_.size())
    throw Error(fmt::format("{}: cluster {} has no allocation table entry", what_, cluster));
  std::uint32_t value = le(fat_, std::size_t(at), width);
  if (fat_bits_ == 12) value = (cluster & 1) ? value >> 4 : value & 0xfff;
  if (fat_bits_ == 32) value &= 0x0fffffff;
  std::uint32_t end = fat_bits_ == 12 ? 0xff8 : fat_bits_ == 16 ? 0xfff8 : 0x0ffffff8;
  return value >= end ? 0 : value;
}

std::string FatVolume::chain(std::uint32_t first, std::uint64_t limit) const {
  std::string out;
  std::uint32_t cluster = first;
  // A chain visits each cluster at most once; one that comes back to a cluster loops. The
  // bitmap is bounded by the clusters the bytes hold.
  std::vector<bool> visited(std::size_t(clusters_) + 2);
  while (cluster != 0 && out.size() < limit) {
    if (cluster < 2 || cluster >= clusters_ + 2)
      throw Error(
          fmt::format("{}: a cluster chain leaves the volume (cluster {})", what_, cluster));
    if (visited[cluster])
      throw Error(fmt::format("{}: a cluster chain loops (back to cluster {})", what_, cluster));
    visited[cluster] = true;
    std::uint64_t at = data_offset_ + std::uint64_t(cluster - 2) * cluster_size_;
    out += read_(at, std::size_t(std::min<std::uint64_t>(cluster_size_, limit - out.size())));
    cluster = next_cluster(cluster);
  }
  return out;
}

std::vector<FatVolume::Entry> FatVolume::entries(const Entry* directory) const {
  // Directories hold at most 65536 entries (2 MiB); FAT allows no more.
  constexpr std::uint64_t kMaxDirectory = 65536 * kEntrySize;
  std::string table = directory == nullptr && fat_bits_ != 32
                          ? read_(root_offset_, std::size_t(root_entries_) * kEntrySize)
                          : chain(directory ? directory->cluster : root_cluster_, kMaxDirectory);
  std::vector<Entry> out;
  std::string long_name;
  std::vector<std::uint32_t> units;
  int expected_sequence = 0;
  std::uint8_t long_checksum = 0;
  for (std::size_t at = 0; at + kEntrySize <= table.size(); at += kEntrySize) {
    std::string_view entry = std::string_view(table).substr(at, kEntrySize);
    std::uint8_t first = std::uint8_t(entry[0]), attributes = std::uint8_t(entry[11]);
    if (first == 0) break;
    if (first == 0xe5) {
      expected_sequence = 0;
      continue;
    }
    if ((attributes & 0x3f) == kAttrLongName) {
      // Long-name pieces come last piece first, numbered down to 1, 13 UCS-2 units each.
      int sequence = first & 0x1f;
      if (first & 0x40) {
        units.assign(std::size_t(sequence) * 13, 0xffff);
        expected_sequence = sequence;
        long_checksum = std::uint8_t(entry[13]);
      }
      if (sequence == 0 || sequence != expected_sequence ||
          std::uint8_t(entry[13]) != long_checksum) {
        expected_sequence = 0;
        continue;
      }
      static constexpr int kOffsets[13] = {1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30};
      for (int i = 0; i < 13; ++i)
        units[std::size_t(sequence - 1) * 13 + std::size_t(i)] =
            le(entry, std::size_t(kOffsets[i]), 2);
      --expected_sequence;
      continue;
    }
    bool has_long =
        expected_sequence == 0 && !units.empty() && short_name_checksum(entry) == long_checksum;
    Entry item;
    if (has_long) {
      for (std::uint32_t unit : units) {
        if (unit == 0 || unit == 0xffff) break;
        append_utf8(item.name, unit);
      }
    } else {
      item.name = short_name(entry);
    }
    units.clear();
    expected_sequence = 0;
    if ((attributes & kAttrVolume) || item.name == "." || item.name == "..") continue;
    item.directory = attributes & kAttrDirectory;
    item.cluster = le(entry, 26, 2) | (fat_bits_ == 32 ? le(entry, 20, 2) << 16 : 0);
    item.size = le(entry, 28, 4);
    out.push_back(std::move(item));
  }
  return out;
}

std::optional<FatVolume::Entry> FatVolume::find(std::string_view path) const {
  std::optional<Entry> current;  // empty: the root
  int depth = 0;
  for (std::string_view rest = path; !rest.empty();) {
    std::size_t slash = rest.find('/');
    std::string_view part = rest.substr(0, slash);
    rest = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
    if (part.empty()) continue;
    if (++depth > kMaxDepth || (current && !current->directory)) return std::nullopt;
    std::optional<Entry> found;
    for (auto& entry : entries(current ? &*current : nullptr)) {
      if (scan::iequals(entry.name, part)) {
        found = std::move(entry);
        break;
      }
    }
    if (!found) return std::nullopt;
    current = std::move(found);
  }
  if (!current) return Entry{"", true, 0, 0};
  return current;
}

std::optional<std::vector<std::string>> FatVolume::list(std::string_view path) const {
  auto directory = find(path);
  if (!directory || !directory->directory) return std::nullopt;
  std::vector<std::string> names;
  for (const auto& entry : entries(directory->cluster == 0 ? nullptr : &*directory))
    names.push_back(entry.name);
  return names;
}

std::optional<std::string> FatVolume::read(std::string_view path, std::size_t limit) const {
  auto file = find(path);
  if (!file || file->directory) return std::nullopt;
  if (file->size > limit) {
    throw Error(fmt::format("{}: {} is {} bytes, more than the {} expected", what_,
                            std::string(path), file->size, limit));
  }
  if (file->size == 0) return std::string();
  std::string content = chain(file->cluster, file->size);
  if (content.size() != file->size)
    throw Error(
        fmt::format("{}: {} ends before its {} bytes", what_, std::string(path), file->size));
  return content;
}

}  // namespace kiln
