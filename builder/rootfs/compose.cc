#include "builder/rootfs/compose.h"

#include "builder/rootfs/immutable_root.h"
#include "builder/rootfs/manifest.h"
#include "builder/rootfs/node_config.h"
#include "builder/rootfs/root_tree.h"
#include "builder/rootfs/tar_io.h"
#include "builder/rootfs/update_config.h"
#include "builder/sbom/sbom.h"
#include "builder/util/files.h"
#include "builder/util/log.h"
#include "builder/util/sha256.h"

namespace kiln {
namespace fs = std::filesystem;

namespace {

void install_kubernetes(RootTree& tree, const KubernetesArtifact& kubernetes) {
  for (const auto& [name, path] : kubernetes.binaries)
    tree.write_file("/usr/bin/" + name, read_file(path), 0755);
  if (!kubernetes.containerd_tarball.empty()) {
    // Upstream release layout: bin/containerd, bin/containerd-shim-runc-v2, bin/ctr ...
    for (const char* name : {"containerd", "containerd-shim-runc-v2", "ctr"}) {
      tree.write_file(std::string("/usr/local/bin/") + name,
                      read_tar_member(kubernetes.containerd_tarball, std::string("bin/") + name),
                      0755);
    }
  }
}

RootfsArtifact load_artifact(const fs::path& stage) {
  return {stage / "rootfs.tar", stage / "manifest.json", read_file(stage / "rootfs.tar.sha256"),
          stage / "sbom.spdx.json"};
}

}  // namespace

RootfsArtifact compose_rootfs(const BuildPlan& plan, const BaseArtifact& base,
                              const KubernetesArtifact& kubernetes, Cache& cache, bool rebuild) {
  StageEntry entry(cache, "rootfs", plan.rootfs_key, rebuild);
  if (entry.reuse()) return load_artifact(entry.path());
  RootTree tree;
  read_tar(base.tarball, tree);
  install_kubernetes(tree, kubernetes);
  NodeConfigInputs inputs;
  inputs.pause_image = kubernetes.pause_image;
  inputs.containerd_from_release = !kubernetes.containerd_tarball.empty();
  inputs.containerd_v2 = inputs.containerd_from_release && plan.recipe.containerd.version &&
                         plan.recipe.containerd.version->major >= 2;
  write_node_config(tree, plan, inputs);
  write_immutable_root_config(tree, plan);
  write_update_config(tree, plan);
  add_users(tree, plan);
  // Overlays, then inline files: the recipe has the last word over kiln's defaults.
  for (const auto& overlay : plan.recipe.overlays) add_host_tree(tree, overlay.directory, "/");
  add_recipe_files(tree, plan);
  std::string manifest = render_manifest(plan, base, kubernetes);
  tree.write_file("/usr/lib/kiln/manifest.json", manifest);

  const fs::path& work = entry.scratch();
  std::string digest = write_tar(tree, work / "rootfs.tar", plan.source_date_epoch);
  write_file_atomic(work / "rootfs.tar.sha256", digest);
  write_file_atomic(work / "manifest.json", manifest);
  write_file_atomic(work / "sbom.spdx.json", render_sbom(plan, tree, kubernetes));
  log::info("    rootfs: {} entries, {}", tree.nodes().size(),
            log::human_bytes(fs::file_size(work / "rootfs.tar")));
  entry.publish();
  return load_artifact(entry.path());
}

}  // namespace kiln
