#include "builder/rootfs/firstboot_payload.h"

#include <cstdlib>

#include "builder/rootfs/initrd_support.h"
#include "builder/util/error.h"
#include "builder/util/sha256.h"

namespace kiln {
namespace fs = std::filesystem;

namespace {

fs::path payload_dir() {
  if (const char* env = std::getenv("KILN_FIRSTBOOT_DIR"); env && *env) return env;
  std::error_code ec;
  return fs::read_symlink("/proc/self/exe", ec).parent_path();
}

FirstbootPayload find_payload(Arch arch) {
  const fs::path dir = payload_dir();
  // The units are the same for every architecture; the programs are built for each.
  const fs::path programs = arch == Arch::amd64 ? dir : dir / "arm64";
  FirstbootPayload p;
  p.agent = programs / "kiln-firstboot";
  p.unit = dir / "kiln-firstboot.service";
  p.install_unit = dir / "kiln-install.service";
  p.network_unit = dir / "kiln-network.service";
  p.update_agent = programs / "kiln-update";
  p.netroot = programs / "kiln-netroot";
  for (const auto& file :
       {p.agent, p.unit, p.install_unit, p.network_unit, p.update_agent, p.netroot}) {
    if (fs::exists(file)) continue;
    if (arch == Arch::arm64) {
      throw Error("kiln's arm64 agents are missing: " + file.string() +
                  " (they are cross-compiled when kiln is built on a host with "
                  "g++-aarch64-linux-gnu: apt-get install g++-aarch64-linux-gnu, then "
                  "`cmake -S . -B build && cmake --build build`)");
    }
    throw Error("a program kiln installs into every image is missing: " + file.string() +
                " (build it with `cmake --build build`, or point KILN_FIRSTBOOT_DIR at it)");
  }
  p.digest = sha256_hex(sha256_file(p.agent) + sha256_file(p.unit) + sha256_file(p.install_unit) +
                        sha256_file(p.network_unit) + sha256_file(p.update_agent));
  p.netroot_digest = sha256_file(p.netroot);
  return p;
}

}  // namespace

const FirstbootPayload& firstboot_payload(Arch arch) {
  if (arch == Arch::amd64) {
    static const FirstbootPayload amd64 = find_payload(Arch::amd64);
    return amd64;
  }
  static const FirstbootPayload arm64 = find_payload(Arch::arm64);
  return arm64;
}

KilnPayload kiln_payload(const Recipe& recipe) {
  const FirstbootPayload& firstboot = firstboot_payload(recipe.base.arch);
  return {initrd_support_files(), initrd_build_script(recipe.kernel.omit_modules),
          firstboot.netroot, firstboot.netroot_digest, firstboot.digest};
}

}  // namespace kiln
