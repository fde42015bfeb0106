#include "builder/util/node_name_policy.h"

namespace kiln {

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

const char* to_string(const std::optional<NodeNamePolicy>& policy) {
  return policy ? to_string(*policy) : "image default";
}

}  // namespace kiln
