// Checks on the image the build_default_image fixture built from recipes/worker.yaml:
// the binaries run, the node configuration is what kubeadm needs, and builds are
// reproducible and incremental.
#include <catch2/catch.hpp>
#include <filesystem>
#include <regex>

#include "builder/util/files.h"
#include "builder/util/process.h"
#include "builder/util/sha256.h"
#include "builder/util/time.h"
#include "support/run_command.h"
#include "support/temp_dir.h"

namespace fs = std::filesystem;

namespace {

const fs::path kImage = fs::path(KILN_TEST_IMAGES) / "worker";
const fs::path kSource = KILN_SOURCE_DIR;

/// The fixture's rootfs, extracted once for all tests in this binary.
const fs::path& extracted_root() {
  static kiln::test::TempDir dir;
  static bool done = false;
  if (!done) {
    kiln::run({"tar", "--numeric-owner", "-xpf", (kImage / "rootfs.tar").string(), "-C",
               dir.path().string()});
    done = true;
  }
  return dir.path();
}

std::string in_root(const std::vector<std::string>& command) {
  std::vector<std::string> argv = {"chroot", extracted_root().string()};
  argv.insert(argv.end(), command.begin(), command.end());
  return kiln::run(argv,
                   {.env = {{"PATH", "/usr/sbin:/usr/bin:/sbin:/bin"}}, .capture_stdout = true})
      .stdout_text;
}

std::string image_file(const std::string& path) {
  return kiln::read_file(extracted_root() / path.substr(1));
}

/// The version the image's manifest records for a Debian package.
std::string package_version(const std::string& manifest, const std::string& package) {
  std::smatch match;
  std::regex pattern("\\{\"name\": \"" + package + "\", \"version\": \"([^\"]+)\"\\}");
  REQUIRE(std::regex_search(manifest, match, pattern));
  return match[1];
}

kiln::test::CommandResult kiln_build(const std::string& args) {
  return kiln::test::run_command(std::string(KILN_BINARY) + " build " + args);
}

}  // namespace

TEST_CASE("the image's Kubernetes binaries run and report the recipe's versions", "[image]") {
  CHECK(in_root({"kubelet", "--version"}) == "Kubernetes v1.34.12\n");
  CHECK(in_root({"kubeadm", "version", "-o", "short"}) == "v1.34.12\n");
  CHECK(in_root({"crictl", "--version"}) == "crictl version v1.34.0\n");
}

TEST_CASE("containerd and runc run and are the Debian packages the manifest lists", "[image]") {
  std::string manifest = kiln::read_file(kImage / "manifest.json");
  std::string containerd = package_version(manifest, "containerd");
  std::string upstream = containerd.substr(0, containerd.find('~'));  // 1.7.24~ds1-6 -> 1.7.24
  CHECK_THAT(in_root({"containerd", "--version"}), Catch::Contains(" " + upstream));
  std::string runc = package_version(manifest, "runc");
  CHECK_THAT(in_root({"runc", "--version"}),
             Catch::StartsWith("runc version " + runc.substr(0, runc.find('+'))));
}

TEST_CASE("containerd's sandbox image is the pause image kubeadm itself expects", "[image]") {
  std::string images =
      in_root({"kubeadm", "config", "images", "list", "--kubernetes-version", "v1.34.12"});
  std::smatch match;
  REQUIRE(std::regex_search(images, match, std::regex("registry.k8s.io/pause:[0-9.]+")));
  std::string config = image_file("/etc/containerd/config.toml");
  CHECK_THAT(config, Catch::Contains("sandbox_image = \"" + match.str() + "\""));
  CHECK_THAT(config, Catch::Contains("SystemdCgroup = true"));
  // The cgroup driver kubeadm writes into the kubelet's config must match containerd's.
  std::string defaults = in_root({"kubeadm", "config", "print", "init-defaults",
                                  "--component-configs", "KubeletConfiguration"});
  CHECK_THAT(defaults, Catch::Contains("cgroupDriver: systemd"));
}

TEST_CASE("kubelet is installed as kubeadm prescribes and enabled", "[image]") {
  CHECK_THAT(
      image_file("/usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf"),
      Catch::Contains("ExecStart=/usr/bin/kubelet $KUBELET_KUBECONFIG_ARGS $KUBELET_CONFIG_ARGS "
                      "$KUBELET_KUBEADM_ARGS $KUBELET_EXTRA_ARGS"));
  CHECK(fs::read_symlink(extracted_root() /
                         "etc/systemd/system/multi-user.target.wants/kubelet.service") ==
        "/usr/lib/systemd/system/kubelet.service");
  fs::path containerd = fs::read_symlink(
      extracted_root() / "etc/systemd/system/multi-user.target.wants/containerd.service");
  CHECK(fs::is_regular_file(extracted_root() / containerd.relative_path()));
  // systemd itself must accept the units as written.
  std::string verify =
      in_root({"systemd-analyze", "verify", "--man=no", "/usr/lib/systemd/system/kubelet.service"});
  CHECK(verify.empty());
}

