#!/bin/sh
# Builds the releases the update boot tests publish, from the default recipe: 1.0.0 (with its
# raw disk, the node's first image), 2.0.0, 3.0.0 (containerd cannot start: never healthy)
# and 4.0.0. Each in releases/VERSION/update, signed with a key made here. The running
# version's updates.tries is what a new version gets: 1.0.0 gives one try (the BIOS test's
# rollback costs one boot less), 2.0.0 two (the UEFI test watches the count go down).
# usage: build-update-releases.sh KILN RECIPE OUT
set -eu
kiln=$1 recipe=$2 out=$3
mkdir -p "$out"
cd "$out"
[ -f release.key ] || (umask 077 && openssl genpkey -algorithm ed25519 -out release.key)
openssl pkey -in release.key -pubout -out release.pub
for version in 1.0.0 2.0.0 3.0.0 4.0.0; do
    outputs=update tries=2
    [ "$version" = 1.0.0 ] && outputs="raw, update" tries=1
    {
        echo "include: $recipe"
        echo "version: $version"
        echo "updates:"
        echo "  trusted_keys: [release.pub]"
        echo "  reboot: immediate"
        echo "  tries: $tries"
        echo "  health_timeout: 30"
        echo "outputs: [$outputs]"
        if [ "$version" = 3.0.0 ]; then
            echo "files:"
            echo "  - path: /etc/systemd/system/containerd.service.d/50-broken.conf"
            echo "    content: |"
            echo "      [Service]"
            echo "      ExecStartPre=/bin/false"
        fi
    } > "worker-$version.yaml"
    rm -rf "$version"
    "$kiln" build "worker-$version.yaml" --signing-key release.key -o "$version"
done
