// Boots the fixture's PXE folder under qemu with no disk attached: `kiln serve` is the lab
// HTTP server, the guest fetches its root image from it into RAM, verifies it against the
// root hash on its kernel command line, and runs it. A root image altered on the server is
// refused. One boot goes all the way through qemu's own iPXE ROM and the folder's boot.ipxe.
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <regex>

#include "builder/disk/gpt.h"
#include "builder/join/config_initrd.h"
#include "builder/join/join_config.h"
#include "builder/util/files.h"
#include "builder/util/sha256.h"
#include "support/join_config_text.h"
#include "support/qemu_vm.h"
#include "support/run_command.h"
#include "support/served_folder.h"
#include "support/tap_network.h"
#include "support/temp_dir.h"

namespace fs = std::filesystem;
using kiln::test::QemuVm;
using kiln::test::ServedFolder;

namespace {

const fs::path kPxe = fs::path(KILN_TEST_IMAGES) / "worker" / "pxe";
constexpr auto kBootTimeout = std::chrono::seconds(900);
// Holds the root image in RAM beside the running system.
constexpr int kNetbootMemoryMb = 3072;

constexpr const char* kNetbootProbe = R"sh(#!/bin/sh
say() { echo "KILN-PROBE $1=$2"; }
say root_source "$(findmnt -no SOURCE /)"
say root_fstype "$(findmnt -no FSTYPE /)"
dm=$(basename "$(readlink -f /dev/mapper/root)")
say root_dm_uuid "$(cat /sys/block/$dm/dm/uuid)"
say root_backing "$(cat /sys/block/$(ls /sys/block/$dm/slaves | head -1)/loop/backing_file)"
say netroot_fstype "$(findmnt -no FSTYPE /run/kiln/netroot)"
say netroot_files "$(ls /run/kiln/netroot | tr '\n' ' ')"
say root_write "$(touch /usr/kiln-probe 2>&1 || true)"
say var_fstype "$(findmnt -no FSTYPE /var)"
say etc_fstype "$(findmnt -no FSTYPE /etc)"
say disks "$(lsblk -dno NAME -e 2,7,11 | tr '\n' ' ')"
say containerd "$(systemctl is-active containerd)"
say kubelet_version "$(kubelet --version)"
say grow_state "$(systemctl is-active kiln-grow-state)"
say done yes
systemctl poweroff --no-block
)sh";

std::uint64_t hash_offset(const std::string& cmdline) {
  std::smatch m;
  REQUIRE(std::regex_search(cmdline, m, std::regex(R"(kiln\.root_hash_offset=(\d+))")));
  return std::stoull(m[1]);
}

/// A join config initrd for a control plane that is not there, its token expiring `expires`,
/// with a static network config when `network` is given.
void write_join_initrd(const fs::path& out, const std::string& expires,
                       const std::optional<std::string>& network = std::nullopt) {
  kiln::JoinConfig config =
      kiln::parse_join_config(kiln::test::join_config_text(expires), "join.yaml");
  kiln::write_join_initrd(config, out, network);
}

}  // namespace

