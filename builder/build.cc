#include "builder/build.h"

#include <future>

#include "builder/fetch/cache.h"
#include "builder/rootfs/bootstrap.h"
#include "builder/rootfs/compose.h"
#include "builder/rootfs/kubernetes_binaries.h"
#include "builder/util/error.h"
#include "builder/util/files.h"
#include "builder/util/log.h"
#include "builder/util/sha256.h"

namespace kiln {
namespace fs = std::filesystem;

namespace {

void check_output_dir(const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw Error("cannot create output directory " + dir.string() + ": " + ec.message());
  fs::path probe = temp_sibling(dir / "probe");
  try {
    write_file_atomic(probe, "");
    fs::remove(probe);
  } catch (const Error&) {
    throw Error("output directory " + dir.string() + " is not writable");
  }
}

BuildResult export_outputs(const BuildPlan& plan, const RootfsArtifact& rootfs,
                           const fs::path& dir) {
  log::Stage stage("export " + dir.string());
  BuildResult result{dir / "rootfs.tar", dir / "manifest.json", rootfs.tarball_sha256};
  copy_file_atomic(rootfs.tarball, result.rootfs_tarball);
  copy_file_atomic(rootfs.manifest, result.manifest);
  write_file_atomic(dir / "SHA256SUMS", rootfs.tarball_sha256 + "  rootfs.tar\n" +
                                            sha256_file(result.manifest) + "  manifest.json\n");
  for (const auto& output : plan.recipe.outputs) {
    if (output != "rootfs")
      log::warn("output '{}' is not produced by this version of kiln yet", output);
  }
  return result;
}

}  // namespace

BuildResult build(const BuildPlan& plan, const BuildOptions& options) {
  log::Stage whole("build " + plan.recipe.name);
  check_output_dir(options.output_dir);
  Cache cache(options.cache_dir, options.offline);
  log::info("    epoch {} ({}), cache {}", plan.source_date_epoch, plan.epoch_origin,
            cache.root().string());

  if (options.offline && !options.rebuild && !fs::exists(cache.stage_path("base", plan.base_key))) {
    throw OfflineMiss("the base stage (Debian " + plan.recipe.base.suite +
                      " with the recipe's packages) is not in the cache " + cache.root().string() +
                      "; run the build once without --offline");
  }
  // The bootstrap is mostly waiting on apt and dpkg; fetching or compiling the Kubernetes
  // binaries meanwhile takes them off the critical path.
  auto kubernetes_future = std::async(std::launch::async, [&] {
    log::Stage stage("kubernetes binaries");
    return provide_kubernetes(plan, cache, options.rebuild, options.jobs);
  });
  BaseArtifact base;
  try {
    log::Stage stage("base " + plan.recipe.base.suite);
    base = bootstrap_base(plan, cache, options.rebuild);
  } catch (...) {
    kubernetes_future.wait();
    throw;
  }
  KubernetesArtifact kubernetes = kubernetes_future.get();
  RootfsArtifact rootfs;
  {
    log::Stage stage("rootfs");
    rootfs = compose_rootfs(plan, base, kubernetes, cache, options.rebuild);
  }
  return export_outputs(plan, rootfs, options.output_dir);
}

}  // namespace kiln
