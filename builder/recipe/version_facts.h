#pragma once

#include <string>

#include "builder/recipe/recipe.h"

namespace kiln {

// What kiln knows about the versions of the components a recipe names, in one place: the
// recipe's validation, the plan and the stages read these instead of keeping their own
// copies. Inline, so the first-boot agent, which compiles the recipe parser, links no more.

/// The pause image kubeadm of this Kubernetes version pre-pulls (containerd's sandbox image),
/// from kubeadm's constants (PauseVersion) per minor release.
inline std::string pause_image(const Version& kubernetes) {
  if (kubernetes.minor >= 34) return "registry.k8s.io/pause:3.10.1";
  if (kubernetes.minor >= 31) return "registry.k8s.io/pause:3.10";
  return "registry.k8s.io/pause:3.9";
}

/// The oldest containerd this kubelet works with: Kubernetes v1.36 dropped containerd 1.x;
/// older kubelets still need at least 1.7.
inline Version containerd_minimum(const Version& kubernetes) {
  return kubernetes.minor >= 36 ? Version{2, 0, 0} : Version{1, 7, 0};
}

/// The containerd version a Debian suite ships.
inline Version debian_containerd(const std::string& suite) {
  return suite == "bookworm" ? Version{1, 6, 20} : Version{1, 7, 24};
}

}  // namespace kiln
