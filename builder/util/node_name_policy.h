#pragma once

#include <optional>
#include <string>

namespace kiln {

/// How a node names itself when it joins: the recipe sets the image's default, a join config
/// may override it per node pool.
enum class NodeNamePolicy { hostname, mac, dmi, cloud };

const char* to_string(NodeNamePolicy policy);

/// Where an image records its recipe's node_name, for the first-boot agent: one line, the
/// policy's name. A join config's node.namePolicy overrides it.
constexpr const char* kImageNodeNamePolicyPath = "/usr/lib/kiln/node-name-policy";

/// "hostname", "mac", "dmi" or "cloud"; nullopt otherwise.
std::optional<NodeNamePolicy> parse_node_name_policy(const std::string& text);

/// A join config's policy when it names one, else "image default" (the recipe's node_name).
const char* to_string(const std::optional<NodeNamePolicy>& policy);

}  // namespace kiln
