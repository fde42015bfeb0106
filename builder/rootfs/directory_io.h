#pragma once

#include <filesystem>

#include "builder/rootfs/root_tree.h"

namespace kiln {

/// Loads a root filesystem directory (as mmdebstrap leaves it) into `tree`: every file,
/// directory, symlink, device node and fifo with its mode, owner and extended attributes;
/// files sharing an inode become a hardlink group. Sockets are skipped.
void read_directory(const std::filesystem::path& root, RootTree& tree);

}  // namespace kiln
