#include "builder/export/pxe_folder.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <vector>

#include "builder/disk/gpt.h"
#include "builder/export/disk_formats.h"
#include "builder/export/disk_parts.h"
#include "builder/util/error.h"
#include "builder/util/files.h"
#include "builder/util/log.h"
#include "builder/util/process.h"
#include "builder/util/sha256.h"

namespace kiln {
namespace fs = std::filesystem;

namespace {

/// The disk image a node installs itself from (`pxe.install`), as the raw.zst output.
constexpr const char* kInstallImage = "disk.raw.zst";

/// The same EROFS root and hash tree the disk boots, in one file: root, then tree.
std::uint64_t write_root_image(const DiskArtifact& disk, const fs::path& out) {
  const GptPartition& root = find_partition(disk.layout, "root", disk.raw);
  const GptPartition& verity = find_partition(disk.layout, "root-verity", disk.raw);
  std::uint64_t root_bytes = used_bytes(disk, "root");
  int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw Error("cannot create " + out.string());
  append_range(disk.raw, root.offset, root_bytes, fd);
  append_range(disk.raw, verity.offset, used_bytes(disk, "root-verity"), fd);
  ::close(fd);
  return root_bytes;
}

std::string ipxe_script(const BuildPlan& plan, const std::string& cmdline) {
  return fmt::format(R"ipxe(#!ipxe
# kiln {name} ({arch}): boots the verified root image beside this script into RAM.
# Served over HTTP (kiln serve, nginx, matchbox); chain it from DHCP or an iPXE menu
# ({ipxe}).
# Optional, set before chaining:
#   kiln-base  this folder's URL (default: iPXE's ${{cwduri}}; iPXE builds from before
#              2016 lack it and must set kiln-base)
#   kiln-join  URL of a join config initrd from `kiln stamp --pxe`
#   kiln-args  more kernel arguments, e.g. kiln.join_url=URL kiln.join_sha256=HEX
isset ${{kiln-base}} || set kiln-base ${{cwduri}}
isset ${{kiln-args}} || set kiln-args
kernel vmlinuz initrd=initrd.img {cmdline} ${{kiln-args}}
initrd initrd.img
isset ${{kiln-join}} && initrd --name join.img ${{kiln-join}} ||
boot
)ipxe",
                     fmt::arg("name", plan.recipe.name), fmt::arg("cmdline", cmdline),
                     fmt::arg("arch", to_string(plan.recipe.base.arch)),
                     fmt::arg("ipxe", plan.recipe.base.arch == Arch::arm64
                                          ? "arm64 UEFI: iPXE's snp.efi for arm64"
                                          : "BIOS: undionly.kpxe; UEFI: ipxe.efi"));
}

std::string grub_config(const BuildPlan& plan, const std::string& cmdline) {
  // clang-format off
  return fmt::format(R"grub(# kiln {name} ({arch}): GRUB network boot (UEFI HTTP boot, or PXE with {grubnet}).
# The folder is expected at http://<boot server>${{kiln_path}}/; kiln_path defaults to the
# server's root. Set kiln_join to a `kiln stamp --pxe` initrd's path to join a cluster.
if [ -z "$kiln_path" ]; then set kiln_path=""; fi
set timeout=3
menuentry "kiln {name} (network, RAM)" {{
  linux ${{kiln_path}}/vmlinuz {cmdline}
  if [ -n "$kiln_join" ]; then
    initrd ${{kiln_path}}/initrd.img ${{kiln_join}}
  else
    initrd ${{kiln_path}}/initrd.img
  fi
}}
)grub",
                     fmt::arg("name", plan.recipe.name), fmt::arg("cmdline", cmdline),
                     fmt::arg("arch", to_string(plan.recipe.base.arch)),
                     fmt::arg("grubnet", plan.recipe.base.arch == Arch::arm64 ? "grubnetaa64.efi"
                                                                               : "grubnetx64.efi"));
  // clang-format on
}

}  // namespace

