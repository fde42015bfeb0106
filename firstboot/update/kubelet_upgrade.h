#pragma once

#include "firstboot/update/node_paths.h"

namespace kiln::update {

/// The first boot of an image whose kubelet is newer than the one the node's kubelet
/// configuration was written for does what `kubeadm upgrade node` does on a kubeadm worker
/// after its Tenant Control Plane was upgraded, before the kubelet starts: kubeadm of this
/// image rewrites the kubelet's configuration from the cluster and drops flags the new kubelet
/// no longer takes (v1.35 refuses to start with --pod-infra-container-image, which kubeadm
/// v1.34 wrote at join). The node keeps its identity: same credentials, same Node object.
///
/// Returns 0 when nothing had to change or the upgrade succeeded, 1 when kubeadm kept failing
/// (the kubelet then starts on the old configuration and the health check decides).
int upgrade_kubelet_config(const NodePaths& paths, const Say& say);

}  // namespace kiln::update
