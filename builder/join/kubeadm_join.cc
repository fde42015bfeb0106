#include "builder/join/kubeadm_join.h"

#include <yaml-cpp/yaml.h>

#include "builder/util/error.h"

namespace kiln {

std::string api_server_endpoint(const std::string& url) {
  std::string rest = url.rfind("https://", 0) == 0 ? url.substr(8) : url;
  while (!rest.empty() && rest.back() == '/') rest.pop_back();
  if (rest.empty()) throw Error("the endpoint '" + url + "' names no host");
  bool has_port = rest.back() != ']' &&
                  rest.find(':', rest.rfind(']') == std::string::npos ? 0 : rest.rfind(']')) !=
                      std::string::npos;
  return has_port ? rest : rest + ":443";
}

std::string render_kubeadm_join_configuration(const JoinConfig& config,
                                              const std::string& node_name,
                                              const Version& kubeadm_version) {
  bool v1beta4 = kubeadm_version.minor >= 31;
  std::map<std::string, std::string> kubelet_args = config.kubelet_extra_args;
  if (!config.labels.empty()) {
    std::string labels;
    for (const auto& [key, value] : config.labels) {
      // One flag carries every label: a ',' or '=' inside one would add others. Parsed
      // configs are already checked; this guards configs built in code.
      if (!label_key_problem(key).empty() || !label_value_problem(value).empty())
        throw Error("label '" + key + "' is not a valid Kubernetes label");
      labels += (labels.empty() ? "" : ",") + key + "=" + value;
    }
    kubelet_args["node-labels"] = labels;
  }
  YAML::Emitter out;
  out << YAML::BeginMap;
  out << YAML::Key << "apiVersion" << YAML::Value
      << (v1beta4 ? "kubeadm.k8s.io/v1beta4" : "kubeadm.k8s.io/v1beta3");
  out << YAML::Key << "kind" << YAML::Value << "JoinConfiguration";
  out << YAML::Key << "discovery" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "bootstrapToken" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "apiServerEndpoint" << YAML::Value << api_server_endpoint(config.endpoint);
  out << YAML::Key << "token" << YAML::Value << config.token.text();
  out << YAML::Key << "caCertHashes" << YAML::Value << YAML::BeginSeq << config.ca_cert_hash
      << YAML::EndSeq;
  out << YAML::EndMap;
  out << YAML::Key << "tlsBootstrapToken" << YAML::Value << config.token.text();
  out << YAML::EndMap;
  out << YAML::Key << "nodeRegistration" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "name" << YAML::Value << node_name;
  out << YAML::Key << "criSocket" << YAML::Value << "unix:///run/containerd/containerd.sock";
  if (!kubelet_args.empty()) {
    out << YAML::Key << "kubeletExtraArgs" << YAML::Value;
    if (v1beta4) {  // a list of name/value pairs since v1beta4
      out << YAML::BeginSeq;
      for (const auto& [name, value] : kubelet_args) {
        out << YAML::BeginMap << YAML::Key << "name" << YAML::Value << name << YAML::Key << "value"
            << YAML::Value << YAML::DoubleQuoted << value << YAML::EndMap;
      }
      out << YAML::EndSeq;
    } else {
      out << YAML::BeginMap;
      for (const auto& [name, value] : kubelet_args)
        out << YAML::Key << name << YAML::Value << YAML::DoubleQuoted << value;
      out << YAML::EndMap;
    }
  }
  // An empty list, not a missing key: kubeadm would otherwise apply its own defaults.
  out << YAML::Key << "taints" << YAML::Value << YAML::BeginSeq;
  for (const auto& taint : config.taints) out << taint;
  out << YAML::EndSeq;
  out << YAML::EndMap << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

}  // namespace kiln
