#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include "builder/join/join_config.h"

namespace kiln {

/// Writes a join config initrd for netbooted nodes: an uncompressed cpio (newc) holding
/// /kiln/join.yaml, which a PXE loader appends after kiln's initrd (iPXE `initrd`, GRUB's
/// `initrd A B`). kiln-netroot moves it to /run before switch-root. The file holds the token,
/// so it is created 0600 and appears complete or not at all. With `network` (a valid network
/// config's text) it also holds /kiln/network.yaml and the systemd-networkd files it renders
/// to, under /etc/systemd/network, which the initrd's networkd applies instead of DHCP.
void write_join_initrd(const JoinConfig& config, const std::filesystem::path& out,
                       const std::optional<std::string>& network = std::nullopt);

}  // namespace kiln
