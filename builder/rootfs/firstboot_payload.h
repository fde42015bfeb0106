#pragma once

#include <filesystem>
#include <string>

#include "builder/plan/plan.h"

namespace kiln {

/// The first-boot agent and its unit, built with kiln and installed into every image, and the
/// netboot root fetcher that goes into every initrd.
struct FirstbootPayload {
  std::filesystem::path agent;         ///< static kiln-firstboot binary
  std::filesystem::path unit;          ///< kiln-firstboot.service
  std::filesystem::path install_unit;  ///< kiln-install.service (pxe.install)
  std::filesystem::path network_unit;  ///< kiln-network.service (stamped static network)
  std::filesystem::path update_agent;  ///< static kiln-update binary (day-2 updates)
  std::string digest;                  ///< SHA-256 over all of the above, for the rootfs key
  std::filesystem::path netroot;       ///< static kiln-netroot, for the initrd (base stage)
  std::string netroot_digest;          ///< its SHA-256, for the base cache key
};

/// The payload for images of `arch`. Looks in $KILN_FIRSTBOOT_DIR, else beside the running
/// kiln executable (where the build puts them); arm64 binaries are in its `arm64` folder.
/// Throws kiln::Error saying how to build them when absent.
const FirstbootPayload& firstboot_payload(Arch arch);

/// What kiln adds to a recipe's stages (initrd support, netroot, the agent's digest), for
/// the plan to hash and the stages to install.
KilnPayload kiln_payload(const Recipe& recipe);

}  // namespace kiln
