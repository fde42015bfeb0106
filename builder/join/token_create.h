#pragma once

#include <string>
#include <vector>

#include "builder/join/join_config.h"
#include "builder/join/kubeconfig.h"

namespace kiln {

/// The group kubeadm's bootstrap-token phase grants node-joining rights to.
inline constexpr const char* kDefaultNodeTokenGroup =
    "system:bootstrappers:kubeadm:default-node-token";

struct TokenRequest {
  long long ttl_seconds = 2 * 3600;
  std::string description = "kiln node join token";
  std::vector<std::string> groups = {kDefaultNodeTokenGroup};
  std::string endpoint;  ///< where nodes reach the API server; default: the kubeconfig's server
  std::string control_plane_name;  ///< default: the kubeconfig's cluster name
  JoinConfig node;                 ///< labels, taints, name policy, kubelet args to carry along
};

/// The bootstrap-token Secret kubeadm would create (kube-system/bootstrap-token-<id>, usages
/// authentication and signing, expiration set), as JSON for the API.
std::string bootstrap_token_secret(const BootstrapToken& token, long long expires,
                                   const TokenRequest& request);

/// Creates a bootstrap token through the API server named by `kubeconfig` and returns the
/// join config for it: endpoint, token, the CA pin computed from the kubeconfig's CA, expiry.
/// Throws kiln::Error with the API server's own message when it refuses.
JoinConfig create_bootstrap_token(const Kubeconfig& kubeconfig, const TokenRequest& request,
                                  long long now);

}  // namespace kiln
