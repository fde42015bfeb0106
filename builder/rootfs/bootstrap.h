#pragma once

#include "builder/fetch/cache.h"
#include "builder/plan/plan.h"
#include "builder/rootfs/artifacts.h"

namespace kiln {

/// Stage 1: mmdebstrap of the suite with the plan's packages, cached under the base key.
/// Downloaded .debs are kept in the cache (apt-archives/) for later builds.
BaseArtifact bootstrap_base(const BuildPlan& plan, Cache& cache, bool rebuild);

}  // namespace kiln
