#!/bin/sh
# Builds the releases the update boot tests publish, from the default recipe: 1.0.0 (with its
# raw disk, the node's first image), 2.0.0 with the next Kubernetes minor (the kubelet a node
# gets after its Tenant Control Plane was upgraded), 3.0.0 (containerd cannot start: never
# healthy), 4.0.0 and 5.0.0 (its kernel panics: init=/bin/false exits). Each in
# releases/VERSION/update, signed with a key made here.
#
# The running version's updates.tries is what a new version gets: 1.0.0 gives one try (the
# BIOS test's rollback costs one boot less), 2.0.0 two (the UEFI test watches the count go
# down). A trial's own health_timeout applies: 3.0.0 gives up after 30 s, the others leave a
# joined kubelet time to start under emulation.
#
# Also the control plane the UEFI test joins and then upgrades: control-plane/1.0.0 and
# control-plane/2.0.0 hold kube-apiserver, kube-controller-manager and kubeadm of the
# releases' Kubernetes versions; etcd, which an upgrade keeps running, is in the first.
# usage: build-update-releases.sh KILN RECIPE OUT
set -eu
kiln=$1 recipe=$2 out=$3
here=$(cd "$(dirname "$0")" && pwd)
# The next minor after the default recipe's: kubelet may be older than its API server, never newer.
next_kubernetes=v1.35.4
mkdir -p "$out"
cd "$out"
# The signing key comes from a fixed seed and the include is relative, so that every checkout
# writes the same recipes and a warm cache serves their stages instead of adding new ones on
# each run. The key signs nothing but these test releases.
if [ ! -f release.key ]; then
    seed=$(printf 'kiln update test releases' | sha256sum | cut -c1-64)
    # PKCS#8 of an Ed25519 private key: a fixed 16-byte prefix, then the 32-byte seed.
    (umask 077 && python3 -c 'import sys; sys.stdout.buffer.write(bytes.fromhex(sys.argv[1]))' \
        "302e020100300506032b657004220420$seed" | openssl pkey -inform DER -out release.key)
fi
openssl pkey -in release.key -pubout -out release.pub
include=$(realpath --relative-to=. "$recipe")
for version in 1.0.0 2.0.0 3.0.0 4.0.0 5.0.0; do
    outputs=update tries=2 health_timeout=600
    [ "$version" = 1.0.0 ] && outputs="raw, update" tries=1
    [ "$version" = 3.0.0 ] && health_timeout=30
    {
        echo "include: $include"
        echo "version: $version"
        if [ "$version" != 1.0.0 ]; then
            echo "kubernetes:"
            echo "  version: $next_kubernetes"
        fi
        echo "updates:"
        echo "  trusted_keys: [release.pub]"
        echo "  reboot: immediate"
        echo "  tries: $tries"
        echo "  health_timeout: $health_timeout"
        echo "outputs: [$outputs]"
        if [ "$version" = 3.0.0 ]; then
            echo "files:"
            echo "  - path: /etc/systemd/system/containerd.service.d/50-broken.conf"
            echo "    content: |"
            echo "      [Service]"
            echo "      ExecStartPre=/bin/false"
        fi
        if [ "$version" = 5.0.0 ]; then
            echo "kernel:"
            echo "  cmdline: [init=/bin/false]"
        fi
    } > "worker-$version.yaml"
    rm -rf "$version"
    "$kiln" build "worker-$version.yaml" --signing-key release.key -o "$version"
done
for version in 1.0.0 2.0.0; do
    "$kiln" binaries "worker-$version.yaml" -o "control-plane/$version" \
        --components kube-apiserver,kube-controller-manager,kubeadm
done
"$here/../cluster/build-etcd.sh" control-plane/1.0.0/etcd
