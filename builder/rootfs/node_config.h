#pragma once

#include <string>

#include "builder/plan/plan.h"
#include "builder/rootfs/root_tree.h"

namespace kiln {

/// What the node configuration needs from earlier stages.
struct NodeConfigInputs {
  std::string pause_image;  ///< the sandbox image the kubelet version expects
  bool containerd_v2 = false;
  bool containerd_from_release = false;
};

/// Writes everything `kubeadm join` expects of a worker: containerd config with the systemd
/// cgroup driver and pause image, kubelet.service plus kubeadm's drop-in (enabled),
/// crictl.yaml, kernel modules and sysctls, swap off, CNI plugin path, empty machine-id, and
/// the recipe's node-name policy for the first-boot agent (kImageNodeNamePolicyPath).
void write_node_config(RootTree& tree, const BuildPlan& plan, const NodeConfigInputs& inputs);

/// Enables a unit of /usr/lib/systemd/system for `target`, as `systemctl enable` would: a
/// symlink in /etc/systemd/system/TARGET.wants.
void enable_unit(RootTree& tree, const std::string& unit,
                 const std::string& target = "multi-user.target");

/// Removes secrets a package generated at install time that must be unique per node
/// (SSH host keys); the image regenerates them on first boot.
void remove_per_node_secrets(RootTree& tree);

/// Adds the recipe's users: passwd/shadow/group entries, home, authorized_keys.
void add_users(RootTree& tree, const BuildPlan& plan);

/// Writes the recipe's inline files with their owners resolved against the image's passwd.
void add_recipe_files(RootTree& tree, const BuildPlan& plan);

}  // namespace kiln
