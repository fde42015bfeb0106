// Rollback under legacy BIOS (SeaBIOS + GRUB): the boot counting lives in GRUB's environment
// block instead of systemd-boot's file names, and must bring the node back the same way:
// from a version whose services fail, and from one whose kernel panics before anything of
// kiln's runs.
#include <catch2/catch.hpp>
#include <filesystem>

#include "builder/disk/sparse_copy.h"
#include "builder/util/process.h"
#include "support/qemu_vm.h"
#include "support/served_folder.h"
#include "support/temp_dir.h"
#include "support/update_publisher.h"

namespace fs = std::filesystem;
using kiln::test::Firmware;
using kiln::test::QemuVm;

namespace {

constexpr auto kBoot = std::chrono::seconds(900);

constexpr const char* kProbe = R"sh(#!/bin/sh
. /etc/os-release
slot=$(sed -n 's/.*kiln\.slot=\([ab]\).*/\1/p' /proc/cmdline)
echo "KILN-PROBE running=$IMAGE_VERSION slot ${slot:-a}"
echo "KILN-PROBE firmware=$([ -d /sys/firmware/efi ] && echo uefi || echo bios)"
while true; do
    kiln-update check
    sleep 10
done
)sh";

}  // namespace

TEST_CASE(
    "a BIOS node rolls back a version that never becomes healthy and one that panics by "
    "GRUB's count alone",
    "[image][update-boot]") {
  kiln::test::TempDir dir;
  fs::path folder = dir.path() / "served" / "update";
  kiln::test::publish_releases(folder, {"1.0.0", "3.0.0"});
  kiln::test::ServedFolder server(dir.path() / "served");
  fs::path disk = dir.path() / "node.raw";
  kiln::copy_sparse_atomic(kiln::test::update_releases() / "1.0.0" / "worker.raw", disk);
  kiln::run({KILN_BINARY, "stamp", disk.string(), "--update-url", server.guest_url("update")},
            {.quiet = true});
  kiln::test::install_probe(disk, kProbe);

  QemuVm vm({.disk = disk,
             .firmware = Firmware::bios,
             .serial_log = dir.path() / "console.log",
             .allow_reboot = true});
  INFO(vm.failure_report());
  REQUIRE(vm.wait_for("KILN-PROBE firmware=bios", kBoot));
  REQUIRE(vm.wait_for("installing 3\\.0\\.0 into slot b", kBoot));
  REQUIRE(vm.wait_for("trial boot of version 3\\.0\\.0", kBoot));  // its one try (1.0.0's tries: 1)
  REQUIRE(
      vm.wait_for("ROLLED BACK: version 3\\.0\\.0 did not become healthy in its tries "
                  "\\(containerd is not active\\); running 1\\.0\\.0 again",
                  kBoot));
  REQUIRE(vm.wait_for("skipping 3\\.0\\.0: it was rolled back", kBoot));

  // 5.0.0's kernel panics (its init exits): the trial's panic=10 reboots the machine, GRUB
  // has no try left for it, and 1.0.0 says it never got as far as the health check.
  kiln::test::publish_releases(folder, {"1.0.0", "3.0.0", "5.0.0"});
  REQUIRE(vm.wait_for("installing 5\\.0\\.0 into slot b", kBoot));
  REQUIRE(vm.wait_for("Kernel panic - not syncing", kBoot));
  REQUIRE(
      vm.wait_for("ROLLED BACK: version 5\\.0\\.0 did not become healthy in its tries \\(it never "
                  "reached the health check: it hung, panicked or reset before\\); running "
                  "1\\.0\\.0 again",
                  kBoot));
  REQUIRE(vm.wait_for("skipping 5\\.0\\.0: it was rolled back", kBoot));
}
