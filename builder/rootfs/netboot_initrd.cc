#include "builder/rootfs/netboot_initrd.h"

namespace kiln {

namespace {

constexpr const char* kModuleSetup = R"(#!/bin/bash
# kiln-netroot: boots a kiln root image fetched over HTTP (see kiln-netroot-generator).

check() { return 0; }

depends() {
    echo systemd kiln-state
    return 0
}

installkernel() {
    # Loop devices carry the image; the NICs are those of common servers and VMs.
    hostonly='' instmods loop dm-verity af_packet virtio_net e1000 e1000e igb igc ixgbe \
        i40e ice bnxt_en r8169 tg3 vmxnet3 hv_netvsc ena gve
}

install() {
    inst_multiple -o \
        "$systemdutildir"/systemd-networkd \
        "$systemdutildir"/systemd-networkd-wait-online \
        "$systemdsystemunitdir"/systemd-networkd.service \
        "$systemdsystemunitdir"/systemd-networkd.socket \
        "$systemdsystemunitdir"/systemd-networkd-wait-online.service \
        "$dbussystem"/org.freedesktop.network1.conf
    inst_simple /usr/lib/kiln/kiln-netroot /usr/bin/kiln-netroot
    inst_simple "$moddir/90-kiln-netboot.network" "$systemdutildir/network/90-kiln-netboot.network"
    inst_simple "$moddir/kiln-netroot.service" "$systemdsystemunitdir/kiln-netroot.service"
    inst_simple "$moddir/wait-online.conf" \
        "$systemdsystemunitdir/systemd-networkd-wait-online.service.d/50-kiln.conf"
    inst_script "$moddir/kiln-netroot-generator" \
        "$systemdutildir/system-generators/kiln-netroot-generator"
}
)";

constexpr const char* kNetwork = R"(# kiln netboot: every wired interface asks DHCP for an address.
[Match]
Type=ether
Kind=!*

[Network]
DHCP=yes

[DHCPv4]
# The initrd has no machine-id to derive a DUID from.
ClientIdentifier=mac
)";

// Servers often have NICs without a cable: one configured link is enough.
constexpr const char* kWaitOnline = R"([Service]
ExecStart=
ExecStart=/usr/lib/systemd/systemd-networkd-wait-online --any --timeout=0
)";

constexpr const char* kService = R"([Unit]
Description=kiln: fetch and verify the network root image
DefaultDependencies=no
ConditionKernelCommandLine=kiln.root_url
Wants=systemd-networkd-wait-online.service
After=systemd-networkd-wait-online.service systemd-udevd.service
Before=initrd-root-device.target sysroot.mount

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/bin/kiln-netroot
StandardOutput=journal+console
StandardError=journal+console
TimeoutStartSec=infinity
)";

constexpr const char* kGenerator = R"(#!/bin/bash
# kiln-netroot-generator: on a netbooted kiln node (kiln.root_url= on the kernel command
# line) the root is /dev/mapper/root, which kiln-netroot opens once the image is verified, and
# /var is a tmpfs. Disk boots are left alone.
read -r cmdline < /proc/cmdline
case " $cmdline " in
    *" kiln.root_url="*) ;;
    *) exit 0 ;;
esac
dir=$1
mkdir -p "$dir/initrd-root-device.target.wants" "$dir/initrd-root-fs.target.requires" \
    "$dir/dev-mapper-root.device.d" "$dir/sysroot-var.mount.d"
ln -sf /usr/lib/systemd/system/kiln-netroot.service "$dir/initrd-root-device.target.wants/"

cat > "$dir/sysroot.mount" <<UNIT
[Unit]
Description=kiln root image (verified, from the network)
DefaultDependencies=no
Requires=kiln-netroot.service
After=kiln-netroot.service
Before=initrd-root-fs.target

[Mount]
What=/dev/mapper/root
Where=/sysroot
Type=erofs
Options=ro
UNIT
ln -sf ../sysroot.mount "$dir/initrd-root-fs.target.requires/sysroot.mount"

# The download can take longer than systemd's 90 s wait for a device.
printf '[Unit]\nJobRunningTimeoutSec=infinity\n' > "$dir/dev-mapper-root.device.d/50-kiln.conf"

# No state partition: /var (and with it the /etc overlay) lives in RAM.
printf '[Unit]\nDescription=kiln /var in RAM (netboot)\n[Mount]\nWhat=tmpfs\nType=tmpfs\nOptions=mode=0755\n' \
    > "$dir/sysroot-var.mount.d/50-kiln-netboot.conf"
)";

}  // namespace

const std::vector<std::pair<std::string, std::string>>& netboot_initrd_files() {
  static const std::vector<std::pair<std::string, std::string>> files = {
      {"usr/lib/dracut/modules.d/90kiln-netroot/module-setup.sh", kModuleSetup},
      {"usr/lib/dracut/modules.d/90kiln-netroot/90-kiln-netboot.network", kNetwork},
      {"usr/lib/dracut/modules.d/90kiln-netroot/wait-online.conf", kWaitOnline},
      {"usr/lib/dracut/modules.d/90kiln-netroot/kiln-netroot.service", kService},
      {"usr/lib/dracut/modules.d/90kiln-netroot/kiln-netroot-generator", kGenerator},
  };
  return files;
}

}  // namespace kiln
