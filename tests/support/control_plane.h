#pragma once

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "builder/fetch/http.h"
#include "builder/join/kubeconfig.h"
#include "builder/util/process.h"

namespace kiln::test {

/// KEY=value lines tests/cluster/control-plane.sh wrote into STATE/env when a control plane
/// came up (ADMIN_KUBECONFIG, API_URL, GUEST_API_URL, KUBERNETES_VERSION, ...).
inline std::map<std::string, std::string> read_control_plane_env(
    const std::filesystem::path& state) {
  std::map<std::string, std::string> out;
  std::ifstream in(state / "env");
  for (std::string line; std::getline(in, line);) {
    auto eq = line.find('=');
    if (eq != std::string::npos) out[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return out;
}

/// The shared control plane of the [cluster] and join tests (the control_plane fixture).
inline const std::map<std::string, std::string>& control_plane_env() {
  static const std::map<std::string, std::string> values =
      read_control_plane_env(KILN_CONTROL_PLANE_STATE);
  return values;
}

inline const std::string& cp(const std::string& key) {
  auto it = control_plane_env().find(key);
  if (it == control_plane_env().end()) FAIL("control-plane.sh did not report " << key);
  return it->second;
}

/// A call on a control plane as its admin (the kubeconfig's client certificate); `request.url`
/// is the path on the API server.
inline http::Response admin_request(const std::string& admin_kubeconfig, http::Request request) {
  Kubeconfig admin = load_kubeconfig(admin_kubeconfig);
  request.url = admin.server + request.url;
  request.ca_pem = admin.ca_pem;
  request.client_cert_pem = admin.client_cert_pem;
  request.client_key_pem = admin.client_key_pem;
  return http::request(request);
}

/// A GET on the shared control plane as its admin.
inline http::Response admin_get(const std::string& path) {
  http::Request request;
  request.url = path;
  return admin_request(cp("ADMIN_KUBECONFIG"), request);
}

/// A control plane of one test's own, for a test that changes it (an upgrade): on ports apart
/// from the shared one's, taken down when the test ends.
class OwnControlPlane {
 public:
  OwnControlPlane(std::filesystem::path state, const std::filesystem::path& bin)
      : state_(std::move(state)) {
    script("up", bin);
  }
  ~OwnControlPlane() {
    try {
      script("down", {});
    } catch (const std::exception&) {
    }
  }
  OwnControlPlane(const OwnControlPlane&) = delete;
  OwnControlPlane& operator=(const OwnControlPlane&) = delete;

  /// The same cluster on newer binaries: API server, controllers, then the cluster configuration.
  void upgrade(const std::filesystem::path& bin) { script("upgrade", bin); }

  std::string env(const std::string& key) const {
    auto values = read_control_plane_env(state_);
    auto it = values.find(key);
    if (it == values.end()) FAIL("control-plane.sh did not report " << key);
    return it->second;
  }

  http::Response get(const std::string& path) const {
    http::Request request;
    request.url = path;
    return admin_request(env("ADMIN_KUBECONFIG"), request);
  }

  http::Response merge_patch(const std::string& path, const std::string& body) const {
    http::Request request;
    request.method = "PATCH";
    request.url = path;
    request.body = body;
    request.content_type = "application/merge-patch+json";
    return admin_request(env("ADMIN_KUBECONFIG"), request);
  }

 private:
  void script(const std::string& command, const std::filesystem::path& bin) const {
    std::vector<std::string> argv = {KILN_SOURCE_DIR "/tests/cluster/control-plane.sh", command,
                                     state_.string()};
    if (!bin.empty()) argv.push_back(bin.string());
    run(argv,
        {.env = {{"CP_API_PORT", "27443"}, {"CP_ETCD_PORT", "23379"}, {"CP_KCM_PORT", "21257"}},
         .quiet = true});
  }

  std::filesystem::path state_;
};

}  // namespace kiln::test
