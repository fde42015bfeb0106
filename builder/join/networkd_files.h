#pragma once

#include <string>
#include <utility>
#include <vector>

#include "builder/join/network_config.h"

namespace kiln {

/// The systemd-networkd files (name, content) that configure `config`: a .network per link and
/// a .netdev per bond and VLAN, named 10-kiln-* so they sort before the image's catch-all DHCP
/// network.
std::vector<std::pair<std::string, std::string>> networkd_files(const NetworkConfig& config);

/// One line per link ("uplink (mac 52:54:00:12:34:56): 192.168.7.10/24 via 192.168.7.1"), for
/// `kiln stamp --show`.
std::vector<std::string> describe_network(const NetworkConfig& config);

}  // namespace kiln