TEST_CASE("a netbooted node fetches its root over HTTP, verifies it and runs it from RAM",
          "[pxe][boot]") {
  kiln::test::TempDir work;
  ServedFolder server(kPxe);
  std::string cmdline = kiln::test::boot_ipxe_cmdline(kPxe, server.base_url());
  // The folder's initrd, then the probe, then a join config appended as `kiln stamp --pxe`
  // writes it (expired, so the agent must refuse it: that proves it reached the agent).
  kiln::test::write_probe_initrd(work.path() / "probe.cpio", kNetbootProbe);
  write_join_initrd(work.path() / "join.img", "2026-01-01T00:00:00Z");
  kiln::test::concatenate(kPxe / "initrd.img", work.path() / "probe.cpio",
                          work.path() / "with-probe.img");
  kiln::test::concatenate(work.path() / "with-probe.img", work.path() / "join.img",
                          work.path() / "initrds.img");

  QemuVm vm({.serial_log = work.path() / "netboot.log",
             .kernel = kPxe / "vmlinuz",
             .initrd = work.path() / "initrds.img",
             .append = cmdline,
             .memory_mb = kNetbootMemoryMb});
  bool finished = vm.wait_for("KILN-PROBE done=yes", kBootTimeout);
  INFO(vm.failure_report());
  INFO(server.log());
  REQUIRE(finished);
  std::string console = vm.console();
  CHECK_THAT(console,
             Catch::Contains("kiln: fetching the root image " + server.base_url() + "/root.img"));
  CHECK_THAT(console, Catch::Contains("kiln: root image verified; booting it from RAM"));
  CHECK_THAT(server.log(), Catch::Contains("GET /root.img 200"));

  auto probe = kiln::test::probe_results(console);
  CHECK(probe["root_source"] == "/dev/mapper/root");
  CHECK(probe["root_fstype"] == "erofs");
  CHECK_THAT(probe["root_dm_uuid"], Catch::StartsWith("CRYPT-VERITY-"));
  CHECK_THAT(probe["root_backing"], Catch::EndsWith("/root.img"));
  CHECK(probe["netroot_fstype"] == "tmpfs");
  CHECK(probe["netroot_files"] == "root.img ");
  CHECK_THAT(probe["root_write"], Catch::Contains("Read-only file system"));
  CHECK(probe["var_fstype"] == "tmpfs");
  CHECK(probe["etc_fstype"] == "overlay");
  CHECK(probe["disks"].empty());
  CHECK(probe["containerd"] == "active");
  CHECK_THAT(probe["kubelet_version"], Catch::StartsWith("Kubernetes v1."));
  CHECK(probe["grow_state"] == "inactive");  // no state partition to grow
  // The appended config initrd reached the agent, which refused the expired token.
  CHECK_THAT(console, Catch::Contains("join config from the appended initrd kept"));
  CHECK(
      std::regex_search(console, std::regex("kiln: refusing to join tcp-netboot: [^\n]*expired")));
  // The refusal names the token by its id only: its secret is nowhere on the console.
  CHECK(console.find("0123456789abcdef") == std::string::npos);
}

TEST_CASE("a netbooted node refuses a root image that does not match its root hash",
          "[pxe][boot]") {
  kiln::test::TempDir work;
  fs::path folder = work.path() / "pxe";
  fs::create_directory(folder);
  for (const char* name : {"vmlinuz", "initrd.img", "boot.ipxe", "root.img"})
    fs::copy_file(kPxe / name, folder / name);
  std::string cmdline = kiln::test::boot_ipxe_cmdline(folder, "http://10.0.2.2:0");
  {
    // One byte in the middle of the EROFS root, where file data lives.
    std::fstream image(folder / "root.img", std::ios::in | std::ios::out | std::ios::binary);
    image.seekg(hash_offset(cmdline) / 2);
    char byte = 0;
    image.read(&byte, 1);
    image.seekp(hash_offset(cmdline) / 2);
    byte = static_cast<char>(byte ^ 0x40);
    image.write(&byte, 1);
  }
  ServedFolder server(folder);
  QemuVm vm({.serial_log = work.path() / "tampered.log",
             .kernel = folder / "vmlinuz",
             .initrd = folder / "initrd.img",
             .append = kiln::test::boot_ipxe_cmdline(folder, server.base_url()),
             .memory_mb = kNetbootMemoryMb});
  bool refused = vm.wait_for(
      "kiln: refusing to boot: the root image from .* does not match "
      "roothash [0-9a-f]{64} \\(dm-verity rejected the block at byte \\d+\\)",
      kBootTimeout);
  INFO(vm.failure_report());
  REQUIRE(refused);
  // Halted in the initrd: nothing from the altered image ran.
  CHECK(vm.wait_for("reboot: System halted", std::chrono::seconds(120)));
  CHECK_THAT(vm.console(), !Catch::Contains("Switching root"));
  CHECK_THAT(vm.console(), !Catch::Contains("containerd"));
}

