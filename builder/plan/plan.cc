#include "builder/plan/plan.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>

#include "builder/fetch/http.h"
#include "builder/plan/stage_keys.h"
#include "builder/recipe/version_facts.h"
#include "builder/util/error.h"
#include "builder/util/files.h"
#include "builder/util/log.h"
#include "builder/util/sha256.h"

namespace kiln {
namespace fs = std::filesystem;

const std::vector<std::string>& base_packages() {
  static const std::vector<std::string> packages = {
      "systemd",
      "systemd-sysv",
      "udev",
      "dbus",
      "containerd",
      "runc",
      "containernetworking-plugins",
      "iproute2",
      "iptables",
      "conntrack",
      "ethtool",
      "socat",
      "ca-certificates",
      "kmod",
      "e2fsprogs",
      "util-linux",
      "procps",
      // Booting the immutable disk image: dracut builds the initrd that opens the dm-verity
      // root; systemd-boot for UEFI; sfdisk (fdisk) grows the state partition on first boot.
      "dracut",
      "systemd-cryptsetup",
      "systemd-boot-efi",
      "systemd-resolved",
      "zstd",
      "fdisk",
  };
  return packages;
}

const std::vector<std::string>& node_components() {
  static const std::vector<std::string> components = {"kubelet", "kubeadm", "crictl"};
  return components;
}

namespace {

constexpr const char* kReleaseBase = "https://dl.k8s.io/release";
constexpr const char* kCriToolsReleaseBase =
    "https://github.com/kubernetes-sigs/cri-tools/releases/download";

long long newest_input_mtime(const Recipe& recipe) {
  fs::file_time_type newest{};
  auto consider = [&](const fs::path& path) {
    std::error_code ec;
    auto time = fs::last_write_time(path, ec);
    if (!ec && time > newest) newest = time;
  };
  for (const auto& source : recipe.sources) consider(source);
  for (const auto& overlay : recipe.overlays) {
    for (const auto& entry : fs::recursive_directory_iterator(overlay.directory))
      consider(entry.path());
  }
  auto system = std::chrono::file_clock::to_sys(newest);
  return std::chrono::duration_cast<std::chrono::seconds>(system.time_since_epoch()).count();
}

void resolve_epoch(BuildPlan& plan) {
  if (const char* env = std::getenv("SOURCE_DATE_EPOCH"); env && *env) {
    std::string text = env;
    if (text.find_first_not_of("0123456789") != std::string::npos || text.size() > 18) {
      throw Error("SOURCE_DATE_EPOCH='" + text +
                  "' is not a Unix timestamp (whole seconds since 1970)");
    }
    plan.source_date_epoch = std::stoll(text);
    plan.epoch_origin = "SOURCE_DATE_EPOCH from the environment";
  } else if (plan.recipe.source_date_epoch) {
    plan.source_date_epoch = *plan.recipe.source_date_epoch;
    plan.epoch_origin = "source_date_epoch in the recipe";
  } else {
    plan.source_date_epoch = newest_input_mtime(plan.recipe);
    plan.epoch_origin = "newest input file's modification time";
  }
}

void resolve_kubernetes_source(BuildPlan& plan, const PlanOptions& options) {
  const auto& spec = plan.recipe.kubernetes;
  plan.kubernetes_source = spec.from;
  if (spec.from != KubernetesSource::automatic) {
    plan.kubernetes_source_reason = fmt::format("kubernetes.from: {}", to_string(spec.from));
    return;
  }
  if (options.offline || !options.probe_network) {
    plan.kubernetes_source = KubernetesSource::source;
    plan.kubernetes_source_reason = "from: auto without network probing: building from Go modules";
    return;
  }
  std::string why;
  if (http::reachable(std::string(kReleaseBase) + "/stable.txt", 5, &why)) {
    plan.kubernetes_source = KubernetesSource::release;
    plan.kubernetes_source_reason = "from: auto and dl.k8s.io is reachable";
  } else {
    plan.kubernetes_source = KubernetesSource::source;
    plan.kubernetes_source_reason = fmt::format(
        "from: auto and dl.k8s.io cannot be reached ({}): building kubelet, kubeadm and crictl "
        "from their Go modules through the Go module proxy instead",
        why);
  }
}

void add_release_download(BuildPlan& plan, const std::string& base, const std::string& name) {
  const auto& spec = plan.recipe.kubernetes;
  std::string arch = to_string(plan.recipe.base.arch);
  if (name == "crictl") {
    std::string crictl = "v" + spec.crictl_version.text();
    std::string crictl_base = plan.kubernetes_source == KubernetesSource::mirror
                                  ? base + "/cri-tools/" + crictl
                                  : std::string(kCriToolsReleaseBase) + "/" + crictl;
    std::string url = fmt::format("{}/crictl-{}-linux-{}.tar.gz", crictl_base, crictl, arch);
    plan.downloads.push_back({"crictl", url, "", url + ".sha256"});
    return;
  }
  std::string url = fmt::format("{}/v{}/bin/linux/{}/{}", base, spec.version.text(), arch, name);
  plan.downloads.push_back({name, url, "", url + ".sha256"});
}

void plan_kubernetes(BuildPlan& plan, const std::vector<std::string>& components) {
  const auto& spec = plan.recipe.kubernetes;
  plan.kubernetes_module_version = "v" + spec.version.text();
  plan.cri_tools_module_version = "v" + spec.crictl_version.text();
  plan.staging_module_version = fmt::format("v0.{}.{}", spec.version.minor, spec.version.patch);
  for (const auto& name : components) {
    switch (plan.kubernetes_source) {
      case KubernetesSource::release:
        add_release_download(plan, kReleaseBase, name);
        break;
      case KubernetesSource::mirror:
        add_release_download(plan, spec.mirror, name);
        break;
      default:
        plan.go_binaries.push_back({name, name == "crictl" ? "sigs.k8s.io/cri-tools/cmd/crictl"
                                                           : "k8s.io/kubernetes/cmd/" + name});
    }
  }
  const auto& ctr = plan.recipe.containerd;
  bool node_image = std::find(components.begin(), components.end(), "kubelet") != components.end();
  if (node_image && ctr.from == ContainerdSource::release) {
    plan.downloads.push_back({"containerd", ctr.url, ctr.sha256, ""});
  }
}

/// start4.elf before 2025 cannot read a GPT disk once a 2025 or newer Pi 4 EEPROM hands it
/// the boot partition's number; trixie's raspi-firmware (2024-04) has that bug. forky's
/// 1.20260408 (Architecture: all) has the fix; kiln takes only the firmware files from it.
constexpr const char* kRaspiFirmwarePool =
    "/pool/non-free-firmware/r/raspi-firmware/raspi-firmware_1.20260408+ds-1_all.deb";
constexpr const char* kRaspiFirmwareSha256 =
    "9e215abb588e9adadf69a67107736fc2fa108ef3f17fa93589919c5e66ffe209";

void plan_board_firmware(BuildPlan& plan) {
  const BoardSpec& board = plan.recipe.board;
  if (board.model != Board::rpi4) return;
  if (!board.firmware_url.empty()) {
    plan.board_firmware =
        RemoteArtifact{"raspi-firmware", board.firmware_url, board.firmware_sha256, ""};
    return;
  }
  std::string mirror = plan.recipe.base.mirror;
  while (!mirror.empty() && mirror.back() == '/') mirror.pop_back();
  plan.board_firmware =
      RemoteArtifact{"raspi-firmware", mirror + kRaspiFirmwarePool, kRaspiFirmwareSha256, ""};
}

}  // namespace

BuildPlan make_plan(const Recipe& recipe, const PlanOptions& options) {
  BuildPlan plan;
  plan.recipe = recipe;
  if (!options.debian_mirror.empty()) plan.recipe.base.mirror = options.debian_mirror;
  Sha256 recipe_hasher;
  for (const auto& source : recipe.sources) recipe_hasher.update(read_file(source));
  plan.recipe_hash = recipe_hasher.hex();
  resolve_epoch(plan);

  std::set<std::string> packages(base_packages().begin(), base_packages().end());
  packages.insert(recipe.kernel.package);
  packages.insert(recipe.packages.begin(), recipe.packages.end());
  // A Debian containerd would fight the release tarball's binaries.
  if (recipe.containerd.from == ContainerdSource::release) packages.erase("containerd");
  plan.packages.assign(packages.begin(), packages.end());

  resolve_kubernetes_source(plan, options);
  plan_kubernetes(plan, options.components.empty() ? node_components() : options.components);
  plan.pause_image = pause_image(recipe.kubernetes.version);
  plan_board_firmware(plan);
  plan.payload = options.payload;
  compute_stage_keys(plan);
  return plan;
}

std::string describe_plan(const BuildPlan& plan) {
  const Recipe& r = plan.recipe;
  std::string out;
  out += fmt::format("recipe        {} (sha256 {})\n", r.name, plan.recipe_hash);
  out += fmt::format("epoch         {} ({})\n", plan.source_date_epoch, plan.epoch_origin);
  out += fmt::format("\nstage 1: base [key {}]\n", plan.base_key.substr(0, 16));
  out += fmt::format("  mmdebstrap --variant=minbase {} {} ({})\n", r.base.suite, r.base.mirror,
                     to_string(r.base.arch));
  for (const auto& package : plan.packages) out += "  package     " + package + "\n";
  out += fmt::format("\nstage 2: kubernetes v{} [key {}]\n", r.kubernetes.version.text(),
                     plan.kubernetes_key.substr(0, 16));
  out += "  source      " + plan.kubernetes_source_reason + "\n";
  for (const auto& d : plan.downloads) {
    out += fmt::format("  artifact    {:<10} {}\n              sha256 {}\n", d.name, d.url,
                       d.sha256.empty() ? "published at " + d.sha256_url : d.sha256);
  }
  for (const auto& b : plan.go_binaries) {
    bool cri = b.package.rfind("sigs.k8s.io/cri-tools", 0) == 0;
    out += fmt::format("  go build    {:<10} {}@{} (verified by go.sum / sum.golang.org)\n", b.name,
                       b.package,
                       cri ? plan.cri_tools_module_version : plan.kubernetes_module_version);
  }
  out += fmt::format("\nstage 3: rootfs [key {}]\n", plan.rootfs_key.substr(0, 16));
  out +=
      "  node config containerd config.toml (SystemdCgroup), kubelet.service + 10-kubeadm.conf,\n"
      "              crictl.yaml, modules-load.d, sysctl.d, swap off, empty machine-id\n";
  for (const auto& overlay : r.overlays)
    out += "  overlay     " + overlay.directory.string() + "\n";
  for (const auto& file : r.files)
    out += fmt::format("  file        {} ({:04o} {}:{})\n", file.path, file.mode, file.owner,
                       file.group);
  for (const auto& user : r.users) out += "  user        " + user.name + "\n";
  if (plan.board_firmware) {
    out += fmt::format(
        "\nboard         {}: Pi firmware files from\n  artifact    {:<10} {}\n"
        "              sha256 {}\n",
        to_string(r.board.model), plan.board_firmware->name, plan.board_firmware->url,
        plan.board_firmware->sha256);
  }
  out += "\noutputs      ";
  for (const auto& output : r.outputs) out += " " + output;
  out += "\n";
  return out;
}

}  // namespace kiln
