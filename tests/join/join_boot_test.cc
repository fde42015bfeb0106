// The whole join flow against a real control plane (tests/cluster/control-plane.sh): a token
// from `kiln token create`, stamped into a copy of the default image with `kiln stamp`, booted
// under qemu. The guest reaches the control plane at 10.0.2.2, as a node reaches a Kamaji
// Tenant Control Plane at its load-balancer address.
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>
#include <map>
#include <memory>
#include <regex>
#include <sstream>
#include <thread>

#include "builder/disk/sparse_copy.h"
#include "builder/fetch/http.h"
#include "builder/join/join_config.h"
#include "builder/join/kubeconfig.h"
#include "builder/util/files.h"
#include "builder/util/process.h"
#include "builder/util/sha256.h"
#include "support/control_plane.h"
#include "support/qemu_vm.h"
#include "support/run_command.h"
#include "support/served_folder.h"
#include "support/tap_network.h"
#include "support/temp_dir.h"

namespace fs = std::filesystem;
using kiln::test::QemuVm;

namespace {

const fs::path kImage = fs::path(KILN_TEST_IMAGES) / "worker";
constexpr auto kJoinTimeout = std::chrono::seconds(1500);

using kiln::test::admin_get;

const std::string& control_plane(const std::string& key) {
  return kiln::test::cp(key);
}

kiln::test::CommandResult kiln_cli(const std::string& args) {
  return kiln::test::run_command(std::string(KILN_BINARY) + " " + args);
}

/// True when `needle` occurs anywhere in the file (read in overlapping blocks).
bool file_contains(const fs::path& file, const std::string& needle) {
  std::ifstream in(file, std::ios::binary);
  std::string carry, block(8 << 20, '\0');
  while (in) {
    in.read(block.data(), block.size());
    std::string window = carry + block.substr(0, in.gcount());
    if (window.find(needle) != std::string::npos) return true;
    carry = window.size() >= needle.size() ? window.substr(window.size() - needle.size()) : window;
  }
  return false;
}

/// Boots a guest and waits for `pattern`. A guest whose kernel crashed before it ran init
/// (see QemuVm::panicked_before_init) has touched nothing on its disk: it is booted once more.
std::unique_ptr<QemuVm> boot_until(const kiln::test::VmOptions& options, const std::string& pattern,
                                   bool& matched) {
  auto vm = std::make_unique<QemuVm>(options);
  matched = vm->wait_for(pattern, kJoinTimeout);
  if (!matched && vm->panicked_before_init()) {
    WARN("the emulated kernel panicked before init; booting again\n" << vm->console());
    vm.reset();
    kiln::test::VmOptions again = options;
    again.serial_log += ".again";
    vm = std::make_unique<QemuVm>(again);
    matched = vm->wait_for(pattern, kJoinTimeout);
  }
  return vm;
}

}  // namespace

