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

// dpkg-filters.sh CONFIG ROOT, run as mmdebstrap's extract hook: installs dpkg's path filters
// for the rest of the bootstrap and removes what they exclude from the essential packages
// just unpacked. Handing the filters to mmdebstrap as --dpkgopt instead would make it pipe
// every essential package through its Python tar filter (mmtarfilter), about 3.5 s of a cold
// build; dpkg applies them natively to everything installed after this. Only the
// documentation filters can match files of the essential set (the kernel's modules and
// containerd's shims come later), and for those this removes exactly what dpkg would skip:
// everything under man, locale and info, and every documentation file but the licences, with
// the directories left empty.
constexpr const char* kDpkgFiltersScript = R"sh(set -eu
mkdir -p "$2/etc/dpkg/dpkg.cfg.d"
install -m 0644 "$1" "$2/etc/dpkg/dpkg.cfg.d/99mmdebstrap"
rm -rf "$2"/usr/share/man/* "$2"/usr/share/locale/* "$2"/usr/share/info/*
if [ -d "$2/usr/share/doc" ]; then
    find "$2/usr/share/doc" -mindepth 1 ! -type d ! -path "$2/usr/share/doc/*/copyright" -delete
    find "$2/usr/share/doc" -mindepth 1 -type d -empty -delete
fi
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
  // dpkg's configuration for the whole bootstrap, installed by the extract hook (see
  // kDpkgFiltersScript).
  std::string dpkg_config =
      // Documentation and translations are dead weight on a node; licences stay.
      "path-exclude=/usr/share/man/*\n"
      "path-exclude=/usr/share/doc/*\n"
      "path-include=/usr/share/doc/*/copyright\n"
      "path-exclude=/usr/share/locale/*\n"
      "path-exclude=/usr/share/info/*\n"
      // containerd's v1 shims serve runtimes the node's CRI configuration never names
      // (it runs io.containerd.runc.v2): 21 MB a worker never executes.
      "path-exclude=/usr/bin/containerd-shim\n"
      "path-exclude=/usr/bin/containerd-shim-runc-v1\n"
      // The result becomes a tarball; fsyncs inside the throwaway tree only cost time.
      "force-unsafe-io\n";
  // Modules the recipe leaves out are never unpacked, so the kernel's own depmod is already
  // right (the initrd script still removes any it finds, and only then runs depmod again).
  for (const auto& path : r.kernel.omit_modules) {
    dpkg_config += "path-exclude=/usr/lib/modules/*/kernel/" + path + "\n";
    dpkg_config += "path-exclude=/usr/lib/modules/*/kernel/" + path + "/*\n";
  }
  write_file_atomic(work / "dpkg.cfg", dpkg_config);
  write_file_atomic(work / "dpkg-filters.sh", kDpkgFiltersScript);
  std::vector<std::string> argv = {
      "mmdebstrap",
      "--variant=minbase",
      "--mode=root",
      "--format=tar",
      std::string("--arch=") + to_string(r.base.arch),
      "--include=" + include,
      "--aptopt=Acquire::Retries \"3\"",
      // Reuse downloaded .debs across builds, shared by hard link rather than copied (the
      // copies cost seconds per build); nothing in the tree writes to a .deb.
      "--skip=essential/unlink",
      "--setup-hook=sh " + shell_quote((work / "share-debs.sh").string()) + " " +
          shell_quote(debs.string()) + " \"$1\"/var/cache/apt/archives",
      "--extract-hook=sh " + shell_quote((work / "dpkg-filters.sh").string()) + " " +
          shell_quote((work / "dpkg.cfg").string()) + " \"$1\"",
      "--customize-hook=sh " + shell_quote((work / "share-debs.sh").string()) +
          " \"$1\"/var/cache/apt/archives " + shell_quote(debs.string()),
      "--customize-hook=cp -a " + shell_quote(support.string() + "/.") + " \"$1\"/",
      "--customize-hook=chroot \"$1\" sh -s < " + shell_quote((work / "build-initrd.sh").string()),
      "--customize-hook=chroot \"$1\" dpkg-query -W -f='${Package}\\t${Version}\\n' > " +
          shell_quote((work / "packages.tsv").string()),
  };
  argv.insert(argv.end(), {r.base.suite, (work / "base.tar").string(), mirror_uri(r.base.mirror)});
  log::info("    mmdebstrap {} ({} packages requested, {})", r.base.suite, plan.packages.size(),
            r.base.mirror);
  // INITRD=No makes the kernel's postinst hook skip dracut: the initrd is built once, by the
  // customize hook above, after the recipe's modules are pruned (a second run costs ~13 s).
  // mmdebstrap's main process waits out a signal until its worker is done; signalled as a
  // group, the worker stops and the main process unmounts and removes its temporary tree.
  run(argv,
      {.env = {{"SOURCE_DATE_EPOCH", std::to_string(plan.source_date_epoch)}, {"INITRD", "No"}},
       .signal_whole_group = true});

  fsync_path(work / "base.tar");
  entry.publish();
  return {stage / "base.tar", read_package_list(stage / "packages.tsv")};
}

}  // namespace kiln
