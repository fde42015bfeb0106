// Boots the fixture's disk images under qemu (software emulation) and checks, from inside
// the guest, what the image promises: a verified read-only root, /var and /etc on the state
// partition surviving reboots, the state partition grown to fill its disk, and a root that
// refuses to boot once tampered with.

#include <catch2/catch.hpp>
#include <filesystem>
#include <regex>

#include "builder/disk/gpt.h"
#include "builder/disk/sparse_copy.h"
#include "builder/util/files.h"
#include "builder/util/process.h"
#include "support/qemu_vm.h"
#include "support/root_tamper.h"
#include "support/run_command.h"
#include "support/temp_dir.h"
#include "support/verified_root_probe.h"

namespace fs = std::filesystem;
using kiln::test::Firmware;
using kiln::test::QemuVm;

namespace {

const fs::path kImage = fs::path(KILN_TEST_IMAGES) / "worker";
constexpr auto kBootTimeout = std::chrono::seconds(900);

// Runs inside the guest on every boot, prints what it finds, then powers the guest off.
const std::string kProbeScript = std::string(kiln::test::kVerifiedRootProbe) + R"sh(
say firmware "$([ -d /sys/firmware/efi ] && echo uefi || echo bios)"
say boot_id "$(cat /proc/sys/kernel/random/boot_id)"
say machine_id "$(cat /etc/machine-id)"
say kubelet_version "$(kubelet --version)"
say ssh "$(systemctl is-active ssh)"
say ssh_host_keys "$(cd /etc/ssh && echo ssh_host_*_key)"
say kubelet "$(systemctl is-active kubelet)"
say kubelet_condition "$(systemctl show -p ConditionResult --value kubelet)"
say grow_state "$(systemctl is-active kiln-grow-state)"
say ldconfig_condition "$(systemctl show -p ConditionResult --value ldconfig)"
say catalog_condition "$(systemctl show -p ConditionResult --value systemd-journal-catalog-update)"
say vsock_modules "$(grep -c vsock /proc/modules)"
say floppy_module "$(grep -c '^floppy ' /proc/modules)"
say apt_timers "$(systemctl list-timers --no-legend | grep -c -e apt- -e dpkg-)"
say apt_daily "$(systemctl is-enabled apt-daily.timer)"
say unneeded_units "$(systemctl is-enabled e2scrub_reap.service e2scrub_all.timer dracut-shutdown.service | sort -u | paste -sd, -)"
say unneeded_started "$(systemctl show -p InactiveExitTimestampMonotonic --value e2scrub_reap.service e2scrub_all.timer dracut-shutdown.service | grep . | sort -u | paste -sd, -)"
say disk_bytes "$(lsblk -bdno SIZE /dev/vda)"
say logical_block_size "$(cat /sys/block/vda/queue/logical_block_size)"
part=$(basename "$(readlink -f /dev/disk/by-partlabel/state)")
say state_part_end_bytes "$(( ($(cat /sys/class/block/$part/start) + $(cat /sys/class/block/$part/size)) * 512 ))"
say var_fs_bytes "$(df -B1 --output=size /var | tail -1 | tr -d ' ')"
say var_marker "$(cat /var/lib/kiln-probe-marker 2>/dev/null || echo none)"
say etc_marker "$(cat /etc/kiln-probe-marker 2>/dev/null || echo none)"
cat /proc/sys/kernel/random/boot_id > /var/lib/kiln-probe-marker
cat /proc/sys/kernel/random/boot_id > /etc/kiln-probe-marker
sync
say done yes
systemctl poweroff --no-block
)sh";

std::map<std::string, std::string> boot_and_probe(const fs::path& disk, Firmware firmware,
                                                  const fs::path& log) {
  QemuVm vm({.disk = disk, .firmware = firmware, .serial_log = log});
  bool finished = vm.wait_for("KILN-PROBE done=yes", kBootTimeout);
  INFO(vm.failure_report());
  REQUIRE(finished);
  vm.wait_exit(std::chrono::seconds(120));
  return kiln::test::probe_results(vm.console());
}

