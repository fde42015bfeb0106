#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "builder/fetch/cache.h"
#include "builder/plan/plan.h"
#include "builder/rootfs/artifacts.h"

namespace kiln {

/// Builds the plan's Go binaries into `out_dir` reproducibly (-trimpath, no build id,
/// CGO off, version ldflags so `kubelet --version` reports the real release) and records
/// each with its module origin and digest.
void build_go_binaries(const BuildPlan& plan, Cache& cache, const std::filesystem::path& out_dir,
                       int jobs, std::vector<ArtifactRecord>& records);

/// A go.mod that builds commands of k8s.io/kubernetes at `version`: its staging modules
/// (required at v0.0.0 upstream) replaced by their real v0.MINOR.PATCH releases. `upstream`
/// is the text of k8s.io/kubernetes's own go.mod.
std::string kubernetes_build_gomod(const std::string& upstream, const std::string& version,
                                   const std::string& staging_version);

}  // namespace kiln
