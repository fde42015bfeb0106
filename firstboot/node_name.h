#pragma once

#include <filesystem>
#include <string>

#include "builder/recipe/recipe.h"

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

}  // namespace kiln::firstboot
