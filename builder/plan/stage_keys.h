#pragma once

#include <filesystem>
#include <string>

namespace kiln {

struct BuildPlan;

/// Fills base_key, kubernetes_key and rootfs_key. Each key hashes its stage's inputs and
/// the key before it, so changing an overlay re-runs only the rootfs stage.
void compute_stage_keys(BuildPlan& plan);

/// A digest of a directory tree: relative paths, types, modes, link targets and contents.
std::string hash_tree(const std::filesystem::path& root);

/// Bumped whenever a stage's code changes what it produces, so old cache entries are not reused.
inline constexpr int kBaseStageFormat = 5;
inline constexpr int kKubernetesStageFormat = 3;
inline constexpr int kRootfsStageFormat = 16;
inline constexpr int kDiskStageFormat = 8;

}  // namespace kiln
