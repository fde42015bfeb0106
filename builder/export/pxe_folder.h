#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "builder/disk/disk_image.h"
#include "builder/export/exports.h"
#include "builder/plan/plan.h"

namespace kiln {

/// The kernel command line of a netbooted kiln node: where its folder is served (`base_url`,
/// usually a loader variable such as iPXE's ${kiln-base}), the root image's verity root
/// hash and where in the image the hash tree starts, with `pxe.install` the disk image to
/// install and its SHA-256, then the recipe's own arguments.
std::string netboot_cmdline(const BuildPlan& plan, const std::string& base_url,
                            const std::string& root_hash, std::uint64_t hash_offset,
                            const std::string& install_sha256);

/// Writes `dir`/pxe: vmlinuz, initrd.img, root.img (the disk's EROFS root followed by its
/// dm-verity tree), boot.ipxe, grub.cfg, manifest.json and sbom.spdx.json (the build's, as
/// on the disk's ESP) and SHA256SUMS; with `pxe.install` also disk.raw.zst. The
/// folder appears complete or not at all. Returns its files, named "pxe/...".
std::vector<ExportedFile> export_pxe_folder(const BuildPlan& plan, const DiskArtifact& disk,
                                            const std::filesystem::path& dir);

}  // namespace kiln
