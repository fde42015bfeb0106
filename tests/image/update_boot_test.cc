// Day-2 updates on a booted, joined node under UEFI (OVMF + systemd-boot), end to end: the
// node runs 1.0.0 from the test releases (the default recipe's kubelet) and joins a control
// plane of its own; the control plane is upgraded to the next Kubernetes minor, and 2.0.0
// (that minor's kubelet) appears in the node's stamped update folder. The node loses power in
// the middle of writing slot B and comes back on 1.0.0, resumes, boots 2.0.0 on trial and
// blesses it once its kubelet reports the new version on the same Node object, with no new
// certificate request and its bootstrap token long expired. Then 3.0.0, which never becomes
// healthy, is rolled back to 2.0.0 by the boot loader's count alone and never retried, and
// 4.0.0 installs after it.
#include <catch2/catch.hpp>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "builder/disk/sparse_copy.h"
#include "builder/join/join_config.h"
#include "builder/join/kubeconfig.h"
#include "builder/util/files.h"
#include "builder/util/process.h"
#include "support/control_plane.h"
#include "support/qemu_vm.h"
#include "support/run_command.h"
#include "support/served_folder.h"
#include "support/temp_dir.h"
#include "support/update_publisher.h"

namespace fs = std::filesystem;
using kiln::test::Firmware;
using kiln::test::OwnControlPlane;
using kiln::test::QemuVm;

namespace {

constexpr auto kBoot = std::chrono::seconds(900);
constexpr auto kJoin = std::chrono::seconds(1500);

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

/// The node's machine: UEFI, rebooting in place (updates and rollbacks reboot it), two vCPUs
/// for its kubelet.
kiln::test::VmOptions node_vm(const fs::path& disk, const fs::path& serial_log) {
  return {.disk = disk,
          .firmware = Firmware::uefi,
          .serial_log = serial_log,
          .cpus = 2,
          .allow_reboot = true};
}

/// What the control plane knows of a Node: its identity and the kubelet that last posted status.
struct NodeFacts {
  std::string uid;
  std::string kubelet_version;
};

NodeFacts node_facts(const OwnControlPlane& cp, const std::string& node) {
  kiln::http::Response got;
  // The kubelet registers its Node a moment after kubeadm reports the join.
  for (int attempt = 0; attempt < 120; ++attempt) {
    got = cp.get("/api/v1/nodes/" + node);
    if (got.status == 200) break;
    std::this_thread::sleep_for(std::chrono::seconds(5));
  }
  INFO(got.status << " " << got.error << " " << got.body);
  REQUIRE(got.status == 200);
  auto object = nlohmann::json::parse(got.body);
  return {object.at("metadata").at("uid").get<std::string>(),
          object.at("status").at("nodeInfo").at("kubeletVersion").get<std::string>()};
}

std::set<std::string> certificate_requests(const OwnControlPlane& cp) {
  auto got = cp.get("/apis/certificates.k8s.io/v1/certificatesigningrequests");
  INFO(got.status << " " << got.error << " " << got.body);
  REQUIRE(got.status == 200);
  std::set<std::string> names;
  for (const auto& item : nlohmann::json::parse(got.body).at("items"))
    names.insert(item.at("metadata").at("name").get<std::string>());
  return names;
}

/// Ends the bootstrap token's life now rather than at its TTL, then shows the API server no
/// longer takes it: whatever the node does from here, it cannot join again with it.
void expire_token(const OwnControlPlane& cp, const kiln::BootstrapToken& token) {
  auto patched =
      cp.merge_patch("/api/v1/namespaces/kube-system/secrets/bootstrap-token-" + token.id,
                     R"({"stringData":{"expiration":"2000-01-01T00:00:00Z"}})");
  INFO(patched.status << " " << patched.error << " " << patched.body);
  REQUIRE(patched.status == 200);
  kiln::http::Request as_token;
  as_token.url = cp.env("API_URL") + "/api";
  as_token.ca_pem = kiln::load_kubeconfig(cp.env("ADMIN_KUBECONFIG")).ca_pem;
  as_token.bearer_token = token.text();
  CHECK(kiln::http::request(as_token).status == 401);
}

}  // namespace

