#pragma once

#include <filesystem>
#include <string>

namespace kiln {

/// The Pi 4 boot firmware kiln takes from a Debian raspi-firmware package (Architecture: all;
/// the package itself is not installed: its hooks want a mounted /boot/firmware).
struct RaspiFirmware {
  std::string start_elf;  ///< start4.elf, the VideoCore firmware that reads config.txt
  std::string fixup_dat;  ///< fixup4.dat, its matching memory split
  std::string copyright;  ///< the package's copyright file: the firmware's redistribution terms
};

/// Reads the firmware files out of the .deb (an ar archive holding data.tar.*).
RaspiFirmware read_raspi_firmware(const std::filesystem::path& deb);

/// The command line the Pi firmware passes (cmdline.txt): `cmdline` without its console=
/// arguments, which name UEFI machines' UARTs, then the Pi 4's screen and its GPIO 14/15
/// serial header. On Debian's upstream device tree that header is the mini UART, ttyS1;
/// ttyAMA0 is wired to Bluetooth.
std::string raspberry_pi_cmdline(const std::string& cmdline);

/// config.txt: 64-bit, the upstream kernel's device-tree names, the serial header on, and
/// every boot file looked up under kiln/ (os_prefix), where systemd-boot finds them too.
std::string raspberry_pi_config();

/// The device trees a Pi 4 firmware looks for, copied from the kernel package.
inline constexpr const char* kRaspberryPi4DeviceTrees[] = {
    "bcm2711-rpi-4-b.dtb",
    "bcm2711-rpi-400.dtb",
    "bcm2711-rpi-cm4-io.dtb",
};

/// Adds the Pi 4 firmware boot files to an ESP that already holds kiln/vmlinuz and
/// kiln/initrd.img: start4.elf, fixup4.dat and config.txt at its root; cmdline.txt and the
/// kernel `kernel_version`'s Pi 4 device trees (from the unpacked `root`) beside the kernel.
/// The ESP keeps systemd-boot: the same disk still boots on UEFI machines.
void add_raspberry_pi_boot(const std::filesystem::path& esp, const std::filesystem::path& root,
                           const std::string& kernel_version, const std::string& cmdline,
                           const RaspiFirmware& firmware);

}  // namespace kiln