TEST_CASE(
    "a stamped image with a static network joins the control plane on first boot over a "
    "network without DHCP, erases its token and does not rejoin",
    "[join][boot][network]") {
  kiln::test::TempDir work;
  // The endpoint as the guest sees it: 10.0.2.2, reached through the tap link's gateway.
  // Without DHCP there is no host name to go by: the node is named after its MAC.
  auto token = kiln_cli("token create --kubeconfig " + control_plane("ADMIN_KUBECONFIG") +
                        " --endpoint " + control_plane("GUEST_API_URL") +
                        " --name tenant-e2e --ttl 45m --labels pool=edge,tier=e2e --node-name mac "
                        "-o " +
                        (work.path() / "join.yaml").string());
  INFO(token.output);
  REQUIRE(token.exit_code == 0);
  kiln::JoinConfig config = kiln::load_join_config(work.path() / "join.yaml");
  const std::string secret = config.token.secret;

  fs::path disk = work.path() / "node.raw";
  kiln::copy_sparse_atomic(kImage / "worker.raw", disk);
  const std::string api_url = control_plane("GUEST_API_URL");
  kiln::test::TapNetwork link(77, {std::stoi(api_url.substr(api_url.rfind(':') + 1))});
  const std::string mac = "52:54:00:12:34:77";
  fs::path network = work.path() / "node-77.yaml";
  kiln::write_file_atomic(network, link.node_config(mac, 10));
  auto stamp = kiln_cli("stamp " + disk.string() + " --join " +
                        (work.path() / "join.yaml").string() + " --network " + network.string());
  INFO(stamp.output);
  REQUIRE(stamp.exit_code == 0);
  CHECK(stamp.output.find(secret) == std::string::npos);
  auto shown = kiln_cli("stamp --show " + disk.string());
  CHECK_THAT(shown.output, Catch::Contains("token          " + config.token.masked()));
  CHECK_THAT(shown.output, Catch::Contains("label          pool=edge"));
  CHECK_THAT(shown.output, Catch::Contains("network        uplink (mac " + mac +
                                           "): 192.168.77.10/24; via 192.168.77.1"));
  CHECK(shown.output.find(secret) == std::string::npos);
  REQUIRE(file_contains(disk, secret));  // stamped, so the erasure check below means something

  std::string node;
  {
    bool joined = false;
    auto booted = boot_until({.disk = disk,
                              .serial_log = work.path() / "first-boot.log",
                              .cpus = 2,
                              .tap = link.device(),
                              .mac = mac},
                             "kiln: joined tenant-e2e as [a-z0-9.-]+", joined);
    QemuVm& vm = *booted;
    INFO(vm.failure_report());
    REQUIRE(joined);
    std::smatch match;
    std::string console = vm.console();
    REQUIRE(
        std::regex_search(console, match, std::regex("kiln: joined tenant-e2e as ([a-z0-9.-]+)")));
    node = match[1];
    CHECK(console.find(secret) == std::string::npos);
    CHECK_THAT(console, Catch::Contains("kiln-network: static network from the KILNCFG partition"));

    // The API server has the Node with the join config's labels...
    kiln::http::Response got;
    for (int i = 0; i < 120; ++i) {
      got = admin_get("/api/v1/nodes/" + node);
      if (got.status == 200) break;
      std::this_thread::sleep_for(std::chrono::seconds(1));
    }
    INFO(got.body);
    REQUIRE(got.status == 200);
    CHECK_THAT(got.body, Catch::Contains("\"pool\":\"edge\""));
    CHECK_THAT(got.body, Catch::Contains("\"tier\":\"e2e\""));
    // ...and the address the stamped network gave it.
    CHECK_THAT(got.body,
               Catch::Contains("{\"type\":\"InternalIP\",\"address\":\"192.168.77.10\"}"));
    // ...and its kubelet's client certificate came through the CSR flow: requested with the
    // bootstrap token, approved and issued.
    kiln::http::Response csrs =
        admin_get("/apis/certificates.k8s.io/v1/certificatesigningrequests");
    INFO(csrs.body);
    REQUIRE(csrs.status == 200);
    CHECK_THAT(csrs.body,
               Catch::Contains("\"username\":\"system:bootstrap:" + config.token.id + "\""));
    CHECK_THAT(csrs.body, Catch::Contains("\"type\":\"Approved\""));
    CHECK_THAT(csrs.body, Catch::Contains("\"certificate\":\""));
    // Give the agent's scrub and the guest's writes a moment to reach the image file.
    vm.wait_for("kiln-firstboot.service", std::chrono::seconds(5));
  }

  // The token is gone from the config partition and from the whole disk: journal, /var, /etc.
  // The network config stays: the node needs it on every boot.
  auto after = kiln_cli("stamp --show " + disk.string());
  CHECK_THAT(after.output, Catch::Contains("join config    nothing stamped"));
  CHECK_THAT(after.output, Catch::Contains("network        uplink (mac " + mac));
  CHECK_FALSE(file_contains(disk, secret));

  bool idle = false;
  auto second_boot = boot_until({.disk = disk,
                                 .serial_log = work.path() / "second-boot.log",
                                 .cpus = 2,
                                 .tap = link.device(),
                                 .mac = mac},
                                "already joined; nothing to do", idle);
  QemuVm& second = *second_boot;
  INFO(second.failure_report());
  CHECK(idle);
  CHECK_THAT(second.console(), Catch::Contains("joined tenant-e2e as " + node));
  CHECK_THAT(second.console(), !Catch::Contains("kiln: joining"));
}

