#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace kiln {

/// One input that went into the image, as recorded in manifest.json.
struct ArtifactRecord {
  std::string name;
  std::string origin;  ///< URL, or go module path@version for source builds
  std::string sha256;
  std::string install_path;
};

/// Output of the base stage: mmdebstrap's tarball and the package list it installed.
struct BaseArtifact {
  std::filesystem::path tarball;
  std::vector<std::pair<std::string, std::string>> packages;  ///< name, version
};

/// Output of the Kubernetes stage: verified binaries ready to install.
struct KubernetesArtifact {
  std::map<std::string, std::filesystem::path> binaries;  ///< kubelet, kubeadm, crictl
  std::filesystem::path containerd_tarball;               ///< empty for Debian's containerd
  std::vector<ArtifactRecord> records;
  std::string pause_image;
};

/// Output of the rootfs stage.
struct RootfsArtifact {
  std::filesystem::path tarball;
  std::filesystem::path manifest;
  std::string tarball_sha256;
  std::filesystem::path sbom;  ///< SPDX 2.3 JSON (builder/sbom/sbom.h)
};

}  // namespace kiln
