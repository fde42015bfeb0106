#pragma once

#include <filesystem>

namespace kiln::firstboot {

/// Where kiln-netroot keeps a netbooted node's network config from its join initrd.
inline const std::filesystem::path kNetbootNetworkConfig = "/run/kiln/netboot-network.yaml";

/// `kiln-firstboot network` (kiln-network.service, before systemd-networkd): renders the
/// network config stamped into this node (`kiln stamp --network`) into systemd-networkd files
/// under /run/systemd/network. The config comes from the KILNCFG partition, or for a netbooted
/// node from its join initrd. Without one it writes nothing and DHCP configures the node.
/// Returns the exit status: 1 for a config that does not parse (reported with file:line:col).
int apply_static_network();

}  // namespace kiln::firstboot
