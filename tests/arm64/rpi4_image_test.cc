// recipes/worker-rpi4.yaml (the build_rpi4_image fixture): the arm64 worker whose ESP also
// boots through the Raspberry Pi 4 firmware. qemu cannot run that firmware, so the tests check
// what it reads (partition table, FAT, config.txt and the files under its os_prefix), then
// boot the kernel, initrd and cmdline.txt it would hand over on qemu's arm64 `virt` machine,
// from a copy flashed with bmaptool onto a larger card.
#include <catch2/catch.hpp>
#include <filesystem>
#include <map>
#include <sstream>
#include <vector>

#include "builder/disk/gpt.h"
#include "builder/disk/guid.h"
#include "builder/util/files.h"
#include "support/qemu_vm.h"
#include "support/run_command.h"
#include "support/temp_dir.h"
#include "support/verified_root_probe.h"

namespace fs = std::filesystem;
using kiln::test::Firmware;
using kiln::test::Machine;
using kiln::test::QemuVm;

namespace {

const fs::path kImage = fs::path(KILN_TEST_IMAGES) / "worker-rpi4";
constexpr auto kBootTimeout = std::chrono::seconds(2400);

/// Copies the disk image's whole ESP out into `into` with mtools, as written.
void copy_esp(const fs::path& raw, const fs::path& into) {
  kiln::GptDisk layout = kiln::read_gpt(raw);
  const kiln::GptPartition& esp = kiln::find_partition(layout, "esp", raw);
  fs::create_directories(into);
  auto copied = kiln::test::run_command("mcopy -s -n -m -i " + raw.string() + "@@" +
                                        std::to_string(esp.offset) + " ::/* " + into.string());
  INFO(copied.output);
  REQUIRE(copied.exit_code == 0);
}

/// config.txt as the firmware groups it: section filter ("[all]", "[cm4]") -> its settings.
std::map<std::string, std::vector<std::string>> config_sections(const std::string& text) {
  std::map<std::string, std::vector<std::string>> sections;
  std::string section = "[all]";
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (line.empty() || line[0] == '#') continue;
    if (line[0] == '[') {
      section = line;
    } else {
      sections[section].push_back(line);
    }
  }
  return sections;
}

std::vector<std::string> words(const std::string& text) {
  std::istringstream in(text);
  std::vector<std::string> out;
  for (std::string word; in >> word;) out.push_back(word);
  return out;
}

// Runs inside the guest after multi-user.target; the test reads its lines off the console.
const std::string kProbeScript = std::string(kiln::test::kVerifiedRootProbe) + R"sh(
say machine "$(uname -m)"
say firmware "$([ -d /sys/firmware/efi ] && echo uefi || echo none)"
say cmdline "$(cat /proc/cmdline)"
say state_bytes "$(blockdev --getsize64 /dev/disk/by-partlabel/state)"
say done yes
)sh";

}  // namespace

