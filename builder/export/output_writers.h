#pragma once

#include <array>
#include <filesystem>
#include <string_view>
#include <vector>

#include "builder/disk/disk_image.h"
#include "builder/export/exports.h"
#include "builder/export/output_formats.h"
#include "builder/join/join_config.h"
#include "builder/plan/plan.h"
#include "builder/rootfs/artifacts.h"

namespace kiln {

/// What a format's writer may read. Disk formats are written from `disk`, which carries the
/// join config when the build stamps one; `cached_disk` is the token-free disk of the cache.
struct ExportJob {
  const BuildPlan& plan;
  const RootfsArtifact& rootfs;
  const DiskArtifact* disk = nullptr;         ///< null when no output needs a disk
  const DiskArtifact* cached_disk = nullptr;  ///< null when no output needs a disk
  const JoinConfig* join = nullptr;           ///< null without a join config
  std::filesystem::path dir;
  std::filesystem::path signing_key;  ///< signs the update folder's index; empty without one
};

/// Writes one format into job.dir (each file under its final name only when complete) and
/// returns the files it wrote, named relative to job.dir.
using OutputWriter = std::vector<ExportedFile> (*)(const ExportJob& job);

struct FormatWriter {
  std::string_view name;
  OutputWriter write;
};

/// The writer of each row of kOutputFormats, in the same order.
const std::array<FormatWriter, kOutputFormats.size()>& format_writers();

}  // namespace kiln
