#include "builder/rootfs/update_config.h"

#include <fmt/format.h>

#include "builder/rootfs/firstboot_payload.h"
#include "builder/rootfs/node_config.h"
#include "builder/util/files.h"

namespace kiln {

namespace {

// Checks run whether or not a url is set: a node stamped with `kiln stamp --update-url`
// has one even when its recipe does not.
constexpr const char* kUpdateService = R"([Unit]
Description=kiln: check for a new image version and stage it in the inactive slot
Documentation=file:/usr/lib/kiln/update.conf
Wants=network-online.target
After=network-online.target kiln-update-health.service kiln-firstboot.service
# A netbooted node boots its folder's root every time: it has no slots to update.
ConditionKernelCommandLine=!kiln.root_url

[Service]
Type=oneshot
ExecStart=/usr/bin/kiln-update check
StandardOutput=journal
StandardError=journal
TimeoutStartSec=3h
# The download streams to the slot through a 1 MiB buffer: nothing here needs more.
MemoryMax=256M
Nice=10
IOSchedulingClass=idle
)";

constexpr const char* kUpdateTimer = R"([Unit]
Description=kiln: periodic update check

[Timer]
OnBootSec=5min
OnUnitInactiveSec={}min
# Nodes of one pool spread their checks (and downloads) over a tenth of the interval.
RandomizedDelaySec={}s

[Install]
WantedBy=timers.target
)";

// Runs on every boot. On a trial boot of a new version it waits for the node to be healthy
// and then blesses the version; if the node never gets there the unit fails and the machine
// reboots, which spends one of the version's tries.
constexpr const char* kHealthService = R"([Unit]
Description=kiln: decide whether this boot's image version is healthy
After=local-fs.target containerd.service kubelet.service kiln-firstboot.service
Before=boot-complete.target
ConditionKernelCommandLine=!kiln.root_url
Wants=boot-complete.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/bin/kiln-update health
StandardOutput=journal+console
StandardError=journal+console
TimeoutStartSec={}s
FailureAction=reboot

[Install]
WantedBy=multi-user.target
)";

// Before the kubelet of a joined node starts: what `kubeadm upgrade node` does on a kubeadm
// worker, when this image's kubelet is newer than the one the node's configuration was
// written for (an update that follows a Tenant Control Plane upgrade).
constexpr const char* kKubeletConfigService = R"([Unit]
Description=kiln: upgrade the kubelet configuration for this image's kubelet
ConditionPathExists=/var/lib/kiln/joined
Wants=network-online.target
After=network-online.target containerd.service
Before=kubelet.service kiln-update-health.service

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/bin/kiln-update kubelet-config
StandardOutput=journal+console
StandardError=journal+console
TimeoutStartSec=15min

[Install]
WantedBy=multi-user.target
)";

// A hang anywhere after PID 1 starts (a wedged kernel, a stuck driver) stops the pings and
// the hardware watchdog resets the machine; the boot loader then counts a failed try.
constexpr const char* kWatchdogConfig = R"([Manager]
RuntimeWatchdogSec=3min
RebootWatchdogSec=10min
)";

void add_image_identity(RootTree& tree, const Recipe& recipe) {
  std::string path = "/usr/lib/os-release";
  std::string text;
  if (const TreeNode* node = tree.find(path); node && node->type == TreeNode::Type::file) {
    text = tree.read_file(path);
    if (!text.empty() && text.back() != '\n') text += '\n';
  }
  text += fmt::format("IMAGE_ID={}\nIMAGE_VERSION={}\n", recipe.name, recipe.version);
  tree.write_file(path, text);
  if (!tree.contains("/etc/os-release"))
    tree.make_symlink("/etc/os-release", "../usr/lib/os-release");
}

}  // namespace

std::string render_update_config(const Recipe& recipe) {
  return fmt::format(
      "# Written by kiln from the recipe's `updates:`; read by kiln-update.\n"
      "name={}\narch={}\nversion={}\nurl={}\nreboot={}\ntries={}\nhealth_timeout={}\n",
      recipe.name, to_string(recipe.base.arch), recipe.version, recipe.updates.url,
      to_string(recipe.updates.reboot), recipe.updates.tries,
      recipe.updates.health_timeout_seconds);
}

void write_update_config(RootTree& tree, const BuildPlan& plan) {
  const Recipe& recipe = plan.recipe;
  add_image_identity(tree, recipe);
  tree.write_file(kUpdateConfigPath, render_update_config(recipe));
  tree.make_directory(kTrustedKeysDir);
  for (std::size_t i = 0; i < recipe.updates.trusted_keys.size(); ++i) {
    tree.write_file(fmt::format("{}/{:02}.pem", kTrustedKeysDir, i + 1),
                    recipe.updates.trusted_keys[i].pem);
  }
  tree.write_file("/usr/bin/kiln-update",
                  read_file(firstboot_payload(recipe.base.arch).update_agent), 0755);
  tree.write_file("/usr/lib/systemd/system/kiln-update.service", kUpdateService);
  unsigned minutes = recipe.updates.check_interval_minutes;
  tree.write_file("/usr/lib/systemd/system/kiln-update.timer",
                  fmt::format(kUpdateTimer, minutes, minutes * 6));
  enable_unit(tree, "kiln-update.timer", "timers.target");
  // The unit outlives the agent's own deadline, which then reports why before it fails.
  tree.write_file("/usr/lib/systemd/system/kiln-update-health.service",
                  fmt::format(kHealthService, recipe.updates.health_timeout_seconds + 300));
  enable_unit(tree, "kiln-update-health.service", "multi-user.target");
  tree.write_file("/usr/lib/systemd/system/kiln-kubelet-config.service", kKubeletConfigService);
  enable_unit(tree, "kiln-kubelet-config.service", "multi-user.target");
  tree.write_file("/etc/systemd/system.conf.d/60-kiln-watchdog.conf", kWatchdogConfig);
}

}  // namespace kiln
