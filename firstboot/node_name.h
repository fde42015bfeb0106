#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include "builder/util/node_name_policy.h"

namespace kiln::firstboot {

/// Where the facts behind a node name come from; tests point these at fixture trees.
struct NodeFacts {
  std::string hostname;
  std::filesystem::path sys_class_net = "/sys/class/net";
  std::filesystem::path dmi_product_uuid = "/sys/class/dmi/id/product_uuid";
  std::string cloud_hostname;  ///< from the cloud's metadata service, when it answered
};

/// The node's Kubernetes name under a policy, lower-cased to a valid DNS-1123 name:
/// hostname (falls back to the MAC form when the hostname is unset or "localhost"),
/// mac ("node-" + the first wired interface's MAC), dmi (the SMBIOS product UUID) or
/// cloud (the metadata service's local hostname, else the hostname). Throws kiln::Error
/// naming what was missing.
std::string node_name(NodeNamePolicy policy, const NodeFacts& facts);

/// The image's default policy, recorded from the recipe's node_name at build time
/// (kImageNodeNamePolicyPath); hostname when the file is missing (images built before kiln
/// recorded it) or does not name a policy.
NodeNamePolicy image_node_name_policy(const std::filesystem::path& file = kImageNodeNamePolicyPath);

/// The policy a node names itself by: the join config's when it sets one, else the image's.
NodeNamePolicy effective_node_name_policy(
    const std::optional<NodeNamePolicy>& from_join_config,
    const std::filesystem::path& image_file = kImageNodeNamePolicyPath);

}  // namespace kiln::firstboot
