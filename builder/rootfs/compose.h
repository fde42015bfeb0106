#pragma once

#include "builder/fetch/cache.h"
#include "builder/plan/plan.h"
#include "builder/rootfs/artifacts.h"

namespace kiln {

/// Stage 3: the base tree plus Kubernetes binaries, node configuration, overlays, files,
/// users and the manifest, written as one sorted, timestamp-normalised tarball. Cached
/// under the rootfs key.
RootfsArtifact compose_rootfs(const BuildPlan& plan, const BaseArtifact& base,
                              const KubernetesArtifact& kubernetes, Cache& cache, bool rebuild);

}  // namespace kiln
