#pragma once

#include <filesystem>

#include "builder/rootfs/root_tree.h"

namespace kiln {

/// Loads every entry of a tar archive (any compression libarchive reads) into `tree`.
void read_tar(const std::filesystem::path& archive, RootTree& tree);

/// Writes `tree` as a POSIX (pax) tar: entries sorted by path, every mtime set to `epoch`,
/// numeric owners only, no atime/ctime, hardlink groups led by their first path. Written to
/// a temporary file and renamed, so `archive` is never half-written. Returns its SHA-256.
std::string write_tar(const RootTree& tree, const std::filesystem::path& archive, long long epoch);

/// Copies a directory tree from the host into the image at `destination` ("/" for overlays),
/// keeping modes and symlinks; owners become root.
void add_host_tree(RootTree& tree, const std::filesystem::path& source,
                   const std::string& destination);

/// Extracts one member (e.g. "crictl" or "bin/containerd") from a tar.gz; throws if absent.
std::string read_tar_member(const std::filesystem::path& archive, const std::string& member);

}  // namespace kiln
