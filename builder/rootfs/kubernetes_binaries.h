#pragma once

#include "builder/fetch/cache.h"
#include "builder/plan/plan.h"
#include "builder/rootfs/artifacts.h"

namespace kiln {

/// Stage 2: kubelet, kubeadm and crictl (and a containerd release tarball when asked),
/// downloaded and verified, or built from Go modules, cached under the Kubernetes key.
KubernetesArtifact provide_kubernetes(const BuildPlan& plan, Cache& cache, bool rebuild, int jobs);

/// The pause image kubeadm of this version pre-pulls (used as containerd's sandbox image).
std::string pause_image_for(const Version& kubernetes);

}  // namespace kiln
