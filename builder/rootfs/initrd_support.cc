#include "builder/rootfs/initrd_support.h"

#include "builder/rootfs/netboot_initrd.h"

namespace kiln {

namespace {

constexpr const char* kDracutConfig =
    R"(# kiln: one generic initrd for every machine the image boots on.
hostonly="no"
reproducible="yes"
# dracut's own zstd default is level 15: five more seconds of every cold build for an initrd
# 0.5% smaller (most of it is already-compressed kernel modules).
compress="zstd -9 -q -T0"
add_dracutmodules+=" systemd systemd-veritysetup dm kiln-state kiln-netroot "
# Root file system, its verity target, the state partition and the disks they live on.
add_drivers+=" erofs dm-verity overlay ext4 virtio_blk virtio_scsi virtio_pci nvme ahci sd_mod "
omit_dracutmodules+=" plymouth resume lvm mdraid multipath nfs iscsi "
# The initrd mounts only these: the root (EROFS), /var (ext4) and /etc's overlay. Every other
# file system module (btrfs, xfs, bcachefs, f2fs, cifs...) would be 8 MB of dead weight.
filesystems=" erofs ext4 overlay "
# Nothing in the initrd unlocks LUKS volumes or reads hardware databases: hwdb alone is 13 MB,
# the crypt, fido2 and pkcs11 modules bring their libraries. Dropping them cuts the initrd by
# a quarter, which the firmware loads and the kernel unpacks on every boot.
omit_dracutmodules+=" hwdb crypt systemd-cryptsetup fido2 pkcs11 tpm2-tss systemd-pcrphase "
omit_dracutmodules+=" systemd-battery-check nvdimm lunmask terminfo virtfs virtiofs "
# No root is ever on a floppy or an optical disc; loading their drivers first only delays the
# disk the initrd waits for.
omit_drivers+=" floppy sr_mod cdrom "
)";

constexpr const char* kModuleSetup = R"(#!/bin/bash
# kiln-state: mounts the state partition (label "state") on /sysroot/var and overlays a
# persistent /etc kept on it over the read-only root, before switch-root.

check() { return 0; }

depends() {
    echo systemd
    return 0
}

installkernel() {
    hostonly='' instmods ext4 overlay
}

install() {
    local unit
    for unit in sysroot-var.mount kiln-state-dirs.service sysroot-etc.mount; do
        inst_simple "$moddir/$unit" "$systemdsystemunitdir/$unit"
        mkdir -p "$initdir$systemdsystemunitdir/initrd-fs.target.wants"
        ln_r "$systemdsystemunitdir/$unit" "$systemdsystemunitdir/initrd-fs.target.wants/$unit"
    done
    inst_multiple mkdir
}
)";

constexpr const char* kVarMount = R"([Unit]
Description=kiln state partition on /var
DefaultDependencies=no
After=sysroot.mount
Requires=sysroot.mount
Before=initrd-fs.target

[Mount]
What=/dev/disk/by-partlabel/state
Where=/sysroot/var
Type=ext4
Options=rw,noatime
)";

// A state partition made by hand, or wiped, lacks the overlay directories.
constexpr const char* kStateDirsService = R"([Unit]
Description=kiln /etc overlay directories on the state partition
DefaultDependencies=no
After=sysroot-var.mount
Requires=sysroot-var.mount
Before=sysroot-etc.mount initrd-fs.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/bin/mkdir -p /sysroot/var/lib/kiln/etc/upper /sysroot/var/lib/kiln/etc/work
)";

constexpr const char* kEtcMount = R"([Unit]
Description=kiln persistent /etc overlay
DefaultDependencies=no
After=sysroot-var.mount kiln-state-dirs.service
Requires=sysroot-var.mount kiln-state-dirs.service
Before=initrd-fs.target

[Mount]
What=overlay
Where=/sysroot/etc
Type=overlay
Options=lowerdir=/sysroot/etc,upperdir=/sysroot/var/lib/kiln/etc/upper,workdir=/sysroot/var/lib/kiln/etc/work
)";

}  // namespace

const std::vector<std::pair<std::string, std::string>>& initrd_support_files() {
  static const std::vector<std::pair<std::string, std::string>> files = [] {
    std::vector<std::pair<std::string, std::string>> all = {
        {"etc/dracut.conf.d/50-kiln.conf", kDracutConfig},
        {"usr/lib/dracut/modules.d/90kiln-state/module-setup.sh", kModuleSetup},
        {"usr/lib/dracut/modules.d/90kiln-state/sysroot-var.mount", kVarMount},
        {"usr/lib/dracut/modules.d/90kiln-state/kiln-state-dirs.service", kStateDirsService},
        {"usr/lib/dracut/modules.d/90kiln-state/sysroot-etc.mount", kEtcMount},
    };
    const auto& netboot = netboot_initrd_files();
    all.insert(all.end(), netboot.begin(), netboot.end());
    return all;
  }();
  return files;
}

std::string initrd_build_script(const std::vector<std::string>& omit_modules) {
  std::string script =
      "set -eu\nfor dir in /usr/lib/modules/*/; do\n  version=$(basename \"$dir\")\n"
      "  pruned=\n";
  // The bootstrap never unpacks omitted modules, so this finds nothing unless a package put
  // them in place some other way; depmod (seconds) runs again only then. The recipe parser
  // only lets plain relative paths through, so quoting them is enough.
  for (const auto& path : omit_modules) {
    script += "  if [ -e \"$dir/kernel/" + path + "\" ]; then rm -rf \"$dir/kernel/" + path +
              "\"; pruned=yes; fi\n";
  }
  script +=
      "  if [ -n \"$pruned\" ]; then depmod -a \"$version\"; fi\n"
      "  dracut --quiet --force --kver \"$version\" \"/boot/initrd.img-$version\"\n"
      "done\n";
  return script;
}

}  // namespace kiln