void check_verified_node(const std::map<std::string, std::string>& probe) {
  kiln::test::check_verified_root(probe);
  CHECK(probe.at("kubelet_version") == "Kubernetes v1.34.12");
  CHECK(probe.at("ssh") == "active");
  // Made on the first boot, and sshd serves exactly these (no RSA key to spend boot time on).
  CHECK(probe.at("ssh_host_keys") == "ssh_host_ecdsa_key ssh_host_ed25519_key");
  // Not joined (nothing stamped): the kubelet waits for kubeadm's configuration.
  CHECK(probe.at("kubelet") == "inactive");
  CHECK(probe.at("kubelet_condition") == "no");
  CHECK(probe.at("machine_id").size() == 32);
  // The image's ld.so.cache is current (its /etc/.updated stamp), and no masked generator
  // probed for a hypervisor socket.
  CHECK(probe.at("ldconfig_condition") == "no");
  CHECK(probe.at("catalog_condition") == "no");
  CHECK(probe.at("vsock_modules") == "0");
  // qemu's PC has a floppy controller; neither the initrd nor the root loads its driver.
  CHECK(probe.at("floppy_module") == "0");
  // apt cannot change the read-only /usr: no node fetches package lists every day.
  CHECK(probe.at("apt_daily") == "masked");
  CHECK(probe.at("apt_timers") == "0");
  // Nor does it start e2scrub (no LVM) or dracut-shutdown (no initrd in the root to restore).
  CHECK(probe.at("unneeded_units") == "masked");
  CHECK(probe.at("unneeded_started") == "0");
}

}  // namespace

TEST_CASE(
    "the raw image boots under UEFI and BIOS with a verified root, grows its state "
    "partition and keeps /var and /etc across reboots",
    "[image][boot]") {
  kiln::test::TempDir work;
  fs::path disk = work.path() / "node.raw";
  kiln::copy_sparse_atomic(kImage / "worker.raw", disk);
  // As if flashed onto a disk 3 GiB larger than the image.
  std::uint64_t image_bytes = fs::file_size(disk);
  fs::resize_file(disk, image_bytes + (3ull << 30));
  kiln::test::install_probe(disk, kProbeScript);

  auto first = boot_and_probe(disk, Firmware::uefi, work.path() / "uefi.log");
  CHECK(first.at("firmware") == "uefi");
  CHECK(first.at("logical_block_size") == "512");
  check_verified_node(first);
  CHECK(first.at("var_marker") == "none");
  CHECK(first.at("grow_state") == "active");
  std::uint64_t disk_bytes = std::stoull(first.at("disk_bytes"));
  CHECK(disk_bytes == image_bytes + (3ull << 30));
  // state runs to the last MiB before the backup GPT, and its ext4 fills it.
  std::uint64_t state_end = std::stoull(first.at("state_part_end_bytes"));
  CHECK(state_end > disk_bytes - (2ull << 20));
  CHECK(std::stoull(first.at("var_fs_bytes")) > image_bytes);

  auto second = boot_and_probe(disk, Firmware::bios, work.path() / "bios.log");
  CHECK(second.at("firmware") == "bios");
  check_verified_node(second);
  CHECK(second.at("boot_id") != first.at("boot_id"));
  CHECK(second.at("var_marker") == first.at("boot_id"));
  CHECK(second.at("etc_marker") == first.at("boot_id"));
  CHECK(second.at("machine_id") == first.at("machine_id"));
}

TEST_CASE("a root partition altered by one byte is refused at boot", "[image][boot]") {
  kiln::test::TempDir work;
  fs::path disk = work.path() / "tampered.raw";
  kiln::copy_sparse_atomic(kImage / "worker.raw", disk);
  kiln::test::flip_root_byte(disk);

  QemuVm vm({.disk = disk, .firmware = Firmware::bios, .serial_log = work.path() / "console.log"});
  bool refused = vm.wait_for("device-mapper: verity: .* is corrupted", kBootTimeout);
  INFO(vm.failure_report());
  CHECK(refused);
  vm.wait_for("Kernel panic", std::chrono::seconds(120));
  CHECK_THAT(vm.console(), Catch::Contains("Kernel panic"));
  CHECK_THAT(vm.console(), !Catch::Contains("login: "));
}

