#include "builder/rootfs/manifest.h"

#include <catch2/catch.hpp>

namespace {

kiln::BuildPlan plan_with_outputs(std::vector<std::string> outputs) {
  kiln::BuildPlan plan;
  plan.recipe.name = "worker";
  plan.recipe.outputs = std::move(outputs);
  plan.recipe.kernel.cmdline = {"console=ttyS0"};
  plan.recipe_hash = std::string(64, 'c');
  plan.source_date_epoch = 1764028800;
  plan.base_key = std::string(64, '1');
  plan.kubernetes_key = std::string(64, '2');
  plan.rootfs_key = std::string(64, '3');
  return plan;
}

}  // namespace

TEST_CASE("the image's manifest is the same whichever outputs the build asked for") {
  kiln::BaseArtifact base{"/unused/base.tar", {{"systemd", "257.9-1"}}};
  kiln::KubernetesArtifact kubernetes;
  kubernetes.pause_image = "registry.k8s.io/pause:3.10.1";
  kubernetes.records = {{"kubelet", "go:k8s.io/kubernetes/cmd/kubelet@v1.34.12",
                         std::string(64, 'd'), "/usr/bin/kubelet"}};

  // --outputs changes recipe.outputs but not the rootfs stage's key, so the image, which the
  // stage caches, must not record it.
  std::string rootfs_only = kiln::render_manifest(plan_with_outputs({"rootfs"}), base, kubernetes);
  std::string with_disks = kiln::render_manifest(
      plan_with_outputs({"rootfs", "raw", "vmdk", "ova", "pxe"}), base, kubernetes);
  CHECK(rootfs_only == with_disks);
  CHECK_THAT(rootfs_only, !Catch::Contains("outputs"));
  CHECK_THAT(rootfs_only, Catch::StartsWith("{\n  \"format\": 2,\n  \"name\": \"worker\",\n"));
  CHECK_THAT(rootfs_only, Catch::Contains("\"kernel_cmdline\": [\"console=ttyS0\"]"));
  CHECK_THAT(rootfs_only, Catch::Contains("\"rootfs\": \"" + std::string(64, '3') + "\""));
}
