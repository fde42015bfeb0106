#include "builder/join/discovery.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include "builder/join/ca_pin.h"
#include "builder/join/jws.h"
#include "builder/join/kubeconfig.h"

namespace kiln {

namespace {

constexpr const char* kClusterInfoPath = "/api/v1/namespaces/kube-public/configmaps/cluster-info";

std::string fetch_cluster_info(const JoinConfig& config, const HttpTransport& transport,
                               const std::string& ca_pem, long timeout) {
  http::Request call;
  call.url = config.endpoint + kClusterInfoPath;
  call.ca_pem = ca_pem;
  call.timeout_seconds = timeout;
  http::Response response = transport(call);
  if (!response.error.empty()) {
    // The pinned fetch follows a successful anonymous one, but the network can still drop in
    // between (a netbooted node's interface is reconfigured after switch-root): a connection
    // that was never made says nothing about the CA, and is retried like the first.
    bool unreachable = ca_pem.empty() || response.unreachable;
    throw DiscoveryError(
        unreachable ? DiscoveryFailure::unreachable : DiscoveryFailure::tls_mismatch,
        fmt::format("{} {}: {}", unreachable ? "cannot reach" : "TLS with the pinned CA failed for",
                    config.endpoint, response.error));
  }
  if (response.status != 200) {
    throw DiscoveryError(
        DiscoveryFailure::no_cluster_info,
        fmt::format("{} answered HTTP {} for kube-public/cluster-info; is it a kubeadm-style "
                    "control plane with the bootstrap-token phase applied?",
                    config.endpoint, response.status));
  }
  return response.body;
}

}  // namespace

DiscoveredCluster discover_cluster(const JoinConfig& config, const HttpTransport& transport,
                                   long timeout_seconds) {
  std::string body = fetch_cluster_info(config, transport, "", timeout_seconds);
  YAML::Node configmap;
  try {
    configmap = YAML::Load(body);
  } catch (const std::exception&) {
    throw DiscoveryError(DiscoveryFailure::no_cluster_info,
                         "cluster-info from " + config.endpoint + " is not JSON");
  }
  YAML::Node data = configmap.IsMap() ? configmap["data"] : YAML::Node();
  if (!data || !data.IsMap() || !data["kubeconfig"]) {
    throw DiscoveryError(DiscoveryFailure::no_cluster_info,
                         "cluster-info from " + config.endpoint + " has no kubeconfig");
  }
  std::string kubeconfig = data["kubeconfig"].Scalar();
  std::string key = "jws-kubeconfig-" + config.token.id;
  if (!data[key]) {
    throw DiscoveryError(
        DiscoveryFailure::token_unknown,
        fmt::format("cluster-info has no signature for token id {}: the token does not exist on "
                    "this control plane or has expired",
                    config.token.id));
  }
  JwsCheck check =
      verify_detached_jws(data[key].Scalar(), kubeconfig, config.token.id, config.token.secret);
  if (check != JwsCheck::valid) {
    throw DiscoveryError(
        DiscoveryFailure::bad_signature,
        fmt::format("refusing cluster-info from {}: {}", config.endpoint, describe(check)));
  }
  Kubeconfig cluster;
  try {
    cluster = parse_kubeconfig_cluster(kubeconfig, "cluster-info");
  } catch (const Error& e) {
    throw DiscoveryError(DiscoveryFailure::no_cluster_info, e.what());
  } catch (const YAML::Exception& e) {
    // A shape the parser did not foresee is still a refusal, never an escaped exception.
    throw DiscoveryError(DiscoveryFailure::no_cluster_info,
                         "cluster-info's kubeconfig is malformed: " + e.msg);
  }
  // kubeadm accepts a bundle when any certificate in it matches the pin; kiln then trusts
  // only those: a CA appended by someone else who holds the token must not vouch for the
  // server in the verified fetch.
  std::string pinned;
  try {
    pinned = certificates_matching_pin(cluster.ca_pem, config.ca_cert_hash);
  } catch (const Error& e) {
    throw DiscoveryError(DiscoveryFailure::no_cluster_info,
                         fmt::format("cluster-info from {}: {}", config.endpoint, e.what()));
  }
  if (pinned.empty()) {
    throw DiscoveryError(
        DiscoveryFailure::ca_mismatch,
        fmt::format(
            "refusing {}: its CA is {} but the join config pins {} (a different cluster, or "
            "a man-in-the-middle)",
            config.endpoint, ca_pin_from_pem(cluster.ca_pem), config.ca_cert_hash));
  }
  // Only now is the CA trusted; the server must prove it holds a key that CA certified.
  std::string verified = fetch_cluster_info(config, transport, pinned, timeout_seconds);
  YAML::Node again;
  try {
    again = YAML::Load(verified);
  } catch (const std::exception&) {
    throw DiscoveryError(DiscoveryFailure::tls_mismatch,
                         "cluster-info from the CA-verified fetch is not JSON");
  }
  if (!again.IsMap() || !again["data"] || !again["data"]["kubeconfig"] ||
      again["data"]["kubeconfig"].Scalar() != kubeconfig) {
    throw DiscoveryError(DiscoveryFailure::tls_mismatch,
                         "cluster-info changed between the anonymous and the CA-verified fetch");
  }
  return {kubeconfig, pinned, cluster.server};
}

void check_not_expired(const JoinConfig& config, long long now) {
  if (now < config.expires) return;
  throw Error(
      fmt::format("the bootstrap token {} expired at {} ({} minutes ago); create a new one with "
                  "`kiln token create` and stamp it",
                  config.token.masked(), format_utc(config.expires), (now - config.expires) / 60));
}

}  // namespace kiln
