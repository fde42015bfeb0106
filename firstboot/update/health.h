#pragma once

#include <string>

#include "firstboot/update/node_paths.h"

namespace kiln::update {

/// One look at whether this boot is healthy enough to keep: /var is the state partition,
/// containerd is active, and on a joined node the kubelet answers its health check and its
/// Node object carries this boot's kubelet version (status posted by the new kubelet).
/// Returns "" when healthy, else the first thing that is not.
std::string health_problem(const NodePaths& paths);

/// "v1.35.0" from `kubelet --version`; "" when it cannot run.
std::string kubelet_version();

}  // namespace kiln::update
