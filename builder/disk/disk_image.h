#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "builder/disk/gpt.h"
#include "builder/fetch/cache.h"
#include "builder/plan/plan.h"
#include "builder/rootfs/artifacts.h"

namespace kiln {

/// One partition of a built disk and how much of it its content uses.
struct PartitionUsage {
  std::string name;
  std::uint64_t used = 0;
  std::uint64_t size = 0;
};

/// Output of the disk stage: a sparse raw GPT image, cached under the disk key.
struct DiskArtifact {
  std::filesystem::path raw;
  GptDisk layout;
  std::string root_hash;
  std::vector<PartitionUsage> usage;
};

/// The kernel command line of a kiln disk: the verity root hash (which names the root and
/// root-verity partitions), then the recipe's own arguments.
std::string kernel_cmdline(const BuildPlan& plan, const std::string& root_hash);

/// Stage 4: the bootable disk. Unpacks the rootfs, moves /var into the state partition's
/// seed, makes the EROFS root and its verity tree, the ESP (systemd-boot + GRUB), an empty
/// KILNCFG config partition and the ext4 state, lays them out with a GPT and installs GRUB's
/// BIOS boot code. No virtual machine or appliance is involved.
DiskArtifact build_disk(const BuildPlan& plan, const RootfsArtifact& rootfs, Cache& cache,
                        bool rebuild);

}  // namespace kiln
