#include "builder/plan/stage_keys.h"

#include <fmt/format.h>
#include <sys/stat.h>

#include <algorithm>
#include <vector>

#include "builder/export/output_formats.h"
#include "builder/plan/plan.h"
#include "builder/util/files.h"
#include "builder/util/process.h"
#include "builder/util/sha256.h"

namespace kiln {
namespace fs = std::filesystem;

std::string hash_tree(const fs::path& root) {
  std::vector<fs::path> entries;
  for (const auto& entry : fs::recursive_directory_iterator(root)) entries.push_back(entry.path());
  std::sort(entries.begin(), entries.end());
  Sha256 hasher;
  for (const auto& path : entries) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) continue;
    hasher.update(path.lexically_relative(root).string());
    hasher.update(fmt::format("\0{:o}\0", st.st_mode));
    if (S_ISLNK(st.st_mode)) hasher.update(fs::read_symlink(path).string());
    if (S_ISREG(st.st_mode)) hasher.update(sha256_file(path));
    hasher.update(std::string_view("\n", 1));
  }
  return hasher.hex();
}

namespace {

std::string go_version() {
  try {
    return run({"go", "env", "GOVERSION"}, {.capture_stdout = true}).stdout_text;
  } catch (const std::exception&) {
    return "go-unavailable";
  }
}

}  // namespace

void compute_stage_keys(BuildPlan& plan) {
  const Recipe& r = plan.recipe;
  Sha256 base;
  base.update(fmt::format("base/{}\n{}\n{}\n{}\n{}\n{}\n", kBaseStageFormat, r.base.distribution,
                          r.base.suite, to_string(r.base.arch), r.base.mirror,
                          plan.source_date_epoch));
  for (const auto& package : plan.packages) base.update(package + "\n");
  for (const auto& path : r.kernel.omit_modules) base.update("omit " + path + "\n");
  for (const auto& [path, content] : plan.payload.initrd_support_files)
    base.update(path + "\n" + content);
  base.update(plan.payload.initrd_build_script);
  base.update("netroot " + plan.payload.netroot_digest + "\n");
  plan.base_key = base.hex();

  Sha256 k8s;
  k8s.update(fmt::format("kubernetes/{}\n{}\n{}\n{}\n{}\n", kKubernetesStageFormat,
                         to_string(plan.kubernetes_source), r.kubernetes.version.text(),
                         r.kubernetes.crictl_version.text(), to_string(r.base.arch)));
  for (const auto& d : plan.downloads) k8s.update(d.name + " " + d.url + " " + d.sha256 + "\n");
  for (const auto& b : plan.go_binaries) k8s.update(b.name + " " + b.package + "\n");
  if (!plan.go_binaries.empty()) k8s.update(go_version());
  k8s.update(fmt::format("{}\n", plan.source_date_epoch));
  plan.kubernetes_key = k8s.hex();

  Sha256 rootfs;
  rootfs.update(fmt::format("rootfs/{}\n{}\n{}\n{}\n", kRootfsStageFormat, plan.base_key,
                            plan.kubernetes_key, plan.recipe_hash));
  for (const auto& overlay : r.overlays) rootfs.update(hash_tree(overlay.directory) + "\n");
  rootfs.update("firstboot " + plan.payload.agent_digest + "\n");
  // Trusted update keys are files beside the recipe: their content goes into the image.
  for (const auto& key : r.updates.trusted_keys)
    rootfs.update("trusted " + sha256_hex(key.pem) + "\n");
  // The image's manifest names the kiln that composed it.
  rootfs.update("kiln " KILN_VERSION "\n");
  plan.rootfs_key = rootfs.hex();

  if (!wants_disk(r)) return;
  Sha256 disk;
  disk.update(fmt::format("disk/{}\n{}\n{}\n{}\n{}\n{}\n", kDiskStageFormat, plan.rootfs_key,
                          r.disk.size_bytes, r.disk.root_bytes,
                          r.disk.root_b_bytes ? std::to_string(*r.disk.root_b_bytes) : "as-root",
                          r.disk.state_bytes));
  for (const auto& arg : r.kernel.cmdline) disk.update(arg + "\n");
  if (r.board.model != Board::generic)
    disk.update(fmt::format("board {}\n", to_string(r.board.model)));
  if (plan.board_firmware) disk.update("firmware " + plan.board_firmware->sha256 + "\n");
  plan.disk_key = disk.hex();
}

bool wants_disk(const Recipe& recipe) {
  return std::any_of(recipe.outputs.begin(), recipe.outputs.end(), [](const std::string& output) {
    const OutputFormat* format = find_output_format(output);
    return format && format->needs_disk;
  });
}

}  // namespace kiln
