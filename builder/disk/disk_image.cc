#include "builder/disk/disk_image.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <future>
#include <optional>
#include <sstream>

#include "builder/disk/boot_loaders.h"
#include "builder/disk/filesystems.h"
#include "builder/disk/layout.h"
#include "builder/disk/raspberry_pi.h"
#include "builder/disk/sparse_copy.h"
#include "builder/util/error.h"
#include "builder/util/files.h"
#include "builder/util/log.h"
#include "builder/util/sha256.h"

namespace kiln {
namespace fs = std::filesystem;

namespace {

std::uint32_t volume_id(const BuildPlan& plan, const std::string& what) {
  return static_cast<std::uint32_t>(std::stoul(
      sha256_hex("kiln/" + plan.recipe_hash + "/fat/" + what).substr(0, 8), nullptr, 16));
}

/// The image's /var becomes the state partition's seed; the root keeps an empty mount point.
void split_var(const fs::path& root, const fs::path& state, long long epoch) {
  fs::rename(root / "var", state);
  fs::create_directory(root / "var");
  for (const char* dir : {"lib/kiln/etc/upper", "lib/kiln/etc/work"})
    fs::create_directories(state / dir);
  const timespec times[2] = {{epoch, 0}, {epoch, 0}};
  for (const char* dir :
       {"", "lib/kiln", "lib/kiln/etc", "lib/kiln/etc/upper", "lib/kiln/etc/work"})
    ::utimensat(AT_FDCWD, (state / dir).c_str(), times, AT_SYMLINK_NOFOLLOW);
  ::utimensat(AT_FDCWD, (root / "var").c_str(), times, AT_SYMLINK_NOFOLLOW);
  ::utimensat(AT_FDCWD, root.c_str(), times, AT_SYMLINK_NOFOLLOW);
}

/// The kernel and initrd boot from the ESP; keeping copies in the root would only add
/// their ~50 MB to every image and update.
BootEntry move_boot_files(const fs::path& root, const fs::path& to) {
  BootEntry entry = find_boot_entry(root);
  fs::create_directories(to);
  for (fs::path* file : {&entry.kernel, &entry.initrd}) {
    fs::path moved = to / file->filename();
    fs::rename(*file, moved);
    *file = moved;
  }
  for (const char* link : {"vmlinuz", "vmlinuz.old", "initrd.img", "initrd.img.old"}) {
    if (fs::is_symlink(root / link)) fs::remove(root / link);
  }
  return entry;
}

void create_sparse(const fs::path& path, std::uint64_t size) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0 || ::ftruncate(fd, size) != 0) {
    if (fd >= 0) ::close(fd);
    throw Error("cannot create " + path.string());
  }
  ::close(fd);
}

std::string render_usage(const std::vector<PartitionUsage>& usage) {
  std::string out;
  for (const auto& u : usage) out += fmt::format("{}\t{}\t{}\n", u.name, u.used, u.size);
  return out;
}

DiskArtifact load_artifact(const fs::path& stage) {
  DiskArtifact artifact;
  artifact.raw = stage / "disk.raw";
  artifact.layout = read_gpt(artifact.raw);
  artifact.root_hash = read_file(stage / "root-hash");
  std::istringstream in(read_file(stage / "usage.tsv"));
  for (std::string name, used, size; in >> name >> used >> size;)
    artifact.usage.push_back({name, std::stoull(used), std::stoull(size)});
  return artifact;
}

}  // namespace

std::string kernel_cmdline(const BuildPlan& plan, const std::string& root_hash) {
  // systemd-veritysetup-generator opens root + root-verity found by the hash's two halves;
  // a block that fails verification panics the kernel rather than serving altered data.
  std::string cmdline = "roothash=" + root_hash +
                        " systemd.verity_root_options=panic-on-corruption ro"
                        // The image is configured at build time: no interactive first-boot
                        // prompts for locale or root password.
                        " systemd.firstboot=off";
  for (const auto& arg : plan.recipe.kernel.cmdline) cmdline += " " + arg;
  return cmdline;
}

