#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "builder/disk/disk_image.h"
#include "builder/export/exports.h"
#include "builder/plan/plan.h"

namespace kiln {

/// The kernel command line of a netbooted kiln node: where the root image is (`root_url`,
/// here usually a loader variable such as iPXE's ${cwduri}), its verity root hash and where
/// in the image the hash tree starts, then the recipe's own arguments.
std::string netboot_cmdline(const BuildPlan& plan, const std::string& root_url,
                            const std::string& root_hash, std::uint64_t hash_offset);

/// Writes `dir`/pxe: vmlinuz, initrd.img, root.img (the disk's EROFS root followed by its
/// dm-verity tree), boot.ipxe, grub.cfg and SHA256SUMS. The folder appears complete or not
/// at all. Returns its files, named "pxe/...".
std::vector<ExportedFile> export_pxe_folder(const BuildPlan& plan, const DiskArtifact& disk,
                                            const std::filesystem::path& dir);

}  // namespace kiln
