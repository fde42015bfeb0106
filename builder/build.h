#pragma once

#include <filesystem>
#include <string>

#include "builder/plan/plan.h"
#include "builder/rootfs/artifacts.h"

namespace kiln {

struct BuildOptions {
  std::filesystem::path output_dir;  ///< default images/<name>
  std::filesystem::path cache_dir;
  bool offline = false;
  bool rebuild = false;  ///< re-run every stage; downloads stay cached
  int jobs = 2;
};

/// What a build leaves in the output directory.
struct BuildResult {
  std::filesystem::path rootfs_tarball;
  std::filesystem::path manifest;
  std::string rootfs_sha256;
};

/// The whole pipeline: bootstrap and Kubernetes binaries (in parallel), then the rootfs,
/// then the outputs. Each stage logs its name and duration.
BuildResult build(const BuildPlan& plan, const BuildOptions& options);

}  // namespace kiln
