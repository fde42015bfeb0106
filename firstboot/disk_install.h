#pragma once

#include <functional>
#include <optional>
#include <string>

namespace kiln::firstboot {

/// `pxe.install`: a node netbooted with `kiln.install_url=URL kiln.install_sha256=HEX` writes
/// that disk image (the raw.zst output) onto its first empty disk — one whose first MiB is
/// zero, so no disk holding data is ever chosen — checks it against the digest, puts
/// `join_yaml` and the static `network_yaml` (each if any) into the new disk's KILNCFG
/// partition, and reboots into it. Returns
/// true when it installed (a reboot is then under way); false when there is nothing to do or
/// no empty disk, and the node keeps running from RAM. Throws kiln::Error on failure.
bool install_to_empty_disk(const std::optional<std::string>& join_yaml,
                           const std::optional<std::string>& network_yaml,
                           const std::function<void(const std::string&)>& status);

/// The first empty whole disk under `sys_block` (normally /sys/block), read through `dev`;
/// skips loop, RAM, device-mapper, optical, floppy, removable and read-only devices.
std::optional<std::string> first_empty_disk(const std::string& sys_block = "/sys/block",
                                            const std::string& dev = "/dev");

}  // namespace kiln::firstboot
