#include "builder/disk/boot_loaders.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "builder/util/error.h"
#include "builder/util/files.h"
#include "builder/util/process.h"

namespace kiln {
namespace fs = std::filesystem;

namespace {

const fs::path kGrubModules = "/usr/lib/grub/i386-pc";

// Offsets in GRUB 2's i386-pc boot.img and diskboot.img (include/grub/i386/pc/boot.h).
constexpr std::size_t kBpbStart = 0x03, kBpbEnd = 0x5a;
constexpr std::size_t kKernelSector = 0x5c;
constexpr std::size_t kDriveCheck = 0x66;
constexpr std::size_t kPartitionTableStart = 0x1b8;  // disk signature, table, 0x55aa
constexpr std::size_t kBlocklistStart = 0x200 - 12;  // diskboot's first blocklist entry

void put_le64(std::string& buffer, std::size_t at, std::uint64_t value) {
  for (int i = 0; i < 8; ++i) buffer[at + i] = static_cast<char>(value >> (8 * i));
}

}  // namespace

BootEntry find_boot_entry(const fs::path& root) {
  std::vector<std::string> versions;
  for (const auto& entry : fs::directory_iterator(root / "boot")) {
    std::string name = entry.path().filename();
    if (name.rfind("vmlinuz-", 0) == 0) versions.push_back(name.substr(8));
  }
  if (versions.empty())
    throw Error("the image has no kernel in /boot; add kernel.package to the recipe");
  std::sort(versions.begin(), versions.end());
  BootEntry entry;
  entry.kernel_version = versions.back();
  entry.kernel = root / "boot" / ("vmlinuz-" + entry.kernel_version);
  entry.initrd = root / "boot" / ("initrd.img-" + entry.kernel_version);
  if (!fs::exists(entry.initrd))
    throw Error("the image has no initrd for kernel " + entry.kernel_version);
  return entry;
}

void populate_esp(const fs::path& esp, const fs::path& root, const BootEntry& entry,
                  bool with_bios) {
  fs::create_directories(esp / "kiln");
  fs::copy_file(entry.kernel, esp / "kiln/vmlinuz");
  fs::copy_file(entry.initrd, esp / "kiln/initrd.img");

  // UEFI: systemd-boot at the removable-media path boots with empty NVRAM.
  fs::path systemd_boot = root / "usr/lib/systemd/boot/efi/systemd-bootx64.efi";
  if (!fs::exists(systemd_boot))
    systemd_boot = root / "usr/lib/systemd/boot/efi/systemd-bootaa64.efi";
  if (!fs::exists(systemd_boot))
    throw Error("the image has no systemd-boot EFI binary (package systemd-boot-efi)");
  std::string efi_name =
      systemd_boot.filename() == "systemd-bootx64.efi" ? "BOOTX64.EFI" : "BOOTAA64.EFI";
  fs::create_directories(esp / "EFI/BOOT");
  fs::copy_file(systemd_boot, esp / "EFI/BOOT" / efi_name);
  // The first kiln entry in systemd-boot's order: newest version first, spent trials last.
  write_file_atomic(esp / "loader/loader.conf", "default kiln-*\ntimeout 0\neditor no\n");
  write_file_atomic(esp / "loader/entries" / ("kiln-" + entry.image_version + ".conf"),
                    fmt::format("title {}\nsort-key kiln\nversion {}\nlinux /kiln/vmlinuz\n"
                                "initrd /kiln/initrd.img\noptions {}\n",
                                entry.title, entry.image_version, entry.cmdline));
  if (!with_bios) return;

  // Legacy BIOS: GRUB's modules and config beside them; core.img finds this partition.
  if (!fs::exists(kGrubModules / "boot.img"))
    throw Error("GRUB's BIOS modules are missing; install them with: apt-get install grub-pc-bin");
  fs::create_directories(esp / "grub/i386-pc");
  for (const auto& file : fs::directory_iterator(kGrubModules)) {
    auto ext = file.path().extension();
    if (ext == ".mod" || ext == ".lst")
      fs::copy_file(file.path(), esp / "grub/i386-pc" / file.path().filename());
  }
  write_file_atomic(esp / "grub/grub.cfg", fmt::format("set timeout=0\n"
                                                       "menuentry '{}' {{\n"
                                                       "  linux /kiln/vmlinuz {}\n"
                                                       "  initrd /kiln/initrd.img\n"
                                                       "}}\n",
                                                       entry.title, entry.cmdline));
}

void make_grub_core(const fs::path& core, std::uint32_t esp_volume_id) {
  require_program("grub-mkimage", "grub-pc-bin");
  fs::path early = core.parent_path() / "grub-early.cfg";
  write_file_atomic(early, fmt::format("search --no-floppy --fs-uuid --set=root {:04X}-{:04X}\n"
                                       "set prefix=($root)/grub\n",
                                       esp_volume_id >> 16, esp_volume_id & 0xffff));
  run({"grub-mkimage", "-O", "i386-pc", "-d", kGrubModules.string(), "-c", early.string(), "-p",
       "/grub", "-o", core.string(), "biosdisk", "part_gpt", "fat", "search", "search_fs_uuid"},
      {.quiet = true});
}

void install_grub_bios(const fs::path& disk_image, const GptPartition& bios_boot,
                       const fs::path& core) {
  std::string boot = read_file(kGrubModules / "boot.img");
  std::string image = read_file(core);
  if (boot.size() != kSectorSize || image.size() < kSectorSize)
    throw Error("unexpected GRUB boot.img/core.img sizes");
  if (image.size() > bios_boot.size) {
    throw Error(fmt::format("GRUB's core image ({} bytes) does not fit the bios-boot partition",
                            image.size()));
  }
  std::uint64_t first_sector = bios_boot.offset / kSectorSize;
  std::string mbr = read_at(disk_image, 0, kSectorSize);
  std::memcpy(boot.data() + kBpbStart, mbr.data() + kBpbStart, kBpbEnd - kBpbStart);
  std::memcpy(boot.data() + kPartitionTableStart, mbr.data() + kPartitionTableStart,
              kSectorSize - kPartitionTableStart);
  put_le64(boot, kKernelSector, first_sector);
  // Some BIOSes pass a wrong drive number; GRUB's workaround for hard disks.
  boot[kDriveCheck] = boot[kDriveCheck + 1] = static_cast<char>(0x90);
  // diskboot.img loads the rest of core.img from the sectors right after its own.
  put_le64(image, kBlocklistStart, first_sector + 1);
  write_at(disk_image, image, bios_boot.offset);
  write_at(disk_image, boot, 0);
}

}  // namespace kiln