std::string netboot_cmdline(const BuildPlan& plan, const std::string& base_url,
                            const std::string& root_hash, std::uint64_t hash_offset,
                            const std::string& install_sha256) {
  std::string cmdline = "kiln.root_url=" + base_url + "/root.img kiln.roothash=" + root_hash +
                        " kiln.root_hash_offset=" + std::to_string(hash_offset) +
                        " ro systemd.firstboot=off";
  if (!install_sha256.empty()) {
    cmdline += " kiln.install_url=" + base_url + "/" + kInstallImage +
               " kiln.install_sha256=" + install_sha256;
  }
  for (const auto& arg : plan.recipe.kernel.cmdline) cmdline += " " + arg;
  return cmdline;
}

std::vector<ExportedFile> export_pxe_folder(const BuildPlan& plan, const DiskArtifact& disk,
                                            const fs::path& dir) {
  log::Stage stage("export pxe/");
  fs::path final_dir = dir / "pxe";
  fs::path work = temp_sibling(final_dir);
  TempPath cleanup(work);
  fs::remove_all(work);
  fs::create_directories(work);

  copy_from_esp(disk, "vmlinuz", work / "vmlinuz");
  copy_from_esp(disk, "initrd.img", work / "initrd.img");
  // What the root holds, for `kiln inspect` of the folder (and anyone auditing a boot server).
  copy_from_esp(disk, "manifest.json", work / "manifest.json");
  copy_from_esp(disk, "sbom.spdx.json", work / "sbom.spdx.json");
  std::uint64_t hash_offset = write_root_image(disk, work / "root.img");
  std::vector<std::string> names = {"boot.ipxe", "grub.cfg",       "initrd.img", "manifest.json",
                                    "root.img",  "sbom.spdx.json", "vmlinuz"};
  std::string install_sha256;
  if (plan.recipe.pxe.install) {
    write_raw_zst(disk.raw, work / kInstallImage);
    install_sha256 = sha256_file(work / kInstallImage);
    names.insert(names.begin(), kInstallImage);
  }
  write_file_atomic(work / "boot.ipxe",
                    ipxe_script(plan, netboot_cmdline(plan, "${kiln-base}", disk.root_hash,
                                                      hash_offset, install_sha256)));
  write_file_atomic(
      work / "grub.cfg",
      grub_config(plan, netboot_cmdline(plan, "http://${net_default_server}${kiln_path}",
                                        disk.root_hash, hash_offset, install_sha256)));

  std::vector<ExportedFile> files;
  std::string sums;
  for (const auto& name : names) {
    ExportedFile file{"pxe/" + name, fs::file_size(work / name), sha256_file(work / name)};
    sums += file.sha256 + "  " + name + "\n";
    files.push_back(std::move(file));
  }
  write_file_atomic(work / "SHA256SUMS", sums);
  files.push_back(
      {"pxe/SHA256SUMS", fs::file_size(work / "SHA256SUMS"), sha256_file(work / "SHA256SUMS")});
  for (const auto& entry : fs::directory_iterator(work)) {
    const timespec times[2] = {{plan.source_date_epoch, 0}, {plan.source_date_epoch, 0}};
    ::utimensat(AT_FDCWD, entry.path().c_str(), times, 0);
    fsync_path(entry.path());
  }
  // Replacing a previous build's folder: the old one moves aside first, as a directory
  // cannot be renamed over a non-empty one.
  if (fs::exists(final_dir)) {
    // The old folder may hold a join.img: registered, so a signal still removes it.
    fs::path old = temp_sibling(final_dir);
    fs::rename(final_dir, old);
    TempPath old_cleanup(old);
    fs::remove_all(old);
  }
  fs::rename(work, final_dir);
  cleanup.release();
  fsync_path(dir);
  std::sort(files.begin(), files.end(),
            [](const ExportedFile& a, const ExportedFile& b) { return a.name < b.name; });
  return files;
}

}  // namespace kiln