TEST_CASE("qemu's iPXE runs the folder's boot.ipxe over HTTP and hands the root URL on",
          "[pxe][boot]") {
  kiln::test::TempDir work;
  ServedFolder server(kPxe);
  // The iPXE in qemu's ROMs predates ${cwduri}: a menu script names the folder, as a site's
  // iPXE menu does, then chains boot.ipxe.
  fs::path menu_dir = work.path() / "menu";
  fs::create_directory(menu_dir);
  kiln::write_file_atomic(menu_dir / "menu.ipxe", "#!ipxe\nset kiln-base " + server.base_url() +
                                                      "\nchain " + server.guest_url("boot.ipxe") +
                                                      "\n");
  ServedFolder menu(menu_dir);
  // No disk, no kernel: the firmware's iPXE gets the script's URL from DHCP, as from dnsmasq.
  QemuVm vm({.serial_log = work.path() / "ipxe.log",
             .pxe_bootfile = menu.guest_url("menu.ipxe"),
             .memory_mb = kNetbootMemoryMb});
  bool fetching = vm.wait_for("kiln: fetching the root image " +
                                  std::regex_replace(server.base_url(), std::regex("\\."), "\\.") +
                                  "/root\\.img",
                              kBootTimeout);
  INFO(vm.failure_report());
  INFO(server.log());
  REQUIRE(fetching);
  CHECK(vm.wait_for("kiln: root image verified", kBootTimeout));
  CHECK_THAT(server.log(), Catch::Contains("GET /boot.ipxe 200"));
  CHECK_THAT(server.log(), Catch::Contains("GET /vmlinuz 200"));
  CHECK_THAT(server.log(), Catch::Contains("GET /initrd.img 200"));
}

TEST_CASE("an iPXE that cannot say where boot.ipxe came from gets a clear refusal", "[pxe][boot]") {
  kiln::test::TempDir work;
  ServedFolder server(kPxe);
  QemuVm vm({.serial_log = work.path() / "ipxe.log",
             .pxe_bootfile = server.guest_url("boot.ipxe"),
             .memory_mb = kNetbootMemoryMb});
  bool refused = vm.wait_for(
      "kiln: refusing to boot: kiln.root_url=/root.img is not an http:// URL .*set kiln-base",
      kBootTimeout);
  INFO(vm.failure_report());
  REQUIRE(refused);
  CHECK(vm.wait_for("reboot: System halted", std::chrono::seconds(120)));
}

