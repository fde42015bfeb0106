#include "builder/rootfs/immutable_root.h"

#include <fmt/format.h>

#include "builder/rootfs/firstboot_payload.h"
#include "builder/rootfs/node_config.h"
#include "builder/util/files.h"

namespace kiln {

namespace {

constexpr const char* kDhcpNetwork = R"(# kiln: every wired interface asks DHCP for an address.
[Match]
Type=ether
Kind=!*

[Network]
DHCP=yes
)";

// Runs on every boot, so a disk enlarged later (a resized cloud volume) grows too.
constexpr const char* kGrowStateScript = R"sh(#!/bin/sh
# Grows the state partition (the disk's last) and its ext4 file system to the end of the disk.
set -eu
part=$(readlink -f /dev/disk/by-partlabel/state)
name=${part##*/}
disk_name=$(basename "$(readlink -f "/sys/class/block/$name/..")")
disk=/dev/$disk_name
number=$(cat "/sys/class/block/$name/partition")
# sysfs counts 512-byte units whatever the sector size. Past the partition there is at most a
# MiB of alignment and the backup GPT unless the disk grew; checking first means the partition
# table is written only on the boot that finds a larger disk.
start=$(cat "/sys/class/block/$name/start")
size=$(cat "/sys/class/block/$name/size")
disk_size=$(cat "/sys/class/block/$disk_name/size")
if [ $((disk_size - start - size)) -gt 4096 ]; then
    # The backup GPT moves to the disk's new end, then the partition takes the space before it;
    # the kernel learns the new size of the partition in use without a re-read of the table.
    sfdisk --quiet --no-reread --no-tell-kernel --relocate gpt-bak-std "$disk"
    echo ", +" | sfdisk --quiet --no-reread --no-tell-kernel -N "$number" "$disk"
    partx --update --nr "$number" "$disk"
fi
resize2fs "$part"
)sh";

constexpr const char* kGrowStateUnit = R"([Unit]
Description=Grow the kiln state partition to fill its disk
ConditionPathExists=/dev/disk/by-partlabel/state
After=local-fs.target
Before=containerd.service kubelet.service

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/lib/kiln/grow-state

[Install]
WantedBy=multi-user.target
)";

// Generators that find nothing to do on a kiln node still cost seconds of boot under
// emulation or on a small CPU, each a process loading libsystemd-shared before the first unit
// starts; the ssh generator also loads four vsock modules to probe for a hypervisor socket.
// The sysv generator would only wrap procps' init script, which repeats systemd-sysctl.
constexpr const char* kMaskedGenerators[] = {
    "systemd-hibernate-resume-generator",  // no swap, nothing to resume from
    "systemd-integritysetup-generator",    // no /etc/integritytab
    "systemd-rc-local-generator",          // no /etc/rc.local
    "systemd-ssh-generator",               // sshd runs as ssh.service, not on vsock
    "systemd-system-update-generator",     // no offline updates; A/B swaps the root
    "systemd-sysv-generator",              // every package here ships native units
    "systemd-tpm2-generator",              // the node does not seal anything to a TPM
};

// Units that look after a mutable Debian system, each masked and no longer wanted by its
// target. On a kiln node apt can install nothing into the read-only /usr, yet apt-daily would
// still download the package lists of every Debian mirror in sources.list onto the state
// partition each day (and fail daily on an isolated network), and dpkg-db-backup would copy a
// database that never changes. e2scrub checks ext4 volumes through LVM snapshots, and a node
// has no LVM. dracut-shutdown unpacks the initrd back into /run at shutdown from /boot, where
// a kiln root has none (it boots from the ESP), so it could only fail.
struct MaskedUnit {
  const char* unit;
  const char* wanted_by;  ///< the target whose .wants/ link in /etc is removed
};
constexpr MaskedUnit kMaskedUnits[] = {
    {"apt-daily.timer", "timers.target"},
    {"apt-daily-upgrade.timer", "timers.target"},
    {"dpkg-db-backup.timer", "timers.target"},
    {"e2scrub_all.timer", "timers.target"},
    {"e2scrub_reap.service", "multi-user.target"},
    {"dracut-shutdown.service", nullptr},  // wanted from /usr/lib: the mask alone stops it
};

}  // namespace

void write_immutable_root_config(RootTree& tree, const BuildPlan& plan) {
  tree.write_file("/etc/systemd/network/80-kiln-dhcp.network", kDhcpNetwork);
  enable_unit(tree, "systemd-networkd.service", "multi-user.target");
  enable_unit(tree, "systemd-networkd-wait-online.service", "network-online.target");

  const FirstbootPayload& firstboot = firstboot_payload(plan.recipe.base.arch);
  tree.write_file("/usr/lib/kiln/kiln-firstboot", read_file(firstboot.agent), 0755);
  tree.write_file("/usr/lib/systemd/system/kiln-firstboot.service", read_file(firstboot.unit));
  enable_unit(tree, "kiln-firstboot.service", "multi-user.target");
  tree.write_file("/usr/lib/systemd/system/kiln-install.service",
                  read_file(firstboot.install_unit));
  enable_unit(tree, "kiln-install.service", "multi-user.target");
  tree.write_file("/usr/lib/systemd/system/kiln-network.service",
                  read_file(firstboot.network_unit));
  enable_unit(tree, "kiln-network.service", "systemd-networkd.service");

  // A virtual machine's floppy controller makes udev load the driver, which then probes for
  // a drive on the boot's critical path; no node boots from or stores anything on a floppy.
  tree.write_file("/usr/lib/modprobe.d/kiln-no-floppy.conf", "blacklist floppy\n");
  tree.write_file("/usr/lib/kiln/grow-state", kGrowStateScript, 0755);
  tree.write_file("/usr/lib/systemd/system/kiln-grow-state.service", kGrowStateUnit);
  enable_unit(tree, "kiln-grow-state.service", "multi-user.target");

  for (const char* generator : kMaskedGenerators)
    tree.make_symlink(std::string("/etc/systemd/system-generators/") + generator, "/dev/null");
  for (const MaskedUnit& masked : kMaskedUnits) {
    if (masked.wanted_by)
      tree.remove(fmt::format("/etc/systemd/system/{}.wants/{}", masked.wanted_by, masked.unit));
    tree.make_symlink(std::string("/etc/systemd/system/") + masked.unit, "/dev/null");
  }
  // /usr never changes under a booted image and ld.so.cache is built with it, so the
  // first boot need not rebuild it (ConditionNeedsUpdate=/etc compares this stamp with /usr).
  tree.write_file("/etc/.updated", "");
  // Likewise the journal's message catalog, built into /var (the state partition's seed) when
  // systemd was installed: the first boot skips rebuilding it and systemd-update-done.
  tree.write_file("/var/.updated", "");

  // The kubelet creates its FlexVolume directory at start; /usr is read-only.
  tree.write_file("/etc/default/kubelet",
                  "KUBELET_EXTRA_ARGS=--volume-plugin-dir=/var/lib/kubelet/volumeplugins\n");

  // systemd mounts the ESP on /efi when it finds an empty directory there; every other
  // mount point must exist too, as nothing can create one in a read-only root.
  tree.make_directory("/efi", 0700);
  tree.make_directory("/var", 0755);
}

}  // namespace kiln
