#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "builder/disk/disk_image.h"
#include "builder/plan/plan.h"

namespace kiln {

/// One file an export wrote into the output directory.
struct ExportedFile {
  std::string name;
  std::uint64_t size = 0;
  std::string sha256;
};

/// Writes every disk format the recipe lists (raw, raw.zst + .bmap, qcow2, vhd, vmdk, ova,
/// gce, ami) from the disk stage's raw image. Each file appears under its final name only
/// when complete.
std::vector<ExportedFile> export_disk_formats(const BuildPlan& plan, const DiskArtifact& disk,
                                              const std::filesystem::path& dir);

}  // namespace kiln
