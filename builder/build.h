#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "builder/join/join_config.h"
#include "builder/plan/plan.h"
#include "builder/rootfs/artifacts.h"

namespace kiln {

struct BuildOptions {
  std::filesystem::path output_dir;  ///< default images/<name>
  std::filesystem::path cache_dir;
  bool offline = false;
  bool rebuild = false;  ///< re-run every stage; downloads stay cached
  int jobs = 2;
  /// A join config to stamp into every disk output (never into the cache), loaded and checked
  /// once by the caller; it is checked for expiry again before the export.
  std::optional<JoinConfig> join;
  /// Signs the update output's index (Ed25519 or ECDSA P-256 PEM private key).
  std::filesystem::path signing_key;
};

/// What a build leaves in the output directory.
struct BuildResult {
  std::vector<std::filesystem::path> files;  ///< every output, manifest.json and SHA256SUMS
  std::string rootfs_sha256;
};

/// The plan of a build: make_plan() with what kiln itself adds to the stages (the first-boot
/// agent, netroot, initrd support), and disk sizes that cannot work refused before any work.
BuildPlan plan_build(const Recipe& recipe, PlanOptions options);

/// The whole pipeline: bootstrap and Kubernetes binaries (in parallel), then the rootfs,
/// then the disk when an output needs one, then the export of the outputs. Each stage logs its name
/// and duration; a report of partition usage, output sizes and stage times ends the build.
BuildResult build(const BuildPlan& plan, const BuildOptions& options);

}  // namespace kiln
