#pragma once

#include <string>
#include <utility>
#include <vector>

namespace kiln {

/// The dracut module that lets the same initrd boot a node from the network: when the kernel
/// command line carries `kiln.root_url=`, it brings the network up (systemd-networkd, DHCP),
/// runs kiln-netroot to fetch and verify the root image into RAM, mounts it on /sysroot and
/// puts /var on a tmpfs (so the /etc overlay lives in RAM too). Without that argument it does
/// nothing. As (path in the image, content); kiln-netroot itself is copied in separately.
const std::vector<std::pair<std::string, std::string>>& netboot_initrd_files();

/// Where kiln-netroot is installed in the image, for dracut to pick up.
inline constexpr const char* kNetrootBinaryPath = "usr/lib/kiln/kiln-netroot";

}  // namespace kiln