DiskArtifact build_disk(const BuildPlan& plan, const RootfsArtifact& rootfs, Cache& cache,
                        bool rebuild) {
  StageEntry stage(cache, "disk", plan.disk_key, rebuild);
  if (stage.reuse()) return load_artifact(stage.path());
  const long long epoch = plan.source_date_epoch;
  const fs::path& work = stage.scratch();
  // Fetched first: a download that fails should not cost the EROFS compression.
  std::optional<RaspiFirmware> pi_firmware;
  if (const auto& firmware = plan.board_firmware)
    pi_firmware = read_raspi_firmware(cache.fetch(firmware->url, firmware->sha256, firmware->name));

  fs::path root = work / "root", state_seed = work / "state-seed";
  log::info("    unpacking the root file system");
  extract_tar(rootfs.tarball, root);
  split_var(root, state_seed, epoch);
  BootEntry entry = move_boot_files(root, work / "boot");
  entry.title = "kiln " + plan.recipe.name + " " + plan.recipe.version;
  entry.image_version = plan.recipe.version;

  // EROFS compression is the longest step and single-threaded: the rest runs beside it.
  auto root_image = std::async(std::launch::async, [&] {
    const RootCompression compression = plan.recipe.disk.root_compression;
    log::info("    mkfs.erofs ({}) of the read-only root", to_string(compression));
    make_erofs(root, work / "root.erofs", Guid::derived("kiln/" + plan.recipe_hash + "/erofs").text,
               epoch, compression);
  });
  DiskContent content;
  fs::path core = work / "core.img";
  const std::uint64_t sector = plan.recipe.disk.sector_size;
  const bool bios = boots_by_bios(plan.recipe);
  try {
    content.state_used = tree_usage(state_seed);
    fs::create_directories(work / "config");
    make_fat(work / "config.fat", kConfigSize, "KILNCFG", volume_id(plan, "config"),
             work / "config", epoch, sector);
    if (bios) make_grub_core(core, volume_id(plan, "esp"));
  } catch (...) {
    root_image.wait();
    throw;
  }
  root_image.get();
  content.root_bytes = fs::file_size(work / "root.erofs");
  content.root_hash = make_verity(work / "root.erofs", work / "root.verity",
                                  sha256_hex("kiln/" + plan.recipe_hash + "/verity-salt"),
                                  Guid::derived("kiln/" + plan.recipe_hash + "/verity").text);

  entry.cmdline = kernel_cmdline(plan, content.root_hash);
  populate_esp(work / "esp", root, entry, bios);
  if (pi_firmware) {
    log::info("    Raspberry Pi 4 firmware and device trees on the ESP");
    add_raspberry_pi_boot(work / "esp", root, entry.kernel_version, entry.cmdline, *pi_firmware);
  }
  // What the image holds, where `kiln inspect` reads it without opening the EROFS root.
  fs::copy_file(rootfs.manifest, work / "esp" / "kiln" / "manifest.json");
  fs::copy_file(rootfs.sbom, work / "esp" / "kiln" / "sbom.spdx.json");
  content.esp_used = tree_usage(work / "esp");
  GptDisk layout = plan_disk_layout(plan, content);
  auto partition = [&](const std::string& name) -> const GptPartition& {
    return find_partition(layout, name, work / "disk.raw");
  };
  make_fat(work / "esp.fat", partition("esp").size, "ESP", volume_id(plan, "esp"), work / "esp",
           epoch, sector);
  make_ext4(work / "state.ext4", partition("state").size, "state",
            Guid::derived("kiln/" + plan.recipe_hash + "/state-fs").text, state_seed, epoch);
  fs::remove_all(root);

  log::info("    writing the GPT disk ({})", log::human_bytes(layout.size));
  fs::path raw = work / "disk.raw";
  create_sparse(raw, layout.size);
  copy_into(work / "esp.fat", raw, partition("esp").offset);
  copy_into(work / "root.erofs", raw, partition("root").offset);
  copy_into(work / "root.verity", raw, partition("root-verity").offset);
  copy_into(work / "config.fat", raw, partition("kiln-config").offset);
  copy_into(work / "state.ext4", raw, partition("state").offset);
  write_gpt(raw, layout);
  if (bios) install_grub_bios(raw, partition("bios-boot"), core);
  fsync_path(raw);

  std::vector<PartitionUsage> usage;
  for (const auto& p : layout.partitions) {
    std::uint64_t used = 0;
    if (p.name == "esp") used = content.esp_used;
    if (p.name == "bios-boot" && bios) used = fs::file_size(core);
    if (p.name == "root") used = content.root_bytes;
    if (p.name == "root-verity") used = fs::file_size(work / "root.verity");
    if (p.name == "state") used = content.state_used;
    usage.push_back({p.name, used, p.size});
  }
  for (const char* scratch : {"esp.fat", "root.erofs", "root.verity", "config.fat", "state.ext4"})
    fs::remove(work / scratch);
  fs::remove_all(work / "esp");
  fs::remove_all(work / "boot");
  fs::remove_all(state_seed);
  fs::remove_all(work / "config");
  write_file_atomic(work / "root-hash", content.root_hash);
  write_file_atomic(work / "usage.tsv", render_usage(usage));
  stage.publish();
  return load_artifact(stage.path());
}

}  // namespace kiln
