#pragma once

#include "builder/plan/plan.h"
#include "builder/rootfs/root_tree.h"

namespace kiln {

/// Where the node-side update agent reads what the recipe's `updates:` said.
inline constexpr const char* kUpdateConfigPath = "/usr/lib/kiln/update.conf";
inline constexpr const char* kTrustedKeysDir = "/usr/lib/kiln/update-keys";

/// The image's identity and day-2 updates: IMAGE_ID and IMAGE_VERSION in os-release, the
/// kiln-update agent with its check timer and boot-health unit, the update source, reboot
/// policy and the public keys this image trusts to sign releases, and a hardware watchdog
/// setting so that a hung new version resets into the old one.
void write_update_config(RootTree& tree, const BuildPlan& plan);

/// update.conf's text: `key=value` lines the agent reads (name, arch, version, url, reboot,
/// tries).
std::string render_update_config(const Recipe& recipe);

}  // namespace kiln
