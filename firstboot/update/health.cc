#include "firstboot/update/health.h"

#include <fmt/format.h>

#include <fstream>
#include <sstream>

#include "builder/join/kubeconfig.h"
#include "builder/update/node_status.h"
#include "builder/util/error.h"
#include "builder/util/files.h"
#include "builder/util/process.h"
#include "firstboot/https_client.h"

namespace kiln::update {
namespace fs = std::filesystem;

namespace {

/// The device /var is mounted from, per /proc/self/mountinfo ("" when /var is no mount).
std::string var_source() {
  std::ifstream in("/proc/self/mountinfo");
  for (std::string line; std::getline(in, line);) {
    std::istringstream fields(line);
    std::string id, parent, numbers, root, mount_point;
    fields >> id >> parent >> numbers >> root >> mount_point;
    if (mount_point != "/var") continue;
    auto dash = line.find(" - ");
    if (dash == std::string::npos) continue;
    std::istringstream tail(line.substr(dash + 3));
    std::string type, source;
    tail >> type >> source;
    return source;
  }
  return "";
}

bool unit_active(const std::string& unit) {
  try {
    run({"systemctl", "is-active", "--quiet", unit}, {.quiet = true});
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

/// The node name `kiln-firstboot` recorded: "joined TARGET as NODE at WHEN".
std::string joined_node_name(const fs::path& marker) {
  std::string record = read_file(marker);
  auto as = record.find(" as "), at = record.rfind(" at ");
  if (as == std::string::npos || at == std::string::npos || at < as) return "";
  return record.substr(as + 4, at - as - 4);
}

std::string node_problem(const NodePaths& paths, const std::string& version) {
  std::string node = joined_node_name(paths.joined_marker);
  if (node.empty()) return "the join record names no node";
  Kubeconfig kubeconfig;
  try {
    kubeconfig = load_kubeconfig(paths.kubelet_kubeconfig);
  } catch (const std::exception& e) {
    return std::string("the kubelet's kubeconfig cannot be read: ") + e.what();
  }
  http::Request request;
  request.url = kubeconfig.server + "/api/v1/nodes/" + node;
  request.ca_pem = kubeconfig.ca_pem;
  request.client_cert_pem = kubeconfig.client_cert_pem;
  request.client_key_pem = kubeconfig.client_key_pem;
  request.timeout_seconds = 20;
  http::Response response = firstboot::request(request);
  if (!response.error.empty()) return "the API server cannot be reached: " + response.error;
  if (response.status != 200)
    return fmt::format("the API server answered HTTP {} for Node {}", response.status, node);
  // The answer is the network's: read without exceptions (a "status" that is a string
  // would make nlohmann's operator[] throw).
  std::optional<std::string> reported = reported_kubelet_version(response.body);
  if (!reported) return "Node " + node + " has no kubelet version in its status yet";
  if (*reported != version) {
    return fmt::format("Node {} reports kubelet {}, not this boot's {} (status not posted yet)",
                       node, *reported, version);
  }
  return "";
}

}  // namespace

std::string kubelet_version() {
  try {
    std::string out =
        run({"kubelet", "--version"}, {.capture_stdout = true, .quiet = true}).stdout_text;
    auto v = out.find(" v");
    if (v == std::string::npos) return "";
    std::string version = out.substr(v + 1);
    while (!version.empty() && (version.back() == '\n' || version.back() == ' '))
      version.pop_back();
    return version;
  } catch (const std::exception&) {
    return "";
  }
}

std::string health_problem(const NodePaths& paths) {
  std::string source = var_source();
  std::error_code ec;
  fs::path state = fs::canonical(paths.partitions / "state", ec);
  if (source.empty()) return "/var is not mounted";
  if (ec || fs::canonical(source, ec) != state)
    return "/var is mounted from " + source + ", not the state partition";
  if (!unit_active("containerd.service")) return "containerd is not active";
  if (!fs::exists(paths.joined_marker, ec)) return "";  // not joined yet: nothing more to ask
  http::Request healthz;
  healthz.url = "http://127.0.0.1:10248/healthz";
  healthz.timeout_seconds = 10;
  http::Response answer = firstboot::request(healthz);
  if (answer.status != 200 || answer.body != "ok") return "the kubelet is not healthy (healthz)";
  std::string version = kubelet_version();
  if (version.empty()) return "kubelet --version does not run";
  return node_problem(paths, version);
}

}  // namespace kiln::update
