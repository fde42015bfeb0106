#include "builder/disk/layout.h"

#include <fmt/format.h>

#include "builder/recipe/recipe_parser.h"
#include "builder/util/error.h"
#include "builder/util/log.h"

namespace kiln {

namespace {

std::uint64_t round_up(std::uint64_t value, std::uint64_t unit) {
  return (value + unit - 1) / unit * unit;
}

std::string mib(std::uint64_t bytes) {
  return fmt::format("{} MiB", (bytes + kMiB - 1) / kMiB);
}

/// A size the recipe set cannot work: reported like any other recipe error, at its key.
RecipeErrors too_small(const BuildPlan& plan, const std::string& key, const std::string& message) {
  auto mark = plan.recipe.marks.find(key);
  if (mark != plan.recipe.marks.end()) return RecipeErrors({Error(mark->second, message)});
  return RecipeErrors({Error(message)});
}

std::uint64_t state_minimum(const Recipe& r) {
  return r.disk.state_bytes ? r.disk.state_bytes : kDefaultStateSize;
}

}  // namespace

std::uint64_t verity_hash_size(std::uint64_t data_bytes) {
  constexpr std::uint64_t block = 4096, hashes_per_block = block / 32;
  std::uint64_t blocks = (data_bytes + block - 1) / block, total = 0;
  while (blocks > 1) {
    blocks = (blocks + hashes_per_block - 1) / hashes_per_block;
    total += blocks;
  }
  return (total + 1) * block;  // + the verity superblock
}

void check_disk_size(const BuildPlan& plan) {
  const Recipe& r = plan.recipe;
  if (!r.disk.size_bytes) return;
  std::uint64_t slots =
      r.disk.root_bytes ? 2 * (r.disk.root_bytes + verity_hash_size(r.disk.root_bytes)) : 0;
  std::uint64_t fixed = kMiB + esp_size(r.disk.sector_size) +
                        (boots_by_bios(r) ? kBiosBootSize : 0) + kConfigSize + state_minimum(r) +
                        kMiB;
  if (r.disk.size_bytes < fixed + slots) {
    throw too_small(plan, "disk.size",
                    fmt::format("disk.size is {} but the boot, config and state partitions "
                                "alone need {}{}; raise disk.size (e.g. 4G) or lower disk.state",
                                mib(r.disk.size_bytes), mib(fixed + slots),
                                slots ? " with the root slots" : ", before the root slots"));
  }
}

GptDisk plan_disk_layout(const BuildPlan& plan, const DiskContent& content) {
  const Recipe& r = plan.recipe;
  const bool arm = r.base.arch == Arch::arm64;
  auto derived = [&](const std::string& what) {
    return Guid::derived("kiln/" + plan.recipe_hash + "/" + what);
  };

  const std::uint64_t esp = esp_size(r.disk.sector_size);
  if (content.esp_used > esp) {
    throw Error(fmt::format("the kernel, initrd and boot loaders need {} but the ESP holds {}",
                            mib(content.esp_used), mib(esp)));
  }
  // Room for the next release in the same slot: updates write the other slot's size.
  std::uint64_t slot =
      r.disk.root_bytes ? r.disk.root_bytes : round_up(content.root_bytes * 5 / 4, 16 * kMiB);
  if (content.root_bytes > slot) {
    throw too_small(plan, "disk.root",
                    fmt::format("disk.root is {} but the root file system needs {}; raise "
                                "disk.root or remove it to size the slot automatically",
                                mib(slot), mib(content.root_bytes)));
  }
  slot = round_up(slot, kMiB);
  std::uint64_t slot_b = round_up(r.disk.root_b_bytes.value_or(slot), kMiB);
  std::uint64_t state_min = state_minimum(r);
  if (content.state_used > state_min) {
    throw too_small(plan, "disk.state",
                    fmt::format("disk.state is {} but the image's /var alone needs {}",
                                mib(state_min), mib(content.state_used)));
  }

  GptDisk disk;
  disk.guid = derived("disk");
  disk.sector_size = r.disk.sector_size;
  std::uint64_t offset = kMiB;
  auto add = [&](std::string name, Guid type, Guid uuid, std::uint64_t size,
                 std::uint64_t attributes = 0) {
    size = round_up(size, kMiB);
    disk.partitions.push_back({std::move(name), type, uuid, offset, size, attributes});
    offset += size;
  };
  const Guid& root_type = arm ? partition_type::root_arm64 : partition_type::root_x86_64;
  const Guid& verity_type =
      arm ? partition_type::root_arm64_verity : partition_type::root_x86_64_verity;
  add("esp", partition_type::esp, derived("esp"), esp);
  // GRUB's BIOS core reads 512-byte sectors on a PC: UEFI-only disks have no room for it.
  const std::uint64_t bios_boot = boots_by_bios(r) ? kBiosBootSize : 0;
  if (bios_boot) add("bios-boot", partition_type::bios_boot, derived("bios-boot"), bios_boot);
  add("root", root_type, Guid::from_hex(content.root_hash.substr(0, 32)), slot,
      gpt_attribute::read_only);
  add("root-verity", verity_type, Guid::from_hex(content.root_hash.substr(32, 32)),
      verity_hash_size(slot), gpt_attribute::read_only);
  if (slot_b > 0) {
    // Empty until an update writes it; no-auto keeps systemd's discovery away from it.
    add("root-b", root_type, derived("root-b"), slot_b, gpt_attribute::no_auto);
    add("root-b-verity", verity_type, derived("root-b-verity"), verity_hash_size(slot_b),
        gpt_attribute::no_auto);
  }
  add("kiln-config", partition_type::basic_data, derived("kiln-config"), kConfigSize);

  // The backup GPT takes the disk's last 16.5 KiB (20 KiB with 4096-byte sectors); state ends
  // on the MiB before it.
  std::uint64_t needed = offset + state_min + kMiB;
  std::uint64_t size = r.disk.size_bytes ? r.disk.size_bytes : round_up(needed, kGiB);
  if (size < needed) {
    throw too_small(
        plan, "disk.size",
        fmt::format("disk.size is {} but the partitions need {}: boot {}, root slots 2 x {}, "
                    "verity, config {}, state at least {}; raise disk.size or lower disk.state "
                    "/ disk.root_b",
                    mib(size), mib(needed), mib(esp + bios_boot), mib(slot), mib(kConfigSize),
                    mib(state_min)));
  }
  if (size % kMiB != 0) {
    throw too_small(plan, "disk.size",
                    fmt::format("disk.size must be a whole number of MiB (got {} bytes)", size));
  }
  disk.size = size;
  add("state", partition_type::linux_data, derived("state"), size - kMiB - offset);
  return disk;
}

}  // namespace kiln
