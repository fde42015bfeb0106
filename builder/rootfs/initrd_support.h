#pragma once

#include <string>
#include <utility>
#include <vector>

namespace kiln {

/// Files kiln adds to the target before its initrd is built, as (path in the image, content).
/// They make dracut build a generic initrd that opens the dm-verity root named by `roothash=`
/// and mounts the state partition on /var with the persistent /etc overlay on top, so the
/// booted system finds both already in place at switch-root; the same initrd boots a node
/// from the network (see netboot_initrd.h).
const std::vector<std::pair<std::string, std::string>>& initrd_support_files();

/// Shell run inside the target (chroot) that builds /boot/initrd.img-<version> for every
/// installed kernel, after removing the module paths the recipe omits.
std::string initrd_build_script(const std::vector<std::string>& omit_modules);

}  // namespace kiln
