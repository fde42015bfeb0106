#include "builder/rootfs/firstboot_payload.h"

#include <cstdlib>

#include "builder/rootfs/initrd_support.h"
#include "builder/util/error.h"
#include "builder/util/sha256.h"

namespace kiln {
namespace fs = std::filesystem;

const FirstbootPayload& firstboot_payload() {
  static const FirstbootPayload payload = [] {
    fs::path dir;
    if (const char* env = std::getenv("KILN_FIRSTBOOT_DIR"); env && *env) {
      dir = env;
    } else {
      std::error_code ec;
      dir = fs::read_symlink("/proc/self/exe", ec).parent_path();
    }
    FirstbootPayload p;
    p.agent = dir / "kiln-firstboot";
    p.unit = dir / "kiln-firstboot.service";
    p.install_unit = dir / "kiln-install.service";
    p.network_unit = dir / "kiln-network.service";
    p.update_agent = dir / "kiln-update";
    p.netroot = dir / "kiln-netroot";
    for (const auto& file :
         {p.agent, p.unit, p.install_unit, p.network_unit, p.update_agent, p.netroot}) {
      if (!fs::exists(file)) {
        throw Error("a program kiln installs into every image is missing: " + file.string() +
                    " (build it with `cmake --build build`, or point KILN_FIRSTBOOT_DIR at it)");
      }
    }
    p.digest = sha256_hex(sha256_file(p.agent) + sha256_file(p.unit) + sha256_file(p.install_unit) +
                          sha256_file(p.network_unit) + sha256_file(p.update_agent));
    p.netroot_digest = sha256_file(p.netroot);
    return p;
  }();
  return payload;
}

KilnPayload kiln_payload(const Recipe& recipe) {
  const FirstbootPayload& firstboot = firstboot_payload();
  return {initrd_support_files(), initrd_build_script(recipe.kernel.omit_modules),
          firstboot.netroot, firstboot.netroot_digest, firstboot.digest};
}

}  // namespace kiln
