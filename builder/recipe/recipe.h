#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "builder/util/error.h"
#include "builder/util/node_name_policy.h"
#include "builder/util/version.h"

namespace kiln {

enum class Arch { amd64, arm64 };

/// Where the Kubernetes binaries come from.
enum class KubernetesSource {
  automatic,  ///< upstream release when dl.k8s.io answers, else built from Go modules
  release,    ///< dl.k8s.io layout, published .sha256 checked
  mirror,     ///< the same layout at a URL or local directory (air-gapped builders)
  source,     ///< built reproducibly from the k8s.io/kubernetes and cri-tools Go modules
};

enum class ContainerdSource { debian, release };

struct BaseSpec {
  std::string distribution = "debian";
  std::string suite = "trixie";
  Arch arch = Arch::amd64;
  std::string mirror = "http://deb.debian.org/debian";
};

struct KubernetesSpec {
  Version version{1, 34, 12};
  KubernetesSource from = KubernetesSource::automatic;
  /// Base of the dl.k8s.io-style layout: https URL or local directory.
  std::string mirror;
  Version crictl_version{1, 34, 0};
};

struct ContainerdSpec {
  ContainerdSource from = ContainerdSource::debian;
  std::optional<Version> version;  ///< required for release tarballs
  std::string url;                 ///< release tarball URL (from: release)
  std::string sha256;              ///< its digest (from: release)
};

struct FileSpec {
  std::string path;
  std::string content;
  unsigned mode = 0644;
  std::string owner = "root";
  std::string group = "root";
  SourceMark mark;
};

struct UserSpec {
  std::string name;
  std::vector<std::string> ssh_authorized_keys;
  std::vector<std::string> groups;
  std::string shell = "/bin/bash";
  SourceMark mark;
};

struct KernelSpec {
  std::string package = "linux-image-amd64";
  std::vector<std::string> cmdline;
  /// Paths under /usr/lib/modules/<version>/kernel/ removed before the initrd is built.
  std::vector<std::string> omit_modules;
};

struct OverlaySpec {
  std::filesystem::path directory;  ///< absolute
  SourceMark mark;
};

struct DiskSpec {
  std::uint64_t size_bytes = 0;               ///< 0 = the partitions plus the default state size
  std::uint64_t root_bytes = 0;               ///< per root slot; 0 = fitted to the root filesystem
  std::optional<std::uint64_t> root_b_bytes;  ///< unset = as root; 0 = no spare slot
  std::uint64_t state_bytes = 0;              ///< 0 = default minimum
};

/// Netboot (`outputs: [pxe]`) choices.
struct PxeSpec {
  /// The netboot folder also carries the disk image; a node booted from it writes the image
  /// onto its first empty disk and reboots into it.
  bool install = false;
};

/// A recipe after parsing, include resolution and validation. Plain data.
struct Recipe {
  std::string name;
  std::optional<long long> source_date_epoch;
  BaseSpec base;
  std::vector<std::string> packages;
  KubernetesSpec kubernetes;
  ContainerdSpec containerd;
  std::vector<OverlaySpec> overlays;
  std::vector<FileSpec> files;
  std::vector<UserSpec> users;
  KernelSpec kernel;
  std::map<std::string, std::string> sysctl;
  std::vector<std::string> modules;
  std::string hostname;
  NodeNamePolicy node_name = NodeNamePolicy::hostname;
  std::vector<std::string> outputs;
  DiskSpec disk;
  PxeSpec pxe;
  /// Where each key was set ("base.suite" -> file:line:col), for checks made after merging.
  std::map<std::string, SourceMark> marks;
  /// Every recipe file read (the top one first, then includes), for hashing and epochs.
  std::vector<std::filesystem::path> sources;
};

const char* to_string(Arch arch);
const char* to_string(KubernetesSource source);
const char* to_string(ContainerdSource source);

}  // namespace kiln
