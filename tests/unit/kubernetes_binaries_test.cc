#include <catch2/catch.hpp>

#include "builder/fetch/cache.h"
#include "builder/plan/plan.h"
#include "builder/rootfs/kubernetes_binaries.h"
#include "builder/rootfs/root_tree.h"
#include "builder/rootfs/tar_io.h"
#include "builder/util/files.h"
#include "builder/util/sha256.h"
#include "support/http_server.h"
#include "support/temp_dir.h"

namespace fs = std::filesystem;
using kiln::test::HttpServer;

namespace {

/// Serves kubelet, kubeadm and a crictl tarball in dl.k8s.io's layout, each with its .sha256.
struct ReleaseMirror {
  HttpServer server;
  std::string crictl_tarball;

  explicit ReleaseMirror(const fs::path& scratch) {
    kiln::RootTree crictl;
    crictl.write_file("/crictl", "crictl elf", 0755);
    kiln::write_tar(crictl, scratch / "crictl.tar", 1);
    crictl_tarball = kiln::read_file(scratch / "crictl.tar");
    publish("/k8s/v1.34.12/bin/linux/amd64/kubelet", "kubelet elf");
    publish("/k8s/v1.34.12/bin/linux/amd64/kubeadm", "kubeadm elf");
    publish("/k8s/cri-tools/v1.34.0/crictl-v1.34.0-linux-amd64.tar.gz", crictl_tarball);
  }
  void publish(const std::string& path, const std::string& body) {
    server.serve(path, body);
    server.serve(path + ".sha256", kiln::sha256_hex(body) + "\n");
  }
};

kiln::BuildPlan mirror_plan(const std::string& mirror) {
  kiln::Recipe recipe;
  recipe.name = "mirror-test";
  recipe.kubernetes.from = kiln::KubernetesSource::mirror;
  recipe.kubernetes.mirror = mirror;
  return kiln::make_plan(recipe, {.offline = true, .probe_network = false});
}

}  // namespace

TEST_CASE("a dl.k8s.io-style mirror provides verified kubelet, kubeadm and crictl") {
  kiln::test::TempDir dir;
  ReleaseMirror mirror(dir.path());
  kiln::BuildPlan plan = mirror_plan(mirror.server.url("/k8s"));
  REQUIRE(plan.downloads.size() == 3);
  CHECK(plan.downloads[0].url == mirror.server.url("/k8s/v1.34.12/bin/linux/amd64/kubelet"));
  CHECK(plan.downloads[0].sha256_url == plan.downloads[0].url + ".sha256");

  kiln::Cache cache(dir.path() / "cache", false);
  kiln::KubernetesArtifact artifact = kiln::provide_kubernetes(plan, cache, false, 1);
  CHECK(kiln::read_file(artifact.binaries.at("kubelet")) == "kubelet elf");
  CHECK(kiln::read_file(artifact.binaries.at("kubeadm")) == "kubeadm elf");
  CHECK(kiln::read_file(artifact.binaries.at("crictl")) == "crictl elf");
  REQUIRE(artifact.records.size() == 3);
  CHECK(artifact.records[0].origin == plan.downloads[0].url);
  CHECK(artifact.records[0].sha256 == kiln::sha256_hex("kubelet elf"));
  CHECK(artifact.records[2].sha256 == kiln::sha256_hex(mirror.crictl_tarball));
  CHECK(artifact.pause_image == "registry.k8s.io/pause:3.10.1");

  // Once cached, an offline build needs neither the binaries nor their checksum files.
  kiln::Cache offline(dir.path() / "cache", true);
  kiln::KubernetesArtifact again = kiln::provide_kubernetes(plan, offline, /*rebuild=*/true, 1);
  CHECK(kiln::read_file(again.binaries.at("kubeadm")) == "kubeadm elf");
}

TEST_CASE("a mirror whose binary does not match its published checksum is refused") {
  kiln::test::TempDir dir;
  ReleaseMirror mirror(dir.path());
  mirror.server.serve("/k8s/v1.34.12/bin/linux/amd64/kubeadm", "tampered kubeadm");
  kiln::BuildPlan plan = mirror_plan(mirror.server.url("/k8s"));
  kiln::Cache cache(dir.path() / "cache", false);
  CHECK_THROWS_WITH(kiln::provide_kubernetes(plan, cache, false, 1),
                    Catch::StartsWith("checksum mismatch for " +
                                      mirror.server.url("/k8s/v1.34.12/bin/linux/amd64/kubeadm") +
                                      "\n  expected sha256: " + kiln::sha256_hex("kubeadm elf")));
  // Nothing half-done is published as the stage's output.
  CHECK_FALSE(fs::exists(cache.stage_path("kubernetes", plan.kubernetes_key)));
}

TEST_CASE("a local directory works as a mirror for air-gapped builders") {
  kiln::test::TempDir dir;
  fs::path bin = dir.path() / "mirror/v1.34.12/bin/linux/amd64";
  for (const char* name : {"kubelet", "kubeadm"}) {
    kiln::write_file_atomic(bin / name, std::string(name) + " elf", 0755);
    kiln::write_file_atomic(bin / (std::string(name) + ".sha256"), kiln::sha256_hex(std::string(name) + " elf"));
  }
  kiln::RootTree crictl;
  crictl.write_file("/crictl", "crictl elf", 0755);
  fs::path tarball = dir.path() / "mirror/cri-tools/v1.34.0/crictl-v1.34.0-linux-amd64.tar.gz";
  fs::create_directories(tarball.parent_path());
  kiln::write_tar(crictl, tarball, 1);
  kiln::write_file_atomic(tarball.string() + ".sha256", kiln::sha256_file(tarball) + "  crictl.tar.gz\n");

  kiln::BuildPlan plan = mirror_plan((dir.path() / "mirror").string());
  kiln::Cache cache(dir.path() / "cache", /*offline=*/true);  // a directory mirror needs no network
  kiln::KubernetesArtifact artifact = kiln::provide_kubernetes(plan, cache, false, 1);
  CHECK(kiln::read_file(artifact.binaries.at("crictl")) == "crictl elf");
}
