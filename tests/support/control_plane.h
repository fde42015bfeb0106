#pragma once

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "builder/fetch/http.h"
#include "builder/join/kubeconfig.h"

namespace kiln::test {

/// KEY=value lines tests/cluster/control-plane.sh wrote when the control plane came up
/// (ADMIN_KUBECONFIG, API_URL, GUEST_API_URL, ...).
inline const std::map<std::string, std::string>& control_plane_env() {
  static const std::map<std::string, std::string> values = [] {
    std::map<std::string, std::string> out;
    std::ifstream in(std::filesystem::path(KILN_CONTROL_PLANE_STATE) / "env");
    for (std::string line; std::getline(in, line);) {
      auto eq = line.find('=');
      if (eq != std::string::npos) out[line.substr(0, eq)] = line.substr(eq + 1);
    }
    return out;
  }();
  return values;
}

inline const std::string& cp(const std::string& key) {
  auto it = control_plane_env().find(key);
  if (it == control_plane_env().end()) FAIL("control-plane.sh did not report " << key);
  return it->second;
}

/// A GET on the control plane as its admin (the kubeconfig's client certificate).
inline http::Response admin_get(const std::string& path) {
  Kubeconfig admin = load_kubeconfig(cp("ADMIN_KUBECONFIG"));
  http::Request request;
  request.url = admin.server + path;
  request.ca_pem = admin.ca_pem;
  request.client_cert_pem = admin.client_cert_pem;
  request.client_key_pem = admin.client_key_pem;
  return http::request(request);
}

}  // namespace kiln::test
