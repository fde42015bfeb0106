#include "builder/rootfs/compose.h"

#include <catch2/catch.hpp>

#include "builder/fetch/cache.h"
#include "builder/rootfs/root_tree.h"
#include "builder/rootfs/tar_io.h"
#include "builder/util/files.h"
#include "support/temp_dir.h"

namespace fs = std::filesystem;
using kiln::RootTree;

namespace {

/// A stand-in for mmdebstrap's output: just the files composition reads or edits.
fs::path write_small_base(const fs::path& dir) {
  RootTree base;
  base.write_file("/etc/passwd", "root:x:0:0:root:/root:/bin/bash\n");
  base.write_file("/etc/shadow", "root:*:20000:0:99999:7:::\n", 0640);
  base.write_file("/etc/group", "root:x:0:\nshadow:x:42:\n");
  base.write_file("/usr/lib/cni/bridge", "elf", 0755);
  kiln::write_tar(base, dir / "base.tar", 1);
  return dir / "base.tar";
}

/// An upstream-style containerd release tarball (bin/containerd, ...).
fs::path write_containerd_release(const fs::path& dir) {
  RootTree release;
  for (const char* name : {"containerd", "containerd-shim-runc-v2", "ctr"}) {
    release.write_file(std::string("/bin/") + name, std::string("release ") + name, 0755);
  }
  kiln::write_tar(release, dir / "containerd.tar", 1);
  return dir / "containerd.tar";
}

}  // namespace

TEST_CASE("composition installs a containerd release with its unit and a version 3 config") {
  kiln::test::TempDir dir;
  kiln::BuildPlan plan;
  plan.recipe.name = "edge";
  plan.recipe.containerd.from = kiln::ContainerdSource::release;
  plan.recipe.containerd.version = kiln::Version{2, 1, 4};
  plan.source_date_epoch = 1700000000;
  plan.rootfs_key = std::string(64, 'a');

  kiln::BaseArtifact base{write_small_base(dir.path()), {{"systemd", "257"}}};
  kiln::KubernetesArtifact kubernetes;
  for (const char* name : {"kubelet", "kubeadm", "crictl"}) {
    kiln::write_file_atomic(dir.path() / name, std::string("binary ") + name, 0755);
    kubernetes.binaries[name] = dir.path() / name;
  }
  kubernetes.containerd_tarball = write_containerd_release(dir.path());
  kubernetes.pause_image = "registry.k8s.io/pause:3.10.1";
  kubernetes.records = {
      {"containerd", "https://example/containerd.tar.gz", std::string(64, 'b'), "/usr/local/bin"}};

  kiln::Cache cache(dir.path() / "cache", false);
  kiln::RootfsArtifact rootfs = kiln::compose_rootfs(plan, base, kubernetes, cache, false);
  RootTree image;
  kiln::read_tar(rootfs.tarball, image);
  CHECK(image.read_file("/usr/local/bin/containerd") == "release containerd");
  CHECK(image.find("/usr/local/bin/ctr")->mode == 0755);
  CHECK(image.read_file("/usr/bin/kubelet") == "binary kubelet");
  CHECK_THAT(image.read_file("/usr/lib/systemd/system/containerd.service"),
             Catch::Contains("ExecStart=/usr/local/bin/containerd"));
  CHECK_THAT(image.read_file("/etc/containerd/config.toml"),
             Catch::StartsWith("# Written by kiln: containerd 2.x"));
  CHECK_THAT(image.read_file("/usr/lib/kiln/manifest.json"),
             Catch::Contains(
                 "{\"name\": \"containerd\", \"origin\": \"https://example/containerd.tar.gz\""));
  CHECK(kiln::read_file(rootfs.manifest) == image.read_file("/usr/lib/kiln/manifest.json"));

  // The second composition with the same key is the cached one, byte for byte.
  kiln::RootfsArtifact again = kiln::compose_rootfs(plan, base, kubernetes, cache, false);
  CHECK(again.tarball_sha256 == rootfs.tarball_sha256);
}