TEST_CASE(
    "a joined UEFI node follows its control plane to the next Kubernetes minor without "
    "rejoining and rolls back a version that never becomes healthy",
    "[image][update-boot]") {
  kiln::test::TempDir dir;
  const fs::path control_plane_bin = kiln::test::update_releases() / "control-plane";
  OwnControlPlane cp(dir.path() / "control-plane", control_plane_bin / "1.0.0");
  const std::string first_kubernetes = cp.env("KUBERNETES_VERSION");
  auto token = kiln::test::run_command(
      std::string(KILN_BINARY) + " token create --kubeconfig " + cp.env("ADMIN_KUBECONFIG") +
      " --endpoint " + cp.env("GUEST_API_URL") + " --name tenant-update --ttl 1h -o " +
      (dir.path() / "join.yaml").string());
  INFO(token.output);
  REQUIRE(token.exit_code == 0);
  const kiln::BootstrapToken bootstrap_token =
      kiln::load_join_config(dir.path() / "join.yaml").token;

  fs::path folder = dir.path() / "served" / "update";
  kiln::test::publish_releases(folder, {"1.0.0"});
  kiln::test::ServedFolder server(dir.path() / "served");
  fs::path disk = dir.path() / "node.raw";
  kiln::copy_sparse_atomic(kiln::test::update_releases() / "1.0.0" / "worker.raw", disk);
  kiln::run({KILN_BINARY, "stamp", disk.string(), "--join", (dir.path() / "join.yaml").string()},
            {.quiet = true});
  kiln::run({KILN_BINARY, "stamp", disk.string(), "--update-url", server.guest_url("update")},
            {.quiet = true});
  kiln::test::install_probe(disk, kProbe);

  fs::path log = dir.path() / "console.log";
  std::string machine_id, node;
  NodeFacts joined;
  std::set<std::string> requests_after_join;
  {
    QemuVm vm(node_vm(disk, log));
    {
      INFO(vm.failure_report());
      REQUIRE(vm.wait_for("kiln: joined tenant-update as [a-z0-9.-]+", kJoin));
    }
    std::smatch match;
    std::string console = vm.console();
    REQUIRE(std::regex_search(console, match,
                              std::regex("kiln: joined tenant-update as ([a-z0-9.-]+)")));
    node = match[1];
    joined = node_facts(cp, node);
    CHECK(joined.kubelet_version == first_kubernetes);
    requests_after_join = certificate_requests(cp);
    expire_token(cp, bootstrap_token);

    // The Tenant Control Plane moves first; then its workers' next image is published.
    cp.upgrade(control_plane_bin / "2.0.0");
    REQUIRE(cp.env("KUBERNETES_VERSION") != first_kubernetes);
    kiln::test::publish_releases(folder, {"1.0.0", "2.0.0"});

    // Power is cut once the first checkpoint of slot B is on disk.
    bool writing =
        vm.wait_for("worker_2\\.0\\.0\\.root\\.img: ([4-9][0-9]|[1-9][0-9]{2}) of", kBoot);
    INFO(vm.failure_report());
    REQUIRE(writing);
    CHECK(last_probe(vm, "running") == "1.0.0 slot a");
    machine_id = last_probe(vm, "machine_id");
  }
  fs::path log2 = dir.path() / "console-2.log";
  QemuVm vm(node_vm(disk, log2));
  {
    INFO(vm.failure_report());
    REQUIRE(vm.wait_for("KILN-PROBE running=1\\.0\\.0 slot a", kBoot));  // the old version
    REQUIRE(vm.wait_for("resuming worker_2\\.0\\.0\\.root\\.img at", kBoot));
    REQUIRE(vm.wait_for("slot b matches root hash", kBoot));
    REQUIRE(vm.wait_for("kiln-update: version 2\\.0\\.0 is healthy", kBoot));
    REQUIRE(vm.wait_for("KILN-PROBE running=2\\.0\\.0 slot b", kBoot));
  }
  // The same node: /var and /etc (machine-id) came along, and so did its Kubernetes identity.
  CHECK(last_probe(vm, "var_marker") == "written by 1.0.0");
  CHECK(last_probe(vm, "machine_id") == machine_id);
  NodeFacts updated = node_facts(cp, node);
  CHECK(updated.uid == joined.uid);
  CHECK(updated.kubelet_version == cp.env("KUBERNETES_VERSION"));
  CHECK(certificate_requests(cp) == requests_after_join);
  // kiln-kubelet-config.service ran the new image's `kubeadm upgrade node` first.
  CHECK_THAT(vm.console(),
             Catch::Contains("kiln-update: the kubelet configuration is upgraded to " +
                             cp.env("KUBERNETES_VERSION")));
  // No second join: every boot since found the node joined.
  CHECK_THAT(vm.console(), Catch::Contains("(already joined; nothing to do)"));
  CHECK_THAT(vm.console(), !Catch::Contains("kiln: joining "));
  REQUIRE(vm.wait_for("up to date \\(2\\.0\\.0 is the newest", kBoot));

  // 3.0.0 cannot start containerd: two failed trial boots, then 2.0.0 again by itself.
  kiln::test::publish_releases(folder, {"1.0.0", "2.0.0", "3.0.0"});
  {
    INFO(vm.failure_report());
    REQUIRE(vm.wait_for("installing 3\\.0\\.0 into slot a", kBoot));
    REQUIRE(vm.wait_for("removing the boot entry of 1\\.0\\.0", kBoot));
    REQUIRE(vm.wait_for("version 3\\.0\\.0 is not healthy after 30 s: containerd is not active",
                        kBoot));
    REQUIRE(
        vm.wait_for("ROLLED BACK: version 3\\.0\\.0 did not become healthy in its tries "
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
    std::printf(
        "UPDATE-BENCH 4.0.0: %.0f s from the check to healthy, %.1f MiB downloaded, "
        "kiln-update peak RSS %s KiB\n",
        healthy - started, bytes / 1048576.0, peak.size() > 1 ? peak[1].str().c_str() : "?");
  }
  CHECK(last_probe(vm, "var_marker") == "written by 1.0.0");
  CHECK(tried("trial boot of version 3.0.0") == 2);
  CHECK(node_facts(cp, node).uid == joined.uid);
}
