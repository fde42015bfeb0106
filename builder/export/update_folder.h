#pragma once

#include <filesystem>
#include <vector>

#include "builder/disk/disk_image.h"
#include "builder/export/exports.h"
#include "builder/plan/plan.h"

namespace kiln {

/// Adds this build's release to `dir`/update, the folder nodes update from:
/// NAME_VERSION.root.img (the EROFS root), NAME_VERSION.verity.img (its dm-verity tree),
/// NAME_VERSION.vmlinuz and NAME_VERSION.initrd.img, then rewrites index.json (every release
/// the folder holds, with sizes and SHA-256 digests), index.json.sig (signed with
/// `signing_key`) and SHA256SUMS. Releases of other versions already in the folder stay
/// listed, so one folder serves a pool's whole history; a release of the same version is
/// replaced. Every file appears under its final name only when complete. Returns the files
/// it wrote, named "update/...".
std::vector<ExportedFile> export_update_folder(const BuildPlan& plan, const DiskArtifact& disk,
                                               const std::filesystem::path& signing_key,
                                               const std::filesystem::path& dir);

}  // namespace kiln
