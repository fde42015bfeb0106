#pragma once

#include <array>
#include <string>
#include <string_view>

namespace kiln {

/// One output format a recipe's `outputs:` or `kiln build --outputs` may name. The recipe
/// parser, `--outputs`, `kiln validate --help`, the disk decision and the export step all read
/// this one table. How a format is written is its writer of the same name in
/// output_writers.cc (a compile-time check pairs the two). The table is plain data in a header
/// so that code which only names formats (the recipe parser, linked into the first-boot
/// agent too) does not link the writers.
struct OutputFormat {
  std::string_view name;
  /// Written from the disk image: asking for it runs the disk stage.
  bool needs_disk = true;
  /// What it writes, for help texts.
  std::string_view help;
  /// A format whose files this one needs, written first ("" for none).
  std::string_view depends_on;
  /// The dependency's files stay in the output directory even when it was not asked for
  /// (an AMI registration names the raw image beside it); otherwise they are removed.
  bool keeps_dependency = false;
  /// A conversion of the whole disk image, run on the export workers beside the others;
  /// formats without it run alone, in table order.
  bool converts_disk = false;
  /// Among the conversions, started first so that the workers finish together.
  bool long_running = false;
  /// For platforms whose virtual disks have 512-byte sectors (clouds, hypervisors): not
  /// written for a recipe's `disk.sector_size: 4096`.
  bool sectors_512_only = false;
  /// Describes an x86-64 machine around the disk (an OVF's guest type): not for arm64.
  bool x86_only = false;
  /// For clouds, hypervisors, netboot or update servers: not for a `board:` that boots a
  /// flashed disk.
  bool not_for_boards = false;
};

inline constexpr std::array kOutputFormats = {
    OutputFormat{.name = "rootfs",
                 .needs_disk = false,
                 .help = "rootfs.tar, the root file system as a tarball"},
    OutputFormat{.name = "raw", .help = "NAME.raw, the raw disk image", .converts_disk = true},
    OutputFormat{.name = "raw.zst",
                 .help = "NAME.raw.zst and its block map NAME.raw.bmap, for flashing",
                 .converts_disk = true,
                 .long_running = true},
    OutputFormat{.name = "qcow2", .help = "NAME.qcow2 (QEMU, OpenStack)", .converts_disk = true},
    OutputFormat{.name = "vhd",
                 .help = "NAME.vhd, a fixed VHD (Azure)",
                 .converts_disk = true,
                 .sectors_512_only = true,
                 .not_for_boards = true},
    OutputFormat{.name = "vmdk",
                 .help = "NAME.vmdk, stream-optimized (VMware)",
                 .converts_disk = true,
                 .long_running = true,
                 .sectors_512_only = true,
                 .not_for_boards = true},
    OutputFormat{.name = "ova",
                 .help = "NAME.ova, the VMDK with an OVF descriptor (vSphere, VirtualBox)",
                 .depends_on = "vmdk",
                 .converts_disk = true,
                 .sectors_512_only = true,
                 .x86_only = true,
                 .not_for_boards = true},
    OutputFormat{.name = "gce",
                 .help = "NAME.gce.tar.gz, Google Compute Engine's image import format",
                 .converts_disk = true,
                 .long_running = true,
                 .sectors_512_only = true,
                 .not_for_boards = true},
    OutputFormat{.name = "ami",
                 .help = "NAME.raw plus NAME.register-ami.json for `aws ec2 register-image`",
                 .depends_on = "raw",
                 .keeps_dependency = true,
                 .converts_disk = true,
                 .sectors_512_only = true,
                 .not_for_boards = true},
    OutputFormat{
        .name = "pxe", .help = "pxe/, a netboot folder (iPXE, GRUB)", .not_for_boards = true},
    OutputFormat{.name = "update",
                 .help = "update/, the signed folder nodes update from (needs --signing-key)",
                 .not_for_boards = true},
};

/// The table row named `name`, or nullptr.
constexpr const OutputFormat* find_output_format(std::string_view name) {
  for (const auto& format : kOutputFormats) {
    if (format.name == name) return &format;
  }
  return nullptr;
}

/// The first of `outputs` whose table row has `restriction` set (e.g.
/// &OutputFormat::sectors_512_only: not for a disk of 4096-byte sectors), or "".
template <typename Names>
std::string_view first_output_with(const Names& outputs, bool OutputFormat::*restriction) {
  for (const auto& name : outputs) {
    const OutputFormat* format = find_output_format(name);
    if (format && format->*restriction) return format->name;
  }
  return {};
}

/// "rootfs, raw, raw.zst, ..." in table order, for messages and help.
inline std::string output_format_names() {
  std::string names;
  for (const auto& format : kOutputFormats) {
    names += (names.empty() ? "" : ", ");
    names += format.name;
  }
  return names;
}

}  // namespace kiln
