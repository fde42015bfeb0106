#pragma once

#include <string>

#include "builder/plan/plan.h"
#include "builder/rootfs/artifacts.h"

namespace kiln {

/// /usr/lib/kiln/manifest.json: recipe hash, every Debian package with its version, every
/// fetched or built artifact with origin and SHA-256. Deterministic: no host paths or times,
/// and nothing outside the rootfs stage's key (not the build's `--outputs`), since the image
/// carries it.
std::string render_manifest(const BuildPlan& plan, const BaseArtifact& base,
                            const KubernetesArtifact& kubernetes);

/// A JSON string literal.
std::string json_quote(const std::string& text);

}  // namespace kiln