TEST_CASE("kernel modules, sysctls, swap and identity are set for kubeadm's preflight", "[image]") {
  std::string modules = image_file("/etc/modules-load.d/kubernetes.conf");
  CHECK_THAT(modules, Catch::Contains("\noverlay\nbr_netfilter\n"));
  std::string sysctl = image_file("/etc/sysctl.d/99-kubernetes.conf");
  CHECK_THAT(sysctl, Catch::Contains("net.ipv4.ip_forward = 1\n"));
  CHECK_THAT(sysctl, Catch::Contains("net.bridge.bridge-nf-call-iptables = 1\n"));
  // Both modules exist in the image's kernel, so loading them at boot can succeed.
  std::string module_list = in_root(
      {"sh", "-c", "find /usr/lib/modules -name 'br_netfilter.ko*' -o -name 'overlay.ko*'"});
  CHECK_THAT(module_list, Catch::Contains("br_netfilter.ko"));
  CHECK_THAT(module_list, Catch::Contains("overlay.ko"));
  CHECK(fs::read_symlink(extracted_root() / "etc/systemd/system/swap.target") == "/dev/null");
  // Units for a mutable Debian system are masked and no longer wanted by their targets: apt's
  // and dpkg's daily timers, e2scrub (it needs LVM), dracut-shutdown (no initrd under /boot).
  for (const auto& [unit, target] : std::vector<std::pair<std::string, std::string>>{
           {"apt-daily.timer", "timers.target"},
           {"apt-daily-upgrade.timer", "timers.target"},
           {"dpkg-db-backup.timer", "timers.target"},
           {"e2scrub_all.timer", "timers.target"},
           {"e2scrub_reap.service", "multi-user.target"},
           {"dracut-shutdown.service", "sysinit.target"}}) {
    INFO(unit);
    CHECK(fs::read_symlink(extracted_root() / "etc/systemd/system" / unit) == "/dev/null");
    CHECK(!fs::exists(
        fs::symlink_status(extracted_root() / "etc/systemd/system" / (target + ".wants") / unit)));
  }
  CHECK(fs::file_size(extracted_root() / "etc/machine-id") == 0);
  // No per-node secrets baked in: SSH host keys are made on first boot.
  CHECK(in_root({"sh", "-c", "ls /etc/ssh/ | grep ssh_host_ || true"}).empty());
  CHECK(fs::read_symlink(extracted_root() /
                         "etc/systemd/system/ssh.service.wants/ssh-host-keys.service") ==
        "/usr/lib/systemd/system/ssh-host-keys.service");
  // Ed25519 and ECDSA keys only, and sshd told to serve exactly those.
  std::string host_keys_unit = image_file("/usr/lib/systemd/system/ssh-host-keys.service");
  CHECK_THAT(host_keys_unit, Catch::Contains("ssh-keygen -q -t ed25519 -N \"\" -f "
                                             "/etc/ssh/ssh_host_ed25519_key\n"));
  CHECK_THAT(host_keys_unit, Catch::Contains("ssh-keygen -q -t ecdsa -N \"\" -f "
                                             "/etc/ssh/ssh_host_ecdsa_key\n"));
  CHECK_THAT(host_keys_unit, !Catch::Contains("rsa") && !Catch::Contains(" -A"));
  CHECK(
      image_file("/etc/ssh/sshd_config.d/10-kiln-host-keys.conf")
          .find("\nHostKey /etc/ssh/ssh_host_ed25519_key\nHostKey /etc/ssh/ssh_host_ecdsa_key\n") !=
      std::string::npos);
  CHECK(image_file("/etc/crictl.yaml")
            .rfind("runtime-endpoint: unix:///run/containerd/containerd.sock\n", 0) == 0);
  // CNI plugin installers write to /opt/cni/bin: it leads to writable /var.
  CHECK(fs::read_symlink(extracted_root() / "opt/cni/bin") == "/var/opt/cni/bin");
  CHECK(fs::is_symlink(extracted_root() / "var/opt/cni/bin/bridge"));
  CHECK(fs::exists(extracted_root() /
                   fs::read_symlink(extracted_root() / "var/opt/cni/bin/bridge").relative_path()));
}

TEST_CASE("the manifest records the recipe, packages and artifacts that are in the image",
          "[image]") {
  std::string manifest = kiln::read_file(kImage / "manifest.json");
  CHECK(image_file("/usr/lib/kiln/manifest.json") == manifest);
  CHECK_THAT(
      manifest,
      Catch::Contains("\"recipe_sha256\": \"" +
                      kiln::sha256_hex(kiln::read_file(kSource / "recipes/worker.yaml")) + "\""));
  for (const char* binary : {"kubelet", "kubeadm", "crictl"}) {
    std::string digest = kiln::sha256_file(extracted_root() / "usr/bin" / binary);
    CHECK_THAT(manifest, Catch::Contains("\"sha256\": \"" + digest + "\", \"path\": \"/usr/bin/" +
                                         binary + "\""));
  }
  std::string installed = in_root({"dpkg-query", "-W", "-f=${Package}\n"});
  CHECK_THAT(installed, Catch::Contains("openssh-server\n"));  // the recipe's extra package
  CHECK(package_version(manifest, "systemd") ==
        in_root({"dpkg-query", "-W", "-f=${Version}", "systemd"}));
  CHECK(image_file("/etc/ssh/sshd_config.d/10-kiln.conf") ==
        kiln::read_file(kSource / "overlays/worker/etc/ssh/sshd_config.d/10-kiln.conf"));
  CHECK(kiln::read_file(kImage / "SHA256SUMS")
            .rfind(kiln::sha256_file(kImage / "rootfs.tar") + "  rootfs.tar\n", 0) == 0);
}

