#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "builder/recipe/recipe.h"

namespace kiln {

/// A file fetched by URL and verified against a SHA-256 (known now or published beside it).
struct RemoteArtifact {
  std::string name;  ///< kubelet, kubeadm, crictl, containerd
  std::string url;
  std::string sha256;      ///< empty until the published checksum is read
  std::string sha256_url;  ///< "<url>.sha256" for upstream releases
};

/// A binary built from a Go module.
struct GoBinary {
  std::string name;     ///< installed as /usr/bin/<name>
  std::string package;  ///< e.g. k8s.io/kubernetes/cmd/kubelet
};

/// What kiln itself puts into the stages beside the recipe. The stage keys hash it and the
/// stages install exactly it, so the plan needs no rootfs or disk code (see plan_build()).
struct KilnPayload {
  std::vector<std::pair<std::string, std::string>> initrd_support_files;  ///< path, content
  std::string initrd_build_script;  ///< run in the target to build the initrd
  std::filesystem::path netroot;    ///< kiln-netroot, for the initrd (base stage)
  std::string netroot_digest;
  std::string agent_digest;  ///< kiln-firstboot and its units (rootfs stage)
};

/// Everything a build will do, resolved from a recipe before any work starts.
struct BuildPlan {
  Recipe recipe;
  std::string recipe_hash;
  long long source_date_epoch = 0;
  std::string epoch_origin;  ///< where the epoch came from, for the log

  /// Debian packages passed to mmdebstrap, sorted.
  std::vector<std::string> packages;

  KubernetesSource kubernetes_source = KubernetesSource::source;  ///< never `automatic`
  std::string kubernetes_source_reason;
  std::vector<RemoteArtifact> downloads;
  std::vector<GoBinary> go_binaries;
  std::string kubernetes_module_version;  ///< v1.34.4
  std::string cri_tools_module_version;   ///< v1.34.0
  std::string staging_module_version;     ///< v0.34.4
  std::string pause_image;                ///< containerd's sandbox image for this kubelet

  KilnPayload payload;

  /// The Debian raspi-firmware package the disk stage takes a Pi's boot firmware from
  /// (`board: rpi4`); unset for other boards.
  std::optional<RemoteArtifact> board_firmware;

  /// Stage cache keys: each covers its inputs and the keys before it.
  std::string base_key;
  std::string kubernetes_key;
  std::string rootfs_key;
  std::string disk_key;  ///< empty when the recipe asks for no disk output
};

/// True when any of the recipe's outputs needs the disk stage (output_formats.h).
bool wants_disk(const Recipe& recipe);

struct PlanOptions {
  bool offline = false;
  /// Replaces base.mirror (a URL or a local directory holding a Debian archive).
  std::string debian_mirror;
  /// Probe dl.k8s.io to resolve `from: auto`; tests and --offline skip it.
  bool probe_network = true;
  /// Kubernetes binaries to provide; empty means a node's (node_components()). Others,
  /// e.g. kube-apiserver for a test control plane, come from the same source and version.
  std::vector<std::string> components;
  /// What kiln adds to the stages; plan_build() (builder/build.h) fills it.
  KilnPayload payload;
};

/// kubelet, kubeadm, crictl: what every node image carries.
const std::vector<std::string>& node_components();

/// Resolves versions, sources, URLs and cache keys. Network use is limited to one quick
/// reachability probe when the Kubernetes source is `auto`. A build plans with plan_build(),
/// which adds kiln's own payload and checks the disk sizes.
BuildPlan make_plan(const Recipe& recipe, const PlanOptions& options);

/// The packages every kiln worker image carries, before the recipe's own.
const std::vector<std::string>& base_packages();

/// A human-readable listing of the plan for `kiln plan`.
std::string describe_plan(const BuildPlan& plan);

}  // namespace kiln
