#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace kiln {

/// One way the image boots: a systemd-boot entry, a GRUB menu entry or a PXE script.
struct LoaderEntry {
  std::string loader;  ///< "systemd-boot", "grub", "ipxe"
  std::string title;
  std::string version;
  std::string cmdline;
};

/// A verified root the image holds and whether its bytes match the root hash that boots it.
struct RootCheck {
  std::string slot;  ///< partition ("root", "root-b") or file name
  std::string root_hash;
  bool matches = false;
  std::string problem;  ///< where it first differs, when it does not match
};

/// What `manifest.json` says the image holds.
struct ManifestSummary {
  std::string sha256;  ///< of the manifest's bytes
  std::string name, version, arch, kiln_version, kubernetes_version;
  long long source_date_epoch = 0;
  std::vector<std::pair<std::string, std::string>> packages;  ///< name, version
  struct Artifact {
    std::string name, origin, sha256;
  };
  std::vector<Artifact> artifacts;
};

/// What is stamped into the image's kiln-config partition (or a PXE folder's join.img).
/// Holds no secret: the token is kept masked.
struct StampState {
  bool stamped = false;
  std::string control_plane, endpoint, ca_cert_hash, token_masked, node_name;
  long long expires = 0;
  std::optional<std::string> update_url;
};

/// A release in an update folder.
struct ReleaseSummary {
  std::string version, cmdline;
  RootCheck root;
  /// The release's zstd frames, when its index lists them: whether they decode to its root.
  struct Frames {
    std::string file;
    bool matches = false;
    std::string problem;  ///< why not, when they do not
  };
  std::optional<Frames> frames;
};

/// Everything `kiln inspect` reports about one output.
struct ImageReport {
  std::string path;
  std::string format;  ///< raw, raw.zst, qcow2, vhd, vmdk, ova, gce, pxe, update
  std::optional<ManifestSummary> manifest;
  std::string sbom_sha256;
  std::vector<LoaderEntry> loader_entries;
  std::vector<RootCheck> roots;  ///< the booted root first
  std::optional<StampState> stamp;
  std::string update_name, update_arch;  ///< an update folder's index
  bool update_signed = false;
  std::vector<ReleaseSummary> releases;
  /// True when there is a root and every root matches its hash.
  bool roots_match() const;
  /// True when the roots match and every release's zstd frames decode to its root.
  bool verified() const;
};

/// Parses a kiln manifest (size-capped by the caller); throws kiln::Error naming `what` when
/// it is not JSON or lacks the fields kiln writes.
ManifestSummary parse_manifest_summary(std::string_view json, const std::string& what);

/// The stamp state of a join.yaml (and update-url) as stamped; throws on a malformed config.
StampState summarize_stamp(const std::optional<std::string>& join_yaml,
                           const std::optional<std::string>& update_url, const std::string& what);

/// systemd-boot entry (`key value` lines) → title, version and options.
LoaderEntry parse_boot_entry(std::string_view text);

/// GRUB's `menuentry` titles and their `linux` lines' arguments.
std::vector<LoaderEntry> parse_grub_entries(std::string_view text);

/// The first `kernel` line of an iPXE script: its arguments after the kernel's file name.
std::optional<LoaderEntry> parse_ipxe_script(std::string_view text);

/// The folder a Raspberry Pi's config.txt boots from: its first `os_prefix=` value ("" when
/// none); nullopt for a prefix that leaves the partition (absolute, or with "..").
std::optional<std::string> raspberry_pi_os_prefix(std::string_view config_txt);

/// The Raspberry Pi firmware's way of booting: cmdline.txt's first line under `os_prefix`.
LoaderEntry raspberry_pi_entry(std::string_view os_prefix, std::string_view cmdline_txt);

/// The value of `key=` among a command line's space-separated arguments ("" when absent).
std::string cmdline_value(std::string_view cmdline, std::string_view key);

}  // namespace kiln
