#pragma once

#include <string>

#include "builder/plan/plan.h"
#include "builder/rootfs/artifacts.h"
#include "builder/rootfs/root_tree.h"

namespace kiln {

/// The image's SPDX 2.3 software bill of materials (JSON), from the finished root tree: every
/// installed Debian package (version, purl, maintainer as supplier, declared licence from
/// its machine-readable copyright file), the Kubernetes binaries with their origin, digest,
/// Go toolchain and Go modules (read from each binary's build information), and kiln's agents.
/// Deterministic: the creation time is the build's epoch, the namespace is derived from the
/// recipe, and objects and lists are sorted.
std::string render_sbom(const BuildPlan& plan, const RootTree& tree,
                        const KubernetesArtifact& kubernetes);

}  // namespace kiln