TEST_CASE("a no-change rebuild is served from the stage cache with an identical tarball",
          "[image]") {
  kiln::test::TempDir out;
  kiln::test::CommandResult run = kiln_build((kSource / "recipes/worker.yaml").string() +
                                             " --outputs rootfs,raw -o " + out.path().string());
  INFO(run.output);
  REQUIRE(run.exit_code == 0);
  CHECK_THAT(run.output, Catch::Contains("    base: cached"));
  CHECK_THAT(run.output, Catch::Contains("    kubernetes: cached"));
  CHECK_THAT(run.output, Catch::Contains("    rootfs: cached"));
  CHECK_THAT(run.output, Catch::Contains("    disk: cached"));
  CHECK(kiln::sha256_file(out.path() / "rootfs.tar") == kiln::sha256_file(kImage / "rootfs.tar"));
  CHECK(kiln::sha256_file(out.path() / "worker.raw") == kiln::sha256_file(kImage / "worker.raw"));
}

TEST_CASE("changing only an overlay re-runs only the rootfs stage", "[image]") {
  kiln::test::TempDir work;
  fs::create_directories(work.path() / "extra/etc/kiln");
  // Content no earlier run has used, so the rootfs stage cannot be a cache hit.
  std::string pool = "edge-pool-" + work.path().filename().string() + "-" +
                     std::to_string(kiln::unix_now()) + "\n";
  kiln::write_file_atomic(work.path() / "extra/etc/kiln/pool", pool);
  kiln::write_file_atomic(
      work.path() / "recipe.yaml",
      "include: " + (kSource / "recipes/worker.yaml").string() + "\noverlays: [extra]\n");
  kiln::test::CommandResult run =
      kiln_build((work.path() / "recipe.yaml").string() + " --outputs rootfs -o " +
                 (work.path() / "out").string());
  INFO(run.output);
  REQUIRE(run.exit_code == 0);
  CHECK_THAT(run.output, Catch::Contains("    base: cached"));
  CHECK_THAT(run.output, Catch::Contains("    kubernetes: cached"));
  CHECK_THAT(run.output, !Catch::Contains("    rootfs: cached"));
  std::string listing =
      kiln::run({"tar", "-xOf", (work.path() / "out/rootfs.tar").string(), "./etc/kiln/pool"},
                {.capture_stdout = true})
          .stdout_text;
  CHECK(listing == pool);
}

TEST_CASE("an offline build with an empty cache fails clearly and writes nothing", "[image]") {
  kiln::test::TempDir work;
  kiln::test::CommandResult run =
      kiln_build((kSource / "recipes/worker.yaml").string() + " --offline --cache " +
                 (work.path() / "cache").string() + " -o " + (work.path() / "out").string());
  CHECK(run.exit_code == 4);
  CHECK_THAT(
      run.output,
      Catch::Contains("kiln: error: the base stage (Debian trixie with the recipe's packages) is "
                      "not in the cache " +
                      (work.path() / "cache").string() + "; run the build once without --offline"));
  CHECK_FALSE(fs::exists(work.path() / "out/rootfs.tar"));
}

TEST_CASE("two full builds of the same recipe give byte-identical tarballs and disk images",
          "[image][slow]") {
  // --rebuild re-runs mmdebstrap, the Go builds and the composition; only downloads are
  // reused. Both builds run now, so both see the same Debian archive state.
  kiln::test::TempDir first, second;
  std::string recipe = (kSource / "recipes/worker.yaml").string();
  kiln::test::CommandResult a =
      kiln_build(recipe + " --rebuild --outputs rootfs,raw -o " + first.path().string());
  INFO(a.output);
  REQUIRE(a.exit_code == 0);
  kiln::test::CommandResult b =
      kiln_build(recipe + " --rebuild --outputs rootfs,raw -o " + second.path().string());
  INFO(b.output);
  REQUIRE(b.exit_code == 0);
  CHECK_THAT(b.output, !Catch::Contains(": cached"));
  CHECK(kiln::sha256_file(first.path() / "rootfs.tar") ==
        kiln::sha256_file(second.path() / "rootfs.tar"));
  // EROFS, verity tree, FAT and ext4 file systems, GPT and GRUB embedding: all reproducible.
  CHECK(kiln::sha256_file(first.path() / "worker.raw") ==
        kiln::sha256_file(second.path() / "worker.raw"));
}
