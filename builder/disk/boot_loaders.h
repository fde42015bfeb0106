#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "builder/disk/gpt.h"

namespace kiln {

/// What the ESP boots: the kernel and initrd found in the root tree, and their command line.
struct BootEntry {
  std::filesystem::path kernel;
  std::filesystem::path initrd;
  std::string kernel_version;
  std::string cmdline;
  std::string title;
  std::string image_version;  ///< the recipe's version: names the loader entry
};

/// Finds /boot/vmlinuz-<version> and its initrd in an unpacked root; throws if absent.
BootEntry find_boot_entry(const std::filesystem::path& root);

/// Fills `esp` with the kernel, initrd, systemd-boot (UEFI, from the image's own
/// systemd-boot-efi) and GRUB's i386-pc modules and config (legacy BIOS): both load the same
/// kernel with the same command line. The loader entry is loader/entries/kiln-VERSION.conf
/// with sort-key kiln and the image version, so that systemd-boot puts the newest version
/// first and a version that used up its boot tries (kiln-update) last.
void populate_esp(const std::filesystem::path& esp, const std::filesystem::path& root,
                  const BootEntry& entry, bool with_bios);

/// Makes GRUB's i386-pc core image, which finds the ESP by its FAT volume ID.
void make_grub_core(const std::filesystem::path& core, std::uint32_t esp_volume_id);

/// Embeds GRUB for legacy BIOS as grub-bios-setup would: boot.img in the MBR's code area
/// (partition table kept) pointing at core.img, written to the bios-boot partition.
void install_grub_bios(const std::filesystem::path& disk_image, const GptPartition& bios_boot,
                       const std::filesystem::path& core);

}  // namespace kiln
