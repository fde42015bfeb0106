#include "builder/rootfs/foreign_arch.h"

#include <fmt/format.h>
#include <sys/utsname.h>

#include <string>

#include "builder/util/error.h"
#include "builder/util/files.h"
#include "builder/util/process.h"

namespace kiln {
namespace fs = std::filesystem;

namespace {

/// binfmt_misc's entry name for qemu-user's handler of `arch` (as qemu-user-static names it).
std::string binfmt_entry(Arch arch) {
  return arch == Arch::arm64 ? "qemu-aarch64" : "qemu-x86_64";
}

}  // namespace

Arch host_arch() {
  utsname name{};
  ::uname(&name);
  return std::string(name.machine) == "aarch64" ? Arch::arm64 : Arch::amd64;
}

void require_foreign_arch_support(Arch target, const fs::path& binfmt_dir) {
  if (target == host_arch()) return;
  const std::string arch = to_string(target);
  const std::string entry = binfmt_entry(target);
  const std::string install = "apt-get install qemu-user-static binfmt-support arch-test";
  if (!fs::exists(binfmt_dir / "register")) {
    throw Error(fmt::format(
        "building an {} image on this {} host runs {} programs through qemu-user, but "
        "binfmt_misc is not mounted: run `mount -t binfmt_misc binfmt_misc {}`, then `{}` "
        "and `update-binfmts --enable {}`",
        arch, to_string(host_arch()), arch, binfmt_dir.string(), install, entry));
  }
  std::string status;
  if (fs::exists(binfmt_dir / entry)) status = read_file(binfmt_dir / entry);
  if (!status.starts_with("enabled")) {
    throw Error(fmt::format(
        "building an {} image on this {} host runs {} programs through qemu-user, but no {} "
        "handler is {} in binfmt_misc: run `{}` and `update-binfmts --enable {}`",
        arch, to_string(host_arch()), arch, entry, status.empty() ? "registered" : "enabled",
        install, entry));
  }
  // mmdebstrap checks the handler with arch-test before it starts.
  require_program("arch-test", "arch-test");
}

}  // namespace kiln
