#pragma once

#include <filesystem>

#include "builder/recipe/recipe.h"

namespace kiln {

/// The architecture of the programs this host runs natively.
Arch host_arch();

/// Building a root for another architecture runs its maintainer scripts and dracut under
/// qemu-user, through binfmt_misc. Throws kiln::Error naming exactly what to install or
/// enable when this host cannot run programs of `target`. `binfmt_dir` is where binfmt_misc
/// is mounted.
void require_foreign_arch_support(
    Arch target, const std::filesystem::path& binfmt_dir = "/proc/sys/fs/binfmt_misc");

}  // namespace kiln
