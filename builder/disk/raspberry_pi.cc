#include "builder/disk/raspberry_pi.h"

#include <archive.h>
#include <archive_entry.h>
#include <fmt/format.h>

#include <memory>
#include <sstream>
#include <string_view>

#include "builder/util/error.h"
#include "builder/util/files.h"

namespace kiln {
namespace fs = std::filesystem;

namespace {

using ArchivePtr = std::unique_ptr<archive, int (*)(archive*)>;

// The package is verified by its SHA-256 before it is read; the caps only keep a wrong
// firmware_url (a recipe's own choice) from filling memory.
constexpr la_int64_t kMaxDataTar = 64 << 20;
constexpr la_int64_t kMaxMember = 16 << 20;

constexpr std::string_view kStartElf = "usr/lib/raspi-firmware/start4.elf";
constexpr std::string_view kFixupDat = "usr/lib/raspi-firmware/fixup4.dat";
constexpr std::string_view kCopyright = "usr/share/doc/raspi-firmware/copyright";

std::string read_member(archive* reader, archive_entry* entry, la_int64_t cap,
                        const std::string& what) {
  la_int64_t size = archive_entry_size(entry);
  if (size < 0 || size > cap) throw Error(fmt::format("{} is larger than {} bytes", what, cap));
  std::string data(static_cast<std::size_t>(size), '\0');
  if (archive_read_data(reader, data.data(), data.size()) != size)
    throw Error(what + " is cut short: " + archive_error_string(reader));
  return data;
}

std::string_view without_dot_slash(std::string_view name) {
  while (name.substr(0, 2) == "./") name.remove_prefix(2);
  return name;
}

std::string data_tar_of(const fs::path& deb) {
  ArchivePtr outer(archive_read_new(), archive_read_free);
  archive_read_support_format_ar(outer.get());
  if (archive_read_open_filename(outer.get(), deb.c_str(), 1 << 16) != ARCHIVE_OK)
    throw Error(deb.string() + " is not a Debian package: " + archive_error_string(outer.get()));
  archive_entry* entry;
  while (archive_read_next_header(outer.get(), &entry) == ARCHIVE_OK) {
    std::string_view name = archive_entry_pathname(entry);
    if (name.substr(0, 8) == "data.tar")
      return read_member(outer.get(), entry, kMaxDataTar, deb.string() + ": " + std::string(name));
  }
  throw Error(deb.string() + " is not a Debian package: it has no data.tar member");
}

}  // namespace

RaspiFirmware read_raspi_firmware(const fs::path& deb) {
  std::string data = data_tar_of(deb);
  ArchivePtr inner(archive_read_new(), archive_read_free);
  archive_read_support_filter_all(inner.get());
  archive_read_support_format_tar(inner.get());
  if (archive_read_open_memory(inner.get(), data.data(), data.size()) != ARCHIVE_OK)
    throw Error(deb.string() + ": cannot read data.tar: " + archive_error_string(inner.get()));
  RaspiFirmware firmware;
  archive_entry* entry;
  while (archive_read_next_header(inner.get(), &entry) == ARCHIVE_OK) {
    std::string_view name = without_dot_slash(archive_entry_pathname(entry));
    std::string* into = name == kStartElf    ? &firmware.start_elf
                        : name == kFixupDat  ? &firmware.fixup_dat
                        : name == kCopyright ? &firmware.copyright
                                             : nullptr;
    if (into) *into = read_member(inner.get(), entry, kMaxMember, deb.string() + ": " + *into);
  }
  for (auto [content, path] : {std::pair{&firmware.start_elf, kStartElf},
                               {&firmware.fixup_dat, kFixupDat},
                               {&firmware.copyright, kCopyright}}) {
    if (content->empty())
      throw Error(
          fmt::format("{} has no /{}: is it Debian's raspi-firmware package?", deb.string(), path));
  }
  return firmware;
}

std::string raspberry_pi_cmdline(const std::string& cmdline) {
  std::istringstream words(cmdline);
  std::string out;
  for (std::string word; words >> word;) {
    if (word.rfind("console=", 0) == 0) continue;
    out += word + " ";
  }
  // The last console is /dev/console, where systemd writes: the serial header.
  return out + "console=tty0 console=ttyS1,115200";
}

std::string raspberry_pi_config() {
  return "# Written by kiln for the Raspberry Pi 4 firmware (start4.elf). Every boot file is\n"
         "# looked up under os_prefix: kiln/vmlinuz, kiln/initrd.img, kiln/cmdline.txt and the\n"
         "# board's device tree, the files systemd-boot boots on UEFI machines.\n"
         "[all]\n"
         "arm_64bit=1\n"
         "upstream_kernel=1\n"
         "enable_uart=1\n"
         "os_prefix=kiln/\n"
         "kernel=vmlinuz\n"
         "initramfs initrd.img followkernel\n"
         "\n"
         "[cm4]\n"
         "# Debian's kernel has the Compute Module 4 device tree of its IO board only.\n"
         "device_tree=bcm2711-rpi-cm4-io.dtb\n"
         "\n"
         "[all]\n";
}

void add_raspberry_pi_boot(const fs::path& esp, const fs::path& root,
                           const std::string& kernel_version, const std::string& cmdline,
                           const RaspiFirmware& firmware) {
  // The firmware jumps to the kernel's first byte: it must be an arm64 Image (Debian's
  // vmlinuz is one, with an EFI stub), not a compressed EFI zboot wrapper.
  std::string header = read_at(esp / "kiln/vmlinuz", 0, 64);
  if (header.size() < 64 || header.substr(0x38, 4) != "ARM\x64") {
    throw Error("the kernel " + kernel_version +
                " is not an arm64 Image the Raspberry Pi firmware can start (no ARM\\x64 magic "
                "at offset 0x38); use Debian's linux-image-arm64");
  }
  // 6.12 packages keep device trees in /usr/lib/linux-image-VERSION, later ones beside the
  // modules.
  fs::path trees = root / "usr/lib" / ("linux-image-" + kernel_version) / "broadcom";
  if (!fs::exists(trees)) trees = root / "usr/lib/modules" / kernel_version / "dtb/broadcom";
  for (const char* name : kRaspberryPi4DeviceTrees) {
    if (!fs::exists(trees / name)) {
      throw Error(
          fmt::format("the kernel {} has no Raspberry Pi 4 device tree {} (looked in "
                      "/usr/lib/linux-image-{}/broadcom and "
                      "/usr/lib/modules/{}/dtb/broadcom)",
                      kernel_version, name, kernel_version, kernel_version));
    }
    fs::copy_file(trees / name, esp / "kiln" / name);
  }
  write_file_atomic(esp / "kiln/cmdline.txt", raspberry_pi_cmdline(cmdline) + "\n");
  write_file_atomic(esp / "config.txt", raspberry_pi_config());
  write_file_atomic(esp / "start4.elf", firmware.start_elf);
  write_file_atomic(esp / "fixup4.dat", firmware.fixup_dat);
  write_file_atomic(esp / "raspi-firmware.copyright", firmware.copyright);
}

}  // namespace kiln
