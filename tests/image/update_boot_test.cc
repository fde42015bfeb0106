// Day-2 updates on a booted node under UEFI (OVMF + systemd-boot), end to end: the node
// runs 1.0.0 from the test releases, finds 2.0.0 in its stamped update folder, loses power
// in the middle of writing slot B and comes back on 1.0.0, resumes, boots 2.0.0 on trial and
// blesses it; then 3.0.0, which never becomes healthy, is rolled back to 2.0.0 by the boot
// loader's count alone and never retried, and 4.0.0 installs after it.
#include <catch2/catch.hpp>
#include <filesystem>
#include <regex>
#include <sstream>

#include "builder/disk/sparse_copy.h"
#include "builder/util/files.h"
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

// Every boot: what runs and from where, a marker on /var written once, then an update check
// every 10 s, as kiln-update.timer does every updates.check_interval.
constexpr const char* kProbe = R"sh(#!/bin/sh
say() { echo "KILN-PROBE $1=$2"; }
. /etc/os-release
slot=$(sed -n 's/.*kiln\.slot=\([ab]\).*/\1/p' /proc/cmdline)
say running "$IMAGE_VERSION slot ${slot:-a}"
say var_marker "$(cat /var/lib/kiln-update-marker 2>/dev/null || echo none)"
[ -f /var/lib/kiln-update-marker ] || echo "written by $IMAGE_VERSION" > /var/lib/kiln-update-marker
say machine_id "$(cat /etc/machine-id)"
sync
while true; do
    kiln-update check
    sleep 10
done
)sh";

std::string last_probe(const QemuVm& vm, const std::string& key) {
  auto results = kiln::test::probe_results(vm.console());
  auto it = results.find(key);
  return it == results.end() ? "" : it->second;
}

}  // namespace

TEST_CASE("a UEFI node updates to a new version survives power loss mid-write and rolls back a "
          "version that never becomes healthy",
          "[image][update-boot]") {
  kiln::test::TempDir dir;
  fs::path folder = dir.path() / "served" / "update";
  kiln::test::publish_releases(folder, {"1.0.0", "2.0.0"});
  kiln::test::ServedFolder server(dir.path() / "served");
  fs::path disk = dir.path() / "node.raw";
  kiln::copy_sparse_atomic(kiln::test::update_releases() / "1.0.0" / "worker.raw", disk);
  kiln::run({KILN_BINARY, "stamp", disk.string(), "--update-url",
             server.guest_url("update")},
            {.quiet = true});
  kiln::test::install_probe(disk, kProbe);

  fs::path log = dir.path() / "console.log";
  std::string machine_id;
  {
    // Power is cut once the first checkpoint of slot B is on disk.
    QemuVm vm({.disk = disk, .firmware = Firmware::uefi, .serial_log = log, .allow_reboot = true});
    bool writing = vm.wait_for("worker_2\\.0\\.0\\.root\\.img: ([4-9][0-9]|[1-9][0-9]{2}) of", kBoot);
    INFO(vm.failure_report());
    REQUIRE(writing);
    CHECK(last_probe(vm, "running") == "1.0.0 slot a");
    machine_id = last_probe(vm, "machine_id");
  }
  fs::path log2 = dir.path() / "console-2.log";
  QemuVm vm({.disk = disk, .firmware = Firmware::uefi, .serial_log = log2, .allow_reboot = true});
  {
    INFO(vm.failure_report());
    REQUIRE(vm.wait_for("KILN-PROBE running=1\\.0\\.0 slot a", kBoot));  // the old version
    REQUIRE(vm.wait_for("resuming worker_2\\.0\\.0\\.root\\.img at", kBoot));
    REQUIRE(vm.wait_for("slot b matches root hash", kBoot));
    REQUIRE(vm.wait_for("kiln-update: version 2\\.0\\.0 is healthy", kBoot));
    REQUIRE(vm.wait_for("KILN-PROBE running=2\\.0\\.0 slot b", kBoot));
  }
  // The same node: /var and /etc (machine-id) came along.
  CHECK(last_probe(vm, "var_marker") == "written by 1.0.0");
  CHECK(last_probe(vm, "machine_id") == machine_id);
  REQUIRE(vm.wait_for("up to date \\(2\\.0\\.0 is the newest", kBoot));

  // 3.0.0 cannot start containerd: two failed trial boots, then 2.0.0 again by itself.
  kiln::test::publish_releases(folder, {"1.0.0", "2.0.0", "3.0.0"});
  {
    INFO(vm.failure_report());
    REQUIRE(vm.wait_for("installing 3\\.0\\.0 into slot a", kBoot));
    REQUIRE(vm.wait_for("removing the boot entry of 1\\.0\\.0", kBoot));
    REQUIRE(vm.wait_for("version 3\\.0\\.0 is not healthy after 30 s: containerd is not active",
                        kBoot));
    REQUIRE(vm.wait_for("ROLLED BACK: version 3\\.0\\.0 did not become healthy in its tries "
                        "\\(containerd is not active\\); running 2\\.0\\.0 again",
                        kBoot));
    REQUIRE(vm.wait_for("skipping 3\\.0\\.0: it was rolled back", kBoot));
  }
  std::string console = vm.console();
  auto tried = [&](const std::string& what) {
    std::size_t n = 0;
    for (std::size_t at = 0; (at = console.find(what, at)) != std::string::npos; ++at) ++n;
    return n;
  };
  CHECK(tried("trial boot of version 3.0.0") == 2);  // updates.tries: 2, then never again
  CHECK(last_probe(vm, "running") == "2.0.0 slot b");

  kiln::test::publish_releases(folder, {"1.0.0", "2.0.0", "3.0.0", "4.0.0"});
  {
    INFO(vm.failure_report());
    REQUIRE(vm.wait_for("installing 4\\.0\\.0 into slot a", kBoot));
    double started = vm.seconds_since_start();
    REQUIRE(vm.wait_for("version 4\\.0\\.0 is healthy", kBoot));
    double healthy = vm.seconds_since_start();
    REQUIRE(vm.wait_for("KILN-PROBE running=4\\.0\\.0 slot a", kBoot));
    // Figures for tests/bench/update_bench.sh: a clean update under emulation.
    std::smatch peak;
    std::string text = vm.console();
    std::regex_search(text, peak, std::regex("version 4\\.0\\.0 staged .* peak memory (\\d+) KiB"));
    std::uint64_t bytes = 0;
    std::istringstream log(server.log());
    for (std::string line; std::getline(log, line);) {
      if (line.find("/update/worker_4.0.0.") == std::string::npos) continue;
      bytes += std::stoull(line.substr(line.rfind(' ') + 1));
    }
    std::printf("UPDATE-BENCH 4.0.0: %.0f s from the check to healthy, %.1f MiB downloaded, "
                "kiln-update peak RSS %s KiB\n",
                healthy - started, bytes / 1048576.0, peak.size() > 1 ? peak[1].str().c_str() : "?");
  }
  CHECK(last_probe(vm, "var_marker") == "written by 1.0.0");
  CHECK(tried("trial boot of version 3.0.0") == 2);
}
