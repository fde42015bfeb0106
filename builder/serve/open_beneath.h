#pragma once

#include <filesystem>
#include <string>

namespace kiln {

/// Opens `relative` ("pxe/boot.ipxe"; "" is the folder itself) below `folder`, read-only.
/// Fails with EXDEV (or ELOOP) when the path, through any symlink, would leave the folder.
/// Uses openat2(2) with RESOLVE_BENEATH, or open_beneath_by_realpath on kernels without it.
/// The folder is looked up on every call, so a folder rebuilt in its place is served.
/// Returns an fd or -errno.
int open_beneath(const std::filesystem::path& folder, const std::string& relative);

/// The fallback of open_beneath: resolves every symlink with realpath(3) and refuses a result
/// outside the folder's own real path. A symlink swapped in between the check and the open
/// could still escape, which RESOLVE_BENEATH rules out; the final component is opened
/// O_NOFOLLOW.
int open_beneath_by_realpath(const std::filesystem::path& folder, const std::string& relative);

}  // namespace kiln
