#include "builder/inspect/inspect_disk.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <optional>

#include "builder/disk/gpt.h"
#include "builder/disk/layout.h"
#include "builder/inspect/fat_volume.h"
#include "builder/join/join_config.h"
#include "builder/update/verity_check.h"
#include "builder/util/error.h"
#include "builder/util/log.h"
#include "builder/util/scan.h"
#include "builder/util/sha256.h"

namespace kiln {

namespace {

// What is read into memory is capped: a kiln ESP is 256 MiB, its config partition 8 MiB.
constexpr std::uint64_t kMaxEsp = 1ull << 30;
constexpr std::uint64_t kMaxConfig = 64ull << 20;
constexpr std::size_t kMaxEntryFile = 64 << 10;
constexpr std::size_t kMaxManifest = 16 << 20;
constexpr std::size_t kMaxSbom = 256 << 20;
constexpr std::size_t kMaxEntries = 64;

bool is_verity_type(const Guid& type) {
  return type == partition_type::root_x86_64_verity || type == partition_type::root_arm64_verity;
}

/// The superblock and tree of a verity partition, as far as its superblock says; empty when
/// the partition holds none (an update slot never written).
std::string read_verity_partition(DiskReader& disk, const GptPartition& partition) {
  constexpr std::size_t kBlock = 4096;
  if (partition.size < kBlock) return {};
  std::string bytes = disk.read(partition.offset, kBlock);
  VeritySuperblock superblock;
  try {
    superblock = parse_verity_superblock(bytes);
  } catch (const Error&) {
    return {};
  }
  if (superblock.data_blocks > (std::uint64_t(1) << 40) / kBlock) return {};
  std::uint64_t size = verity_hash_size(superblock.data_blocks * kBlock);
  if (size > partition.size || size < kBlock) return {};
  bytes += disk.read(partition.offset + kBlock, std::size_t(size - kBlock));
  return bytes;
}

RootCheck check_root(DiskReader& disk, const GptDisk& gpt,
                     const std::map<std::string, std::string>& trees,
                     const std::string& root_hash) {
  RootCheck check{"", root_hash, false, ""};
  if (!scan::is_lower_hex(root_hash, 64)) {
    check.problem = "the loader entry's roothash= is not 64 lowercase hex digits";
    return check;
  }
  Guid root_uuid = Guid::from_hex(root_hash.substr(0, 32));
  Guid verity_uuid = Guid::from_hex(root_hash.substr(32, 32));
  const GptPartition *root = nullptr, *verity = nullptr;
  for (const auto& partition : gpt.partitions) {
    if (partition.uuid == root_uuid) root = &partition;
    if (partition.uuid == verity_uuid) verity = &partition;
  }
  if (!root || !verity) {
    check.problem = "no partition pair carries this root hash's UUIDs";
    return check;
  }
  check.slot = root->name;
  auto tree = trees.find(verity->name);
  if (tree == trees.end() || tree->second.empty()) {
    check.problem = "partition " + verity->name + " holds no dm-verity tree";
    return check;
  }
  VeritySuperblock superblock = parse_verity_superblock(tree->second);
  std::uint64_t data_bytes = superblock.data_blocks * superblock.data_block_size;
  if (data_bytes > root->size) {
    check.problem = fmt::format("the verity tree covers {} bytes, more than partition {} holds",
                                data_bytes, root->name);
    return check;
  }
  log::info("  checking {} ({}) against its root hash", root->name, log::human_bytes(data_bytes));
  disk.rewind();
  const std::string& hashes = tree->second;
  check.problem = verify_verity(
      verity_reader(disk, root->offset), data_bytes,
      [&](void* data, std::size_t size, std::uint64_t at) {
        if (at > hashes.size() || size > hashes.size() - at) return false;
        std::memcpy(data, hashes.data() + at, size);
        return true;
      },
      root_hash);
  check.matches = check.problem.empty();
  return check;
}

void read_esp(const FatVolume& esp, const std::string& name, ImageReport& report) {
  if (auto names = esp.list("/loader/entries")) {
    std::sort(names->begin(), names->end());
    std::size_t count = 0;
    for (const auto& file : *names) {
      if (file.size() < 5 || file.substr(file.size() - 5) != ".conf") continue;
      if (++count > kMaxEntries) break;
      if (auto text = esp.read("/loader/entries/" + file, kMaxEntryFile))
        report.loader_entries.push_back(parse_boot_entry(*text));
    }
  }
  if (auto grub = esp.read("/grub/grub.cfg", kMaxEntryFile)) {
    for (auto& entry : parse_grub_entries(*grub)) report.loader_entries.push_back(std::move(entry));
  }
  if (auto config = esp.read("/config.txt", kMaxEntryFile)) {
    auto prefix = raspberry_pi_os_prefix(*config);
    if (auto cmdline =
            prefix ? esp.read("/" + *prefix + "cmdline.txt", kMaxEntryFile) : std::nullopt)
      report.loader_entries.push_back(raspberry_pi_entry(*prefix, *cmdline));
  }
  if (auto manifest = esp.read("/kiln/manifest.json", kMaxManifest))
    report.manifest = parse_manifest_summary(*manifest, name + ": ESP /kiln/manifest.json");
  if (auto sbom = esp.read("/kiln/sbom.spdx.json", kMaxSbom))
    report.sbom_sha256 = sha256_hex(*sbom);
}

}  // namespace

VerityRead verity_reader(DiskReader& disk, std::uint64_t base) {
  return [&disk, base](void* data, std::size_t size, std::uint64_t at) {
    try {
      disk.read(base + at, static_cast<char*>(data), size);
      return true;
    } catch (const Error&) {
      return false;
    }
  };
}

void inspect_disk(DiskReader& disk, const std::string& name, ImageReport& report) {
  GptDisk gpt = read_gpt(name, disk.size(), [&](void* data, std::size_t size, std::uint64_t at) {
    disk.read(at, static_cast<char*>(data), size);
  });
  // First pass, in disk order (a stream cannot go back): every verity tree, and for a stream
  // the ESP and the config partition too, kept in memory; an image that can be read anywhere
  // is read where the FAT points instead.
  std::vector<const GptPartition*> wanted;
  for (const auto& partition : gpt.partitions) {
    if (partition.name == "esp" || partition.name == "kiln-config" ||
        is_verity_type(partition.type))
      wanted.push_back(&partition);
  }
  std::sort(wanted.begin(), wanted.end(),
            [](const GptPartition* a, const GptPartition* b) { return a->offset < b->offset; });
  std::map<std::string, std::string> content;
  for (const GptPartition* partition : wanted) {
    if (is_verity_type(partition->type)) {
      content[partition->name] = read_verity_partition(disk, *partition);
      continue;
    }
    std::uint64_t cap = partition->name == "esp" ? kMaxEsp : kMaxConfig;
    if (partition->size > cap) {
      throw Error(fmt::format("{}: partition {} is {} bytes, more than a kiln image's", name,
                              partition->name, partition->size));
    }
    if (!disk.random_access())
      content[partition->name] = disk.read(partition->offset, std::size_t(partition->size));
  }
  auto volume = [&](const std::string& partition_name) -> std::optional<FatVolume> {
    std::string what = name + ": " + partition_name;
    if (auto kept = content.find(partition_name); kept != content.end())
      return FatVolume(kept->second, what);
    for (const auto& partition : gpt.partitions) {
      if (partition.name != partition_name || !disk.random_access()) continue;
      return FatVolume(
          [&disk, offset = partition.offset](std::uint64_t at, std::size_t count) {
            return disk.read(offset + at, count);
          },
          partition.size, what);
    }
    return std::nullopt;
  };
  auto esp = volume("esp");
  if (!esp) throw Error(name + " has no 'esp' partition (not a kiln disk image?)");
  read_esp(*esp, name, report);
  if (auto config = volume("kiln-config")) {
    report.stamp =
        summarize_stamp(config->read("/join.yaml", kMaxJoinConfigBytes),
                        config->read("/update-url", 4096), name + ":kiln-config/join.yaml");
  }
  // Then each root its loader entries boot, checked against their root hash.
  std::vector<std::string> hashes;
  for (const auto& entry : report.loader_entries) {
    std::string hash = cmdline_value(entry.cmdline, "roothash");
    if (!hash.empty() && std::find(hashes.begin(), hashes.end(), hash) == hashes.end())
      hashes.push_back(hash);
  }
  if (hashes.empty()) throw Error(name + ": no loader entry names a roothash (not a kiln image?)");
  for (const auto& hash : hashes) report.roots.push_back(check_root(disk, gpt, content, hash));
}

}  // namespace kiln
