#include "builder/recipe/recipe.h"

#include <regex>

namespace kiln {

std::string Version::text() const {
  return std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(patch);
}

std::optional<Version> parse_version(const std::string& text) {
  static const std::regex pattern(
      R"(^v?(0|[1-9][0-9]{0,3})\.(0|[1-9][0-9]{0,3})\.(0|[1-9][0-9]{0,3})$)");
  std::smatch match;
  if (!std::regex_match(text, match, pattern)) return std::nullopt;
  return Version{std::stoi(match[1]), std::stoi(match[2]), std::stoi(match[3])};
}

const char* to_string(Arch arch) {
  return arch == Arch::amd64 ? "amd64" : "arm64";
}

const char* to_string(KubernetesSource source) {
  switch (source) {
    case KubernetesSource::automatic:
      return "auto";
    case KubernetesSource::release:
      return "release";
    case KubernetesSource::mirror:
      return "mirror";
    case KubernetesSource::source:
      return "source";
  }
  return "?";
}

const char* to_string(ContainerdSource source) {
  return source == ContainerdSource::debian ? "debian" : "release";
}

const char* to_string(NodeNamePolicy policy) {
  switch (policy) {
    case NodeNamePolicy::hostname:
      return "hostname";
    case NodeNamePolicy::mac:
      return "mac";
    case NodeNamePolicy::dmi:
      return "dmi";
    case NodeNamePolicy::cloud:
      return "cloud";
  }
  return "?";
}

std::optional<NodeNamePolicy> parse_node_name_policy(const std::string& text) {
  for (auto policy : {NodeNamePolicy::hostname, NodeNamePolicy::mac, NodeNamePolicy::dmi,
                      NodeNamePolicy::cloud}) {
    if (text == to_string(policy)) return policy;
  }
  return std::nullopt;
}

}  // namespace kiln
