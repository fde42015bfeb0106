#pragma once

#include <functional>
#include <string>

#include "builder/fetch/http_types.h"
#include "builder/join/join_config.h"
#include "builder/util/error.h"

namespace kiln {

/// Why discovery refused a control plane; the agent reports each differently.
enum class DiscoveryFailure {
  unreachable,
  no_cluster_info,
  token_unknown,
  bad_signature,
  ca_mismatch,
  tls_mismatch
};

class DiscoveryError : public Error {
 public:
  DiscoveryError(DiscoveryFailure failure, std::string message)
      : Error(std::move(message)), failure_(failure) {}
  DiscoveryFailure failure() const { return failure_; }

 private:
  DiscoveryFailure failure_;
};

/// What token discovery establishes: the control plane's kubeconfig (kube-public/cluster-info),
/// proven by the token's signature and pinned to the expected CA.
struct DiscoveredCluster {
  std::string kubeconfig;
  std::string ca_pem;
  std::string server;
};

/// kubeadm's token discovery, done by kiln itself before anything runs kubeadm: fetch
/// cluster-info anonymously, check bootstrapsigner's JWS for our token id, check the CA in it
/// against the pin, then fetch again over TLS verified by that CA and expect the same content.
/// Throws DiscoveryError naming the failure.
DiscoveredCluster discover_cluster(const JoinConfig& config, long timeout_seconds = 10);

/// How discovery makes its HTTPS calls: libcurl in the kiln CLI, a small OpenSSL client in
/// the static first-boot agent.
using HttpTransport = std::function<http::Response(const http::Request&)>;
DiscoveredCluster discover_cluster(const JoinConfig& config, const HttpTransport& transport,
                                   long timeout_seconds);

/// Throws kiln::Error when the token expired at `now` (with how long ago).
void check_not_expired(const JoinConfig& config, long long now);

}  // namespace kiln