TEST_CASE(
    "a 4096-byte-sector image passes sgdisk and fsck.fat, and its qcow2 output boots under UEFI "
    "from a disk with 4096-byte logical blocks to a login prompt with its verity root",
    "[image][boot][4kn]") {
  const fs::path image = fs::path(KILN_TEST_IMAGES) / "worker-4kn" / "worker.raw";
  kiln::GptDisk layout = kiln::read_gpt(image);
  CHECK(layout.sector_size == 4096);
  // GPT tools take a file's sectors to be 512 bytes: a loop device says 4096.
  std::string loop = kiln::run({"losetup", "--find", "--show", "--read-only", "--sector-size",
                                "4096", image.string()},
                               {.capture_stdout = true})
                         .stdout_text;
  while (!loop.empty() && loop.back() == '\n') loop.pop_back();
  auto verify = kiln::test::run_command("sgdisk -v " + loop);
  kiln::run({"losetup", "-d", loop});
  INFO(verify.output);
  CHECK(verify.exit_code == 0);
  CHECK_THAT(verify.output, Catch::Contains("No problems found"));
  CHECK_THAT(verify.output, !Catch::Contains("Warning"));

  // kiln inspect finds the table and checks the root; kiln stamp rewrites the config
  // partition's FAT for 4096-byte sectors too.
  auto inspected = kiln::test::run_command(std::string(KILN_BINARY) + " inspect " + image.string());
  INFO(inspected.output);
  CHECK(inspected.exit_code == 0);
  CHECK_THAT(inspected.output, Catch::Contains("matches (dm-verity tree and data verified)"));
  kiln::test::TempDir work;
  fs::path disk = work.path() / "node.raw";
  kiln::copy_sparse_atomic(image, disk);
  auto stamped = kiln::test::run_command(std::string(KILN_BINARY) + " stamp " + disk.string() +
                                         " --update-url http://10.0.2.2:9/pool/");
  INFO(stamped.output);
  CHECK(stamped.exit_code == 0);
  CHECK_THAT(
      kiln::test::run_command(std::string(KILN_BINARY) + " stamp --show " + disk.string()).output,
      Catch::Contains("update source  http://10.0.2.2:9/pool/"));
  for (const char* name : {"esp", "kiln-config"}) {
    const kiln::GptPartition& part = kiln::find_partition(layout, name, image);
    fs::path fat = work.path() / (std::string(name) + ".fat");
    kiln::write_file_atomic(fat, kiln::read_at(disk, part.offset, part.size));
    auto check = kiln::test::run_command("fsck.fat -n -v " + fat.string());
    INFO(name << ": " << check.output);
    CHECK(check.exit_code == 0);
    CHECK_THAT(check.output, Catch::Contains("4096 bytes per logical sector"));
  }

  // The build's qcow2 output (under an overlay), booted from a disk with 4096-byte logical
  // blocks: kernel, initrd and the verified root all come through 4 KiB sectors.
  fs::path overlay = work.path() / "node.qcow2";
  kiln::run({"qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b",
             (image.parent_path() / "worker.qcow2").string(), overlay.string()});
  QemuVm vm({.disk = overlay,
             .format = "qcow2",
             .firmware = Firmware::uefi,
             .serial_log = work.path() / "console.log",
             .logical_block_size = 4096});
  bool login = vm.wait_for("login: ", kBootTimeout);
  INFO(vm.failure_report());
  REQUIRE(login);
  const std::string console = vm.console();
  CHECK(std::regex_search(console, std::regex(R"(\[vda\] \d+ 4096-byte logical blocks)")));
  // Status lines carry colour codes between the verb and the unit name.
  CHECK(std::regex_search(console, std::regex("Finished .{0,20}systemd-veritysetup@root")));
  CHECK(std::regex_search(console, std::regex("Mounted .{0,20}sysroot-var.mount")));
}
