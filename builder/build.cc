#include "builder/build.h"

#include <algorithm>
#include <future>
#include <optional>

#include "builder/disk/disk_image.h"
#include "builder/disk/layout.h"
#include "builder/export/exports.h"
#include "builder/fetch/cache.h"
#include "builder/join/discovery.h"
#include "builder/recipe/recipe_parser.h"
#include "builder/rootfs/bootstrap.h"
#include "builder/rootfs/compose.h"
#include "builder/rootfs/firstboot_payload.h"
#include "builder/rootfs/foreign_arch.h"
#include "builder/rootfs/kubernetes_binaries.h"
#include "builder/util/error.h"
#include "builder/util/files.h"
#include "builder/util/log.h"
#include "builder/util/sha256.h"
#include "builder/util/time.h"

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

/// Each stage's name and duration, for the closing report.
using StageTimes = std::vector<std::pair<std::string, double>>;

/// Runs `work` as a logged stage and records its duration for the closing report.
template <typename Work>
auto timed(StageTimes& times, const std::string& name, Work work) {
  log::Stage stage(name);
  struct Record {
    StageTimes& times;
    const std::string& name;
    log::Stage& stage;
    ~Record() { times.emplace_back(name, stage.elapsed_seconds()); }
  } record{times, name, stage};
  return work();
}

void require_cached_base(const BuildPlan& plan, const Cache& cache) {
  if (fs::exists(cache.stage_path("base", plan.base_key))) return;
  throw OfflineMiss("the base stage (Debian " + plan.recipe.base.suite +
                    " with the recipe's packages) is not in the cache " + cache.root().string() +
                    "; run the build once without --offline");
}

/// What the rootfs stage is made from.
struct RootfsInputs {
  BaseArtifact base;
  KubernetesArtifact kubernetes;
};

/// Stages 1 and 2. The bootstrap is mostly waiting on apt and dpkg; fetching or compiling the
/// Kubernetes binaries meanwhile takes them off the critical path.
RootfsInputs base_and_kubernetes(const BuildPlan& plan, Cache& cache, const BuildOptions& options,
                                 StageTimes& times) {
  StageTimes kubernetes_time;  // filled by its own thread
  auto kubernetes_future = std::async(std::launch::async, [&] {
    return timed(kubernetes_time, "kubernetes binaries",
                 [&] { return provide_kubernetes(plan, cache, options.rebuild, options.jobs); });
  });
  BaseArtifact base;
  try {
    base = timed(times, "base " + plan.recipe.base.suite,
                 [&] { return bootstrap_base(plan, cache, options.rebuild); });
  } catch (...) {
    kubernetes_future.wait();
    throw;
  }
  KubernetesArtifact kubernetes = kubernetes_future.get();
  times.insert(times.end(), kubernetes_time.begin(), kubernetes_time.end());
  return {std::move(base), std::move(kubernetes)};
}

void print_report(const std::optional<DiskArtifact>& disk, const std::vector<ExportedFile>& files,
                  const StageTimes& times) {
  log::info("");
  if (disk) {
    log::info("partition        used        allocated");
    for (const auto& p : disk->usage) {
      log::info("  {:<14} {:>10}  {:>10}", p.name, p.used ? log::human_bytes(p.used) : "-",
                log::human_bytes(p.size));
    }
  }
  log::info("output                            size");
  for (const auto& f : files) log::info("  {:<28} {:>10}", f.name, log::human_bytes(f.size));
  log::info("stage                             time");
  for (const auto& [name, seconds] : times) log::info("  {:<28} {:>8.1f} s", name, seconds);
}

}  // namespace

BuildPlan plan_build(const Recipe& recipe, PlanOptions options) {
  options.payload = kiln_payload(recipe);
  BuildPlan plan = make_plan(recipe, options);
  if (wants_disk(plan.recipe)) check_disk_size(plan);
  return plan;
}

BuildResult build(const BuildPlan& plan, const BuildOptions& options) {
  log::Stage whole("build " + plan.recipe.name);
  check_output_dir(options.output_dir);
  Cache cache(options.cache_dir, options.offline);
  log::info("    epoch {} ({}), cache {}", plan.source_date_epoch, plan.epoch_origin,
            cache.root().string());
  if (options.offline && !options.rebuild) require_cached_base(plan, cache);
  // Before the Kubernetes stage starts beside the bootstrap: that would be waited for first.
  if (options.rebuild || !fs::exists(cache.stage_path("base", plan.base_key)))
    require_foreign_arch_support(plan.recipe.base.arch);

  StageTimes times;
  // Named, not a structured binding: clang before 16 cannot capture those in a lambda.
  const RootfsInputs inputs = base_and_kubernetes(plan, cache, options, times);
  RootfsArtifact rootfs = timed(times, "rootfs", [&] {
    return compose_rootfs(plan, inputs.base, inputs.kubernetes, cache, options.rebuild);
  });
  std::optional<DiskArtifact> disk;
  if (wants_disk(plan.recipe))
    disk = timed(times, "disk", [&] { return build_disk(plan, rootfs, cache, options.rebuild); });
  // The build may have taken long enough for the token to run out.
  if (options.join) check_not_expired(*options.join, unix_now());
  std::vector<ExportedFile> files = timed(times, "export", [&] {
    return export_outputs(plan, rootfs, disk, options.join, options.output_dir,
                          options.signing_key);
  });
  print_report(disk, files, times);

  BuildResult result;
  for (const auto& f : files) result.files.push_back(options.output_dir / f.name);
  result.files.push_back(options.output_dir / "SHA256SUMS");
  result.rootfs_sha256 = rootfs.tarball_sha256;
  return result;
}

}  // namespace kiln
