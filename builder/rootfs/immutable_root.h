#pragma once

#include "builder/plan/plan.h"
#include "builder/rootfs/root_tree.h"

namespace kiln {

/// Prepares the tree to run from a read-only root: networking by DHCP on every wired
/// interface, the state partition grown to fill its disk on every boot, writable paths the
/// kubelet needs pointed into /var, and the mount points the booted system expects.
void write_immutable_root_config(RootTree& tree, const BuildPlan& plan);

}  // namespace kiln
