#pragma once

#include <string>

#include "builder/join/join_config.h"
#include "builder/util/version.h"

namespace kiln {

/// The kubeadm JoinConfiguration for a node: token discovery pinned to the CA hash, the
/// node's name, labels (as the kubelet's --node-labels), taints and kubelet arguments.
/// kubeadm.k8s.io/v1beta4 for kubeadm v1.31 and newer, v1beta3 before. Contains the token:
/// write it 0600 and remove it after the join.
std::string render_kubeadm_join_configuration(const JoinConfig& config,
                                              const std::string& node_name,
                                              const Version& kubeadm_version);

/// "host:port" of an https:// endpoint, as kubeadm's apiServerEndpoint wants it.
std::string api_server_endpoint(const std::string& url);

}  // namespace kiln