TEST_CASE(
    "with pxe.install a netbooted node on a static network without DHCP writes the disk image "
    "onto its empty disk, stamps its join and network configs there and boots from it next",
    "[pxe][boot][network]") {
  kiln::test::TempDir work;
  ServedFolder server(kPxe);
  // The fixture's raw.zst is the image a `pxe.install` folder carries as disk.raw.zst.
  ServedFolder images(kPxe.parent_path());
  std::string install_args =
      "kiln.install_url=" + images.guest_url("worker.raw.zst") +
      " kiln.install_sha256=" + kiln::sha256_file(kPxe.parent_path() / "worker.raw.zst");
  // Nothing answers DHCP on the node's link: the join initrd's network config brings the
  // initrd's network up (the root is fetched over it), then the booted root's, then the
  // installed disk's.
  kiln::test::TapNetwork link(78, {server.port(), images.port()});
  const std::string mac = "52:54:00:12:34:78";
  write_join_initrd(work.path() / "join.img", "2099-01-01T00:00:00Z", link.node_config(mac, 20));
  kiln::test::concatenate(kPxe / "initrd.img", work.path() / "join.img",
                          work.path() / "initrds.img");
  fs::path disk = work.path() / "empty.raw";
  std::ofstream(disk).close();
  fs::resize_file(disk, 6ull << 30);  // sparse: an empty 6 GiB disk
  // Old data where the image has only zeros (inside the empty root-b pair): the installer must
  // not leave it there. The first MiB stays zero, so the disk still counts as empty.
  fs::path raw = kPxe.parent_path() / "worker.raw";
  kiln::GptDisk image_layout = kiln::read_gpt(raw);
  std::vector<std::uint64_t> old_data_at;
  for (const char* name : {"root-b", "root-b-verity"}) {
    const auto& part = kiln::find_partition(image_layout, name, raw);
    old_data_at.push_back(part.offset + part.size / 2);
  }
  const std::string old_data(1 << 20, '\x5a');
  for (auto offset : old_data_at) {
    REQUIRE(kiln::read_at(raw, offset, old_data.size()) == std::string(old_data.size(), '\0'));
    kiln::write_at(disk, old_data, offset);
  }

  {
    QemuVm vm({.disk = disk,
               .serial_log = work.path() / "install.log",
               .kernel = kPxe / "vmlinuz",
               .initrd = work.path() / "initrds.img",
               .append = kiln::test::boot_ipxe_cmdline(kPxe, server.base_url(), install_args),
               .memory_mb = kNetbootMemoryMb,
               .tap = link.device(),
               .mac = mac});
    bool installed = vm.wait_for("kiln: installed onto /dev/vda; rebooting into it", kBootTimeout);
    INFO(vm.failure_report());
    INFO(images.log());
    REQUIRE(installed);
    CHECK(vm.wait_exit(std::chrono::seconds(300)));  // -no-reboot: the reboot ends qemu
    CHECK_THAT(vm.console(), Catch::Contains("static network config from the appended initrd"));
    CHECK_THAT(vm.console(),
               Catch::Contains("kiln-network: static network from the netboot config initrd"));
    CHECK_THAT(vm.console(),
               Catch::Contains("kiln: put the join and network configs into the installed disk"));
    CHECK_THAT(vm.console(), !Catch::Contains("kiln: joining"));  // not from RAM: from the disk
    CHECK(std::regex_search(vm.console(),
                            std::regex(R"(kiln: wrote \d+ MiB of data and zeroed \d+ MiB)")));
  }

  // The disk now holds the image (the verified root byte for byte, zeros where the image has
  // them) and the join config.
  kiln::GptDisk layout = kiln::read_gpt(disk);
  for (const char* name : {"esp", "root", "root-verity"}) {
    const auto& installed = kiln::find_partition(layout, name, disk);
    const auto& original = kiln::find_partition(image_layout, name, raw);
    INFO(name);
    REQUIRE(installed.offset == original.offset);
    CHECK(kiln::sha256_hex(kiln::read_at(disk, installed.offset, installed.size)) ==
          kiln::sha256_hex(kiln::read_at(raw, original.offset, original.size)));
  }
  for (auto offset : old_data_at)
    CHECK(kiln::read_at(disk, offset, old_data.size()) == std::string(old_data.size(), '\0'));
  auto shown = kiln::test::run_command(std::string(KILN_BINARY) + " stamp --show " + disk.string());
  CHECK_THAT(shown.output, Catch::Contains("token          abcdef.****************"));
  CHECK_THAT(shown.output, Catch::Contains("network        uplink (mac " + mac +
                                           "): 192.168.78.20/24; via 192.168.78.1"));

  // Next boot: from the disk, no network boot, and the agent finds the stamped config there.
  QemuVm second({.disk = disk,
                 .serial_log = work.path() / "disk-boot.log",
                 .tap = link.device(),
                 .mac = mac});
  bool agent_ran = second.wait_for("kiln: waiting for https://10\\.0\\.2\\.2:6443", kBootTimeout);
  INFO(second.failure_report());
  REQUIRE(agent_ran);
  CHECK_THAT(second.console(), Catch::Contains("roothash="));
  CHECK_THAT(second.console(),
             Catch::Contains("kiln-network: static network from the KILNCFG partition"));
  CHECK_THAT(second.console(), !Catch::Contains("kiln.root_url"));
}
