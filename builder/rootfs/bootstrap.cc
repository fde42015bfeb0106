#include "builder/rootfs/bootstrap.h"

#include <fmt/format.h>

#include <sstream>

#include "builder/rootfs/netboot_initrd.h"
#include "builder/util/error.h"
#include "builder/util/files.h"
#include "builder/util/log.h"
#include "builder/util/process.h"

namespace kiln {
namespace fs = std::filesystem;

namespace {

std::vector<std::pair<std::string, std::string>> read_package_list(const fs::path& path) {
  std::vector<std::pair<std::string, std::string>> packages;
  std::istringstream in(read_file(path));
  for (std::string line; std::getline(in, line);) {
    auto tab = line.find('\t');
    if (tab != std::string::npos) packages.emplace_back(line.substr(0, tab), line.substr(tab + 1));
  }
  return packages;
}

// share-debs.sh FROM TO: every .deb in FROM that TO lacks, hard-linked into TO, or copied
// when the two are on different file systems. A copy lands under a temporary name of its own
// first, so neither an interrupted build nor a concurrent one leaves a truncated package in
// the cache.
constexpr const char* kShareDebsScript = R"sh(set -eu
mkdir -p "$2"
for deb in "$1"/*.deb; do
    [ -f "$deb" ] || continue
    name=${deb##*/}
    [ -e "$2/$name" ] && continue
    if ! ln "$deb" "$2/$name" 2>/dev/null; then
        cp "$deb" "$2/.$name.$$.partial"
        mv "$2/.$name.$$.partial" "$2/$name"
    fi
done
)sh";

std::string mirror_uri(const std::string& mirror) {
  if (mirror.find("://") != std::string::npos) return mirror;
  return "file://" + fs::absolute(mirror).string();
}

}  // namespace

BaseArtifact bootstrap_base(const BuildPlan& plan, Cache& cache, bool rebuild) {
  StageEntry entry(cache, "base", plan.base_key, rebuild);
  const fs::path& stage = entry.path();
  if (entry.reuse()) return {stage / "base.tar", read_package_list(stage / "packages.tsv")};
  if (cache.offline()) {
    throw OfflineMiss(
        "--offline: the base stage (" + plan.recipe.base.suite +
        " with the recipe's packages) is not in the cache; run the build once online");
  }
  require_program("mmdebstrap", "mmdebstrap");
  const fs::path& work = entry.scratch();
  fs::path debs = cache.root() / "apt-archives";
  fs::create_directories(debs);

  // Boot support goes in before the initrd is built, which happens after every package is in.
  fs::path support = work / "initrd-support";
  for (const auto& [path, content] : plan.payload.initrd_support_files) {
    write_file_atomic(support / path, content);
    if (path.ends_with(".sh") || path.ends_with("-generator"))
      fs::permissions(support / path, fs::perms(0755));
  }
  write_file_atomic(support / kNetrootBinaryPath, read_file(plan.payload.netroot), 0755);
  write_file_atomic(work / "build-initrd.sh", plan.payload.initrd_build_script);
  write_file_atomic(work / "share-debs.sh", kShareDebsScript);

  std::string include;
  for (const auto& package : plan.packages) include += (include.empty() ? "" : ",") + package;
  const Recipe& r = plan.recipe;
  // Modules the recipe leaves out are never unpacked, so the kernel's own depmod is already
  // right (the initrd script still removes any it finds, and only then runs depmod again).
  std::vector<std::string> omit_modules;
  for (const auto& path : r.kernel.omit_modules) {
    omit_modules.push_back("--dpkgopt=path-exclude=/usr/lib/modules/*/kernel/" + path);
    omit_modules.push_back("--dpkgopt=path-exclude=/usr/lib/modules/*/kernel/" + path + "/*");
  }
  std::vector<std::string> argv = {
      "mmdebstrap",
      "--variant=minbase",
      "--mode=root",
      "--format=tar",
      std::string("--arch=") + to_string(r.base.arch),
      "--include=" + include,
      "--aptopt=Acquire::Retries \"3\"",
      // Documentation and translations are dead weight on a node; licences stay.
      "--dpkgopt=path-exclude=/usr/share/man/*",
      "--dpkgopt=path-exclude=/usr/share/doc/*",
      "--dpkgopt=path-include=/usr/share/doc/*/copyright",
      "--dpkgopt=path-exclude=/usr/share/locale/*",
      "--dpkgopt=path-exclude=/usr/share/info/*",
      // containerd's v1 shims serve runtimes the node's CRI configuration never names
      // (it runs io.containerd.runc.v2): 21 MB a worker never executes.
      "--dpkgopt=path-exclude=/usr/bin/containerd-shim",
      "--dpkgopt=path-exclude=/usr/bin/containerd-shim-runc-v1",
      // The result becomes a tarball; fsyncs inside the throwaway tree only cost time.
      "--dpkgopt=force-unsafe-io",
      // Reuse downloaded .debs across builds, shared by hard link rather than copied (the
      // copies cost seconds per build); nothing in the tree writes to a .deb.
      "--skip=essential/unlink",
      "--setup-hook=sh " + shell_quote((work / "share-debs.sh").string()) + " " +
          shell_quote(debs.string()) + " \"$1\"/var/cache/apt/archives",
      "--customize-hook=sh " + shell_quote((work / "share-debs.sh").string()) +
          " \"$1\"/var/cache/apt/archives " + shell_quote(debs.string()),
      "--customize-hook=cp -a " + support.string() + "/. \"$1\"/",
      "--customize-hook=chroot \"$1\" sh -s < " + (work / "build-initrd.sh").string(),
      "--customize-hook=chroot \"$1\" dpkg-query -W -f='${Package}\\t${Version}\\n' > " +
          (work / "packages.tsv").string(),
  };
  argv.insert(argv.end(), omit_modules.begin(), omit_modules.end());
  argv.insert(argv.end(), {r.base.suite, (work / "base.tar").string(), mirror_uri(r.base.mirror)});
  log::info("    mmdebstrap {} ({} packages requested, {})", r.base.suite, plan.packages.size(),
            r.base.mirror);
  // INITRD=No makes the kernel's postinst hook skip dracut: the initrd is built once, by the
  // customize hook above, after the recipe's modules are pruned (a second run costs ~13 s).
  run(argv,
      {.env = {{"SOURCE_DATE_EPOCH", std::to_string(plan.source_date_epoch)}, {"INITRD", "No"}}});

  fsync_path(work / "base.tar");
  entry.publish();
  return {stage / "base.tar", read_package_list(stage / "packages.tsv")};
}

}  // namespace kiln