TEST_CASE(
    "the rpi4 image's ESP holds what the Pi 4 firmware reads: start4.elf that knows GPT, "
    "config.txt, and under its os_prefix the kernel, initrd, device trees and the verified-root "
    "command line",
    "[rpi4][image]") {
  const fs::path raw = kImage / "worker-rpi4.raw";
  kiln::GptDisk layout = kiln::read_gpt(raw);
  // The Pi 4 bootloader finds its FAT as a GPT partition of type EFI System behind a
  // protective MBR (a hybrid MBR is not supported) on a disk of 512-byte sectors.
  CHECK(layout.sector_size == 512);
  REQUIRE_FALSE(layout.partitions.empty());
  CHECK(layout.partitions.front().name == "esp");
  CHECK(layout.partitions.front().type == kiln::partition_type::esp);
  std::string mbr = kiln::read_at(raw, 0, 512);
  CHECK(static_cast<unsigned char>(mbr[446 + 4]) == 0xee);
  CHECK(mbr.substr(462, 48) == std::string(48, '\0'));

  kiln::test::TempDir work;
  const kiln::GptPartition& esp_partition = kiln::find_partition(layout, "esp", raw);
  kiln::write_file_atomic(work.path() / "esp.fat",
                          kiln::read_at(raw, esp_partition.offset, esp_partition.size));
  auto fsck = kiln::test::run_command("fsck.fat -n -v " + (work.path() / "esp.fat").string());
  INFO(fsck.output);
  CHECK(fsck.exit_code == 0);
  // FAT32 by its cluster count: the bootloader would read a smaller FAT as FAT16.
  CHECK_THAT(fsck.output, Catch::Contains("32 bit entries"));

  const fs::path esp = work.path() / "esp";
  copy_esp(raw, esp);
  std::string config = kiln::read_file(esp / "config.txt");
  INFO(config);
  auto sections = config_sections(config);
  CHECK(sections["[all]"] == std::vector<std::string>{"arm_64bit=1", "upstream_kernel=1",
                                                      "enable_uart=1", "os_prefix=kiln/",
                                                      "kernel=vmlinuz",
                                                      "initramfs initrd.img followkernel"});
  CHECK(sections["[cm4]"] == std::vector<std::string>{"device_tree=bcm2711-rpi-cm4-io.dtb"});

  // The firmware ignores os_prefix unless the kernel and the board's device tree are there.
  const fs::path prefix = esp / "kiln";
  for (const char* file : {"vmlinuz", "initrd.img", "cmdline.txt", "bcm2711-rpi-4-b.dtb",
                           "bcm2711-rpi-400.dtb", "bcm2711-rpi-cm4-io.dtb"}) {
    INFO(file);
    CHECK(fs::exists(prefix / file));
  }
  // The firmware jumps to the kernel's first byte: an arm64 Image, the one systemd-boot loads.
  CHECK(kiln::read_at(prefix / "vmlinuz", 0x38, 4) == "ARM\x64");
  std::string entry = kiln::read_file(esp / "loader/entries/kiln-1.0.0.conf");
  CHECK_THAT(entry,
             Catch::Contains("linux /kiln/vmlinuz") && Catch::Contains("initrd /kiln/initrd.img"));
  for (auto [tree, board] : {std::pair{"bcm2711-rpi-4-b.dtb", "raspberrypi,4-model-b"},
                             {"bcm2711-rpi-400.dtb", "raspberrypi,400"},
                             {"bcm2711-rpi-cm4-io.dtb", "raspberrypi,4-compute-module"}}) {
    std::string dtb = kiln::read_file(prefix / tree);
    INFO(tree);
    CHECK(dtb.substr(0, 4) == "\xd0\x0d\xfe\xed");
    CHECK_THAT(dtb, Catch::Contains(board));
  }

  // start4.elf from 2025 on reads GPT disks when a current EEPROM names the boot partition.
  std::string start = kiln::read_file(esp / "start4.elf");
  const std::string build_time = "VC_BUILD_ID_TIME: ";
  auto at = start.find(build_time + "Jan ");
  for (const char* month :
       {"Feb ", "Mar ", "Apr ", "May ", "Jun ", "Jul ", "Aug ", "Sep ", "Oct ", "Nov ", "Dec "}) {
    if (at == std::string::npos) at = start.find(build_time + month);
  }
  REQUIRE(at != std::string::npos);
  int year = std::stoi(start.substr(at + build_time.size() + 7, 4));
  CHECK(year >= 2025);
  CHECK(fs::file_size(esp / "fixup4.dat") > 0);
  CHECK_THAT(kiln::read_file(esp / "raspi-firmware.copyright"), Catch::Contains("Broadcom"));

  // cmdline.txt: one line, the same verified root as systemd-boot's entry, the Pi's consoles.
  std::string cmdline = kiln::read_file(prefix / "cmdline.txt");
  CHECK(std::count(cmdline.begin(), cmdline.end(), '\n') == 1);
  CHECK(cmdline.back() == '\n');
  auto args = words(cmdline);
  auto options = words(entry.substr(entry.find("options ") + 8));
  REQUIRE_FALSE(args.empty());
  CHECK(args.front() == options.front());
  CHECK(args.front().rfind("roothash=", 0) == 0);
  CHECK(args.back() == "console=ttyS1,115200");
  CHECK_THAT(cmdline, !Catch::Contains("ttyAMA0") && !Catch::Contains("console=ttyS0"));

  auto inspected = kiln::test::run_command(std::string(KILN_BINARY) + " inspect " +
                                           (kImage / "worker-rpi4.raw.zst").string());
  INFO(inspected.output);
  CHECK(inspected.exit_code == 0);
  CHECK_THAT(
      inspected.output,
      Catch::Contains("boot           raspberry-pi 'config.txt os_prefix=kiln/': " + args.front()));
  CHECK_THAT(inspected.output, Catch::Contains("matches (dm-verity tree and data verified)"));
}

TEST_CASE(
    "the rpi4 image, flashed with bmaptool onto a larger card, boots the kernel, initrd and "
    "cmdline.txt the Pi firmware hands over, without UEFI, to its verified root",
    "[rpi4][boot]") {
  kiln::test::TempDir work;
  const fs::path card = work.path() / "sd-card.img";
  auto flashed =
      kiln::test::run_command("bmaptool copy --bmap " + (kImage / "worker-rpi4.raw.bmap").string() +
                              " " + (kImage / "worker-rpi4.raw.zst").string() + " " +
                              card.string() + " && truncate -s 8G " + card.string());
  INFO(flashed.output);
  REQUIRE(flashed.exit_code == 0);
  const std::uint64_t state_in_image =
      kiln::find_partition(kiln::read_gpt(kImage / "worker-rpi4.raw"), "state",
                           kImage / "worker-rpi4.raw")
          .size;
  kiln::test::install_probe(card, kProbeScript, "ttyAMA0");
  const fs::path esp = work.path() / "esp";
  copy_esp(card, esp);
  std::string cmdline = kiln::read_file(esp / "kiln/cmdline.txt");
  cmdline.pop_back();  // the newline

  // qemu's virt machine has no mini UART (ttyS1): its PL011 is added for the test's console.
  QemuVm vm({.machine = Machine::arm64,
             .disk = card,
             .firmware = Firmware::none,
             .serial_log = work.path() / "console.log",
             .kernel = esp / "kiln/vmlinuz",
             .initrd = esp / "kiln/initrd.img",
             .append = cmdline + " console=ttyAMA0",
             .cpus = 2});
  bool probed = vm.wait_for("KILN-PROBE done=yes", kBootTimeout);
  INFO(vm.failure_report());
  REQUIRE(probed);
  auto probe = kiln::test::probe_results(vm.console());
  CHECK(probe.at("machine") == "aarch64");
  CHECK(probe.at("firmware") == "none");
  CHECK(probe.at("cmdline").rfind(cmdline, 0) == 0);
  kiln::test::check_verified_root(probe);
  // The state partition grew into the rest of the card.
  CHECK(std::stoull(probe.at("state_bytes")) > state_in_image + (4ull << 30));
}
