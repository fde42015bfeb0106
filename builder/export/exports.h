#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "builder/disk/disk_image.h"
#include "builder/join/join_config.h"
#include "builder/plan/plan.h"
#include "builder/rootfs/artifacts.h"

namespace kiln {

/// One file an export wrote into the output directory.
struct ExportedFile {
  std::string name;
  std::uint64_t size = 0;
  std::string sha256;
};

/// The export stage: writes every output format the recipe asks for (see output_formats.h)
/// into `dir`, then manifest.json and SHA256SUMS over all of them, and returns what it wrote
/// in SHA256SUMS order. `disk` is needed when a format needs it. With a join config, the disk
/// formats are written from a private stamped copy of the disk (the cached disk stays
/// token-free) and every file from the first disk format on is created mode 0600. Each file
/// appears under its final name only when complete. `signing_key` signs the update folder.
std::vector<ExportedFile> export_outputs(const BuildPlan& plan, const RootfsArtifact& rootfs,
                                         const std::optional<DiskArtifact>& disk,
                                         const std::optional<JoinConfig>& join,
                                         const std::filesystem::path& dir,
                                         const std::filesystem::path& signing_key = {});

}  // namespace kiln
