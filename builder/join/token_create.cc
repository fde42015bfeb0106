#include "builder/join/token_create.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include "builder/fetch/http.h"
#include "builder/join/ca_pin.h"
#include "builder/rootfs/manifest.h"
#include "builder/util/error.h"

namespace kiln {

std::string bootstrap_token_secret(const BootstrapToken& token, long long expires,
                                   const TokenRequest& request) {
  std::string groups;
  for (const auto& group : request.groups) groups += (groups.empty() ? "" : ",") + group;
  return fmt::format(
      R"({{"apiVersion":"v1","kind":"Secret","type":"bootstrap.kubernetes.io/token",)"
      R"("metadata":{{"name":{},"namespace":"kube-system"}},)"
      R"("stringData":{{"token-id":{},"token-secret":{},"expiration":{},"description":{},)"
      R"("usage-bootstrap-authentication":"true","usage-bootstrap-signing":"true","auth-extra-groups":{}}}}})",
      json_quote("bootstrap-token-" + token.id), json_quote(token.id), json_quote(token.secret),
      json_quote(format_utc(expires)), json_quote(request.description), json_quote(groups));
}

namespace {

/// The `message` of a Kubernetes Status object, or the raw body when it is not one.
std::string status_message(const std::string& body) {
  try {
    YAML::Node status = YAML::Load(body);  // JSON is YAML
    if (status.IsMap() && status["message"]) return status["message"].Scalar();
  } catch (const std::exception&) {
  }
  return body.substr(0, 300);
}

}  // namespace

JoinConfig create_bootstrap_token(const Kubeconfig& kubeconfig, const TokenRequest& request,
                                  long long now) {
  JoinConfig config = request.node;
  config.token = generate_bootstrap_token();
  config.expires = now + request.ttl_seconds;
  config.endpoint = request.endpoint.empty() ? kubeconfig.server : request.endpoint;
  config.control_plane_name =
      request.control_plane_name.empty() ? kubeconfig.cluster_name : request.control_plane_name;
  config.ca_cert_hash = ca_pin_from_pem(kubeconfig.ca_pem);

  http::Request call;
  call.method = "POST";
  call.url = kubeconfig.server + "/api/v1/namespaces/kube-system/secrets";
  call.body = bootstrap_token_secret(config.token, config.expires, request);
  call.ca_pem = kubeconfig.ca_pem;
  call.client_cert_pem = kubeconfig.client_cert_pem;
  call.client_key_pem = kubeconfig.client_key_pem;
  call.bearer_token = kubeconfig.bearer_token;
  http::Response response = http::request(call);
  if (!response.error.empty()) {
    throw Error(fmt::format("{} the API server at {}: {}",
                            response.status ? "no usable answer from" : "cannot reach",
                            kubeconfig.server, response.error));
  }
  if (response.status != 201) {
    throw Error(
        fmt::format("the API server at {} refused to create the bootstrap token (HTTP {}): {}",
                    kubeconfig.server, response.status, status_message(response.body)));
  }
  return config;
}

}  // namespace kiln
