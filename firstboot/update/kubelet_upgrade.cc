#include "firstboot/update/kubelet_upgrade.h"

#include <chrono>
#include <optional>
#include <thread>

#include "builder/util/error.h"
#include "builder/util/files.h"
#include "builder/util/process.h"
#include "builder/util/version.h"
#include "firstboot/update/health.h"

namespace kiln::update {
namespace fs = std::filesystem;

namespace {

/// This image's kubelet (`kubelet --version`).
Version image_kubelet_version() {
  std::string text = kubelet_version();
  auto version = parse_version(text);
  if (!version) throw Error("cannot read the kubelet's version ('" + text + "')");
  return *version;
}

std::optional<Version> recorded_version(const fs::path& record) {
  if (!fs::exists(record)) return std::nullopt;
  std::string text = read_file(record);
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return parse_version(text);
}

}  // namespace

int upgrade_kubelet_config(const NodePaths& paths, const Say& say) {
  if (!fs::exists(paths.joined_marker)) return 0;  // the join writes a fresh configuration
  const Version image = image_kubelet_version();
  const std::optional<Version> recorded = recorded_version(paths.kubelet_version_record);
  const std::string record_text = "v" + image.text() + "\n";
  if (recorded && *recorded == image) return 0;
  if (recorded && *recorded > image) {
    // A rollback: what the newer kubeadm wrote stays as it is (kubeadm has no downgrade), and
    // the next newer image upgrades it again.
    say("kiln-update: kubelet v" + image.text() + " runs with the configuration written for v" +
        recorded->text());
    write_file_atomic(paths.kubelet_version_record, record_text);
    return 0;
  }
  say("kiln-update: this image brings kubelet v" + image.text() + " (the node's configuration is " +
      (recorded ? "for v" + recorded->text() : "from before kiln recorded it") +
      "): kubeadm upgrade node");
  // The control plane may be out of reach for a while after a reboot: kubeadm is retried
  // until the deadline, and the kubelet waits for this unit.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(10);
  for (int attempt = 1;; ++attempt) {
    try {
      run({"kubeadm", "upgrade", "node", "--kubeconfig", paths.kubelet_kubeconfig.string()});
      write_file_atomic(paths.kubelet_version_record, record_text);
      say("kiln-update: the kubelet configuration is upgraded to v" + image.text());
      return 0;
    } catch (const Error& e) {
      if (std::chrono::steady_clock::now() >= deadline) {
        say("kiln-update: kubeadm upgrade node failed " + std::to_string(attempt) +
            " times; the kubelet starts on its old configuration: " + e.what());
        return 1;
      }
      say("kiln-update: kubeadm upgrade node failed (attempt " + std::to_string(attempt) +
          "); retrying in 15 s");
      std::this_thread::sleep_for(std::chrono::seconds(15));
    }
  }
}

}  // namespace kiln::update
