#include "builder/join/kubeconfig.h"

#include <yaml-cpp/yaml.h>

#include "builder/util/base64.h"
#include "builder/util/error.h"
#include "builder/util/files.h"

namespace kiln {
namespace fs = std::filesystem;

namespace {

YAML::Node named(const YAML::Node& list, const std::string& name, const char* what,
                 const std::string& source) {
  if (list.IsSequence()) {
    for (const auto& item : list) {
      if (item["name"] && item["name"].Scalar() == name) return item[what];
    }
  }
  throw Error(source + ": no " + std::string(what) + " named '" + name + "'");
}

/// The PEM behind `<key>-data` (base64) or `<key>` (a file path).
std::string pem_field(const YAML::Node& node, const std::string& key, const fs::path& base_dir,
                      const std::string& source) {
  if (YAML::Node data = node[key + "-data"]; data && data.IsScalar()) {
    auto decoded = base64_decode(data.Scalar());
    if (!decoded) throw Error(source + ": " + key + "-data is not valid base64");
    return *decoded;
  }
  if (YAML::Node path = node[key]; path && path.IsScalar()) {
    fs::path file =
        fs::path(path.Scalar()).is_absolute() ? fs::path(path.Scalar()) : base_dir / path.Scalar();
    return read_file(file);
  }
  return {};
}

}  // namespace

Kubeconfig parse_kubeconfig(const std::string& text, const fs::path& base_dir,
                            const std::string& source) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::ParserException& e) {
    throw Error(source + ":" + std::to_string(e.mark.line + 1) + ": invalid YAML: " + e.msg);
  }
  if (!root.IsMap() || !root["current-context"] || root["current-context"].Scalar().empty()) {
    throw Error(source + ": not a kubeconfig with a current-context");
  }
  YAML::Node context = named(root["contexts"], root["current-context"].Scalar(), "context", source);
  if (!context["cluster"] || !context["user"])
    throw Error(source + ": the current context needs a cluster and a user");
  Kubeconfig config;
  config.cluster_name = context["cluster"].Scalar();
  YAML::Node cluster = named(root["clusters"], config.cluster_name, "cluster", source);
  YAML::Node user = named(root["users"], context["user"].Scalar(), "user", source);
  if (!cluster["server"])
    throw Error(source + ": cluster '" + config.cluster_name + "' has no server");
  config.server = cluster["server"].Scalar();
  while (!config.server.empty() && config.server.back() == '/') config.server.pop_back();
  if (config.server.rfind("https://", 0) != 0)
    throw Error(source + ": the server " + config.server + " is not https://");
  config.ca_pem = pem_field(cluster, "certificate-authority", base_dir, source);
  if (config.ca_pem.empty()) {
    throw Error(
        source + ": cluster '" + config.cluster_name +
        "' has no certificate-authority; kiln pins nodes to the control plane's CA and needs it");
  }
  if (user.IsMap()) {
    config.client_cert_pem = pem_field(user, "client-certificate", base_dir, source);
    config.client_key_pem = pem_field(user, "client-key", base_dir, source);
    if (user["token"]) config.bearer_token = user["token"].Scalar();
  }
  if (config.bearer_token.empty() &&
      (config.client_cert_pem.empty() || config.client_key_pem.empty())) {
    throw Error(source + ": the current user has neither a client certificate and key nor a token");
  }
  return config;
}

Kubeconfig parse_kubeconfig_cluster(const std::string& text, const std::string& source) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw Error(source + ": invalid YAML: " + e.msg);
  }
  // Every node's shape is checked before it is indexed: yaml-cpp throws its own exceptions on
  // operator[] of a scalar, and this text came from the network.
  YAML::Node clusters = root.IsMap() ? root["clusters"] : YAML::Node();
  if (!clusters || !clusters.IsSequence() || clusters.size() == 0 || !clusters[0].IsMap() ||
      !clusters[0]["cluster"] || !clusters[0]["cluster"].IsMap()) {
    throw Error(source + ": the kubeconfig names no cluster");
  }
  YAML::Node cluster = clusters[0]["cluster"];
  Kubeconfig config;
  if (YAML::Node name = clusters[0]["name"]; name && name.IsScalar())
    config.cluster_name = name.Scalar();
  if (!cluster["server"] || !cluster["server"].IsScalar())
    throw Error(source + ": the cluster has no server");
  config.server = cluster["server"].Scalar();
  // The control plane's word is only about itself: a path would make this node read one of
  // its own files (/dev/zero never ends), so only the inline form is accepted.
  if (cluster["certificate-authority"]) {
    throw Error(source +
                ": the cluster names its CA as a file (certificate-authority); only inline "
                "certificate-authority-data is accepted from a control plane");
  }
  config.ca_pem = pem_field(cluster, "certificate-authority", {}, source);
  if (config.ca_pem.empty())
    throw Error(source + ": the cluster has no certificate-authority-data");
  return config;
}

Kubeconfig load_kubeconfig(const fs::path& file) {
  return parse_kubeconfig(read_file(file), file.parent_path(), file.string());
}

}  // namespace kiln
