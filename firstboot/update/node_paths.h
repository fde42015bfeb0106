#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace kiln::update {

/// How the agent's steps report progress: a line for the journal (and the console).
using Say = std::function<void(const std::string&)>;

/// Everything kiln-update reads and writes on a node. The defaults are the node's real
/// devices and files; tests point each at a file or folder of their own.
struct NodePaths {
  std::filesystem::path config = "/usr/lib/kiln/update.conf";
  std::filesystem::path trusted_keys = "/usr/lib/kiln/update-keys";
  std::filesystem::path cmdline = "/proc/cmdline";
  std::filesystem::path state = "/var/lib/kiln/update";
  /// The ESP's contents; empty = mount /dev/disk/by-partlabel/esp on /run/kiln/esp.
  std::filesystem::path esp;
  /// Where the slot partitions are found by label: root, root-verity, root-b, root-b-verity.
  std::filesystem::path partitions = "/dev/disk/by-partlabel";
  /// The config partition (a per-node update URL from `kiln stamp --update-url`).
  std::filesystem::path config_partition = "/dev/disk/by-partlabel/kiln-config";
  std::filesystem::path reboot_required = "/var/run/reboot-required";
  std::filesystem::path joined_marker = "/var/lib/kiln/joined";
  std::filesystem::path kubelet_kubeconfig = "/etc/kubernetes/kubelet.conf";
  /// The kubelet version the node's kubelet configuration was last written for (by the join,
  /// then by each kubelet upgrade).
  std::filesystem::path kubelet_version_record = "/var/lib/kiln/kubelet-version";
  /// Tests: print what would reboot the machine instead of rebooting it.
  bool no_reboot = false;
};

/// What the image's recipe said (update.conf), plus the node's own overrides.
struct UpdateSettings {
  std::string name, arch, version;  ///< the running image's
  std::string url;                  ///< empty: the node has no update source
  std::string reboot = "kured";     ///< immediate, kured or manual
  unsigned tries = 3;
  unsigned health_timeout = 900;          ///< seconds
  std::vector<std::string> trusted_keys;  ///< PEM public keys
};

/// Reads update.conf and the trusted keys; a stamped update URL on the config partition wins
/// over the recipe's. Throws kiln::Error naming the file on anything malformed.
UpdateSettings read_settings(const NodePaths& paths, const std::string& stamped_url);

/// The slot this boot runs from: "b" when the kernel command line says kiln.slot=b, else "a".
std::string running_slot(const NodePaths& paths);

/// The partition labels of a slot: {root, verity}.
std::pair<std::string, std::string> slot_partitions(const std::string& slot);

}  // namespace kiln::update
