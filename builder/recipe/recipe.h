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

/// How the read-only root's EROFS file system stores file data.
enum class RootCompression {
  none,   ///< plain blocks: raw.zst and the compressed image formats compress them best
  lz4,    ///< small root slots, update downloads and netboot RAM, fast to make and read
  lz4hc,  ///< 8% smaller than lz4 for ten times its build CPU
};

struct DiskSpec {
  std::uint64_t size_bytes = 0;               ///< 0 = the partitions plus the default state size
  std::uint64_t root_bytes = 0;               ///< per root slot; 0 = fitted to the root filesystem
  std::optional<std::uint64_t> root_b_bytes;  ///< unset = as root; 0 = no spare slot
  std::uint64_t state_bytes = 0;              ///< 0 = default minimum
  /// Logical sector size the GPT and FAT file systems are written for: 512, or 4096 for 4Kn
  /// disks (UEFI only: BIOS GRUB needs 512-byte sectors).
  std::uint64_t sector_size = 512;
  RootCompression root_compression = RootCompression::lz4;
};

/// Netboot (`outputs: [pxe]`) choices.
struct PxeSpec {
  /// The netboot folder also carries the disk image; a node booted from it writes the image
  /// onto its first empty disk and reboots into it.
  bool install = false;
};

/// When an update is staged, what restarts the node into it.
enum class RebootPolicy {
  immediate,  ///< reboot as soon as the new slot is verified
  kured,      ///< write /var/run/reboot-required: kured drains and reboots one node at a time
  manual,     ///< wait for `kiln-update --reboot`
};

/// A public key nodes trust to sign update indexes, read from the recipe's directory.
struct TrustedKey {
  std::filesystem::path file;
  std::string pem;
  SourceMark mark;
};

/// Day-2 updates (`updates:`): where a node looks for new versions and how it moves to one.
struct UpdatesSpec {
  std::string url;  ///< http(s) folder with index.json; empty = the node never checks
  std::vector<TrustedKey> trusted_keys;
  RebootPolicy reboot = RebootPolicy::kured;
  unsigned tries = 3;  ///< boots a new version gets to become healthy
  unsigned check_interval_minutes = 60;
  unsigned health_timeout_seconds = 900;  ///< how long a trial boot may take to become healthy
};

/// The hardware a disk image boots on beyond UEFI and BIOS machines.
enum class Board {
  generic,  ///< UEFI (and BIOS on amd64): servers, VMs, clouds
  rpi4,     ///< Raspberry Pi 4 / 400 / CM4: the Pi firmware loads the kernel from the ESP
};

/// `board:`, for single-board computers whose firmware is neither UEFI nor BIOS.
struct BoardSpec {
  Board model = Board::generic;
  /// The Debian raspi-firmware package the Pi's start4.elf and fixup4.dat come from; empty
  /// means kiln's default (a version that boots GPT disks with current Pi 4 EEPROMs).
  std::string firmware_url;
  std::string firmware_sha256;
};

/// A recipe after parsing, include resolution and validation. Plain data.
struct Recipe {
  std::string name;
  /// The image's own version (IMAGE_VERSION in os-release): updates only move forward.
  std::string version = "0";
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
  UpdatesSpec updates;
  BoardSpec board;
  /// Where each key was set ("base.suite" -> file:line:col), for checks made after merging.
  std::map<std::string, SourceMark> marks;
  /// Every recipe file read (the top one first, then includes), for hashing and epochs.
  std::vector<std::filesystem::path> sources;
};

const char* to_string(Arch arch);
const char* to_string(KubernetesSource source);
const char* to_string(ContainerdSource source);
const char* to_string(RebootPolicy policy);
const char* to_string(Board board);
const char* to_string(RootCompression compression);

}  // namespace kiln