TEST_CASE("kiln build --join stamps its outputs 0600 and keeps the token out of the cache",
          "[join]") {
  kiln::test::TempDir work;
  auto token = kiln_cli("token create --kubeconfig " + control_plane("ADMIN_KUBECONFIG") +
                        " --endpoint " + control_plane("GUEST_API_URL") + " --ttl 30m -o " +
                        (work.path() / "join.yaml").string());
  REQUIRE(token.exit_code == 0);
  std::string secret = kiln::load_join_config(work.path() / "join.yaml").token.secret;
  fs::path marker = work.path() / "before-build";
  kiln::write_file_atomic(marker, "");
  std::this_thread::sleep_for(std::chrono::seconds(1));
  auto build = kiln_cli(
      "build " + std::string(KILN_SOURCE_DIR) + "/recipes/worker.yaml --outputs raw --join " +
      (work.path() / "join.yaml").string() + " -o " + (work.path() / "out").string());
  INFO(build.output);
  REQUIRE(build.exit_code == 0);
  CHECK(build.output.find(secret) == std::string::npos);
  struct stat st {};
  REQUIRE(::stat((work.path() / "out/worker.raw").c_str(), &st) == 0);
  CHECK((st.st_mode & 0077) == 0);
  auto shown = kiln_cli("stamp --show " + (work.path() / "out/worker.raw").string());
  CHECK_THAT(shown.output, Catch::Contains("endpoint       https://10.0.2.2:"));
  // Nothing the build wrote into the cache holds the token.
  std::string cache = std::getenv("KILN_CACHE") ? std::getenv("KILN_CACHE")
                                                : std::string(std::getenv("HOME")) + "/.cache/kiln";
  std::string touched =
      kiln::run({"find", cache, "-type", "f", "-newer", marker.string()}, {.capture_stdout = true})
          .stdout_text;
  std::istringstream files(touched);
  for (std::string file; std::getline(files, file);) {
    INFO(file);
    CHECK_FALSE(file_contains(file, secret));
  }
}

TEST_CASE("a netbooted node joins the control plane with a join config given by URL",
          "[join][pxe][boot]") {
  kiln::test::TempDir work;
  fs::path configs = work.path() / "configs";
  fs::create_directory(configs);
  auto token = kiln_cli("token create --kubeconfig " + control_plane("ADMIN_KUBECONFIG") +
                        " --endpoint " + control_plane("GUEST_API_URL") +
                        " --name tenant-pxe --ttl 45m --labels pool=netboot -o " +
                        (configs / "join.yaml").string());
  INFO(token.output);
  REQUIRE(token.exit_code == 0);

  // One server for the PXE folder, one handing out per-pool join configs, pinned by digest.
  const fs::path pxe = kImage / "pxe";
  kiln::test::ServedFolder boot_server(pxe);
  kiln::test::ServedFolder config_server(configs);
  std::string join_args = "kiln.join_url=" + config_server.guest_url("join.yaml") +
                          " kiln.join_sha256=" + kiln::sha256_file(configs / "join.yaml");
  bool joined = false;
  auto booted =
      boot_until({.serial_log = work.path() / "netboot.log",
                  .kernel = pxe / "vmlinuz",
                  .initrd = pxe / "initrd.img",
                  .append = kiln::test::boot_ipxe_cmdline(pxe, boot_server.base_url(), join_args),
                  .memory_mb = 3072,
                  .cpus = 2,
                  // Another machine than the disk-join test's: the node is named after its MAC.
                  .mac = "52:54:00:12:34:57"},
                 "kiln: joined tenant-pxe as [a-z0-9.-]+", joined);
  INFO(booted->failure_report());
  INFO(config_server.log());
  REQUIRE(joined);
  std::smatch match;
  std::string console = booted->console();
  REQUIRE(
      std::regex_search(console, match, std::regex("kiln: joined tenant-pxe as ([a-z0-9.-]+)")));
  CHECK_THAT(config_server.log(), Catch::Contains("GET /join.yaml"));

  kiln::http::Response got;
  for (int i = 0; i < 120; ++i) {
    got = admin_get("/api/v1/nodes/" + std::string(match[1]));
    if (got.status == 200) break;
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
  INFO(got.body);
  REQUIRE(got.status == 200);
  CHECK_THAT(got.body, Catch::Contains("\"pool\":\"netboot\""));
}
