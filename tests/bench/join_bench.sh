#!/usr/bin/env bash
# Join figures for recipes/worker.yaml: `kiln stamp` on a 4 GiB raw image, `kiln token create`
# round trips against a real control plane on loopback, and from a node that joins it under
# qemu (software emulation): the agent's time from its start to `kubeadm join`, its peak RSS,
# and boot-to-joined. Run as root after `make`; uses the kiln cache as it is. Starts its own
# control plane (tests/cluster/control-plane.sh) on the fixture's ports, so not while the
# test suite runs.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
kiln=${KILN:-$root/build/kiln}
export PATH="/usr/local/go/bin:$PATH"
work=$(mktemp -d /var/tmp/kiln-join-bench.XXXXXX)
cp_state=$work/control-plane
cleanup() {
  pkill -f "$work/node.raw" 2>/dev/null || true
  "$root/tests/cluster/control-plane.sh" down "$cp_state" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# shellcheck source=tests/bench/lib.sh
source "$root/tests/bench/lib.sh"
median() { sort -n | awk '{ v[NR] = $1 } END { printf "%.3f", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
echo "kiln join benchmark: $(nproc) cores, software emulation for the boot"
printf 'include: %s\ndisk: {size: 4G}\n' "$root/recipes/worker.yaml" >"$work/four-gib.yaml"
"$kiln" build "$work/four-gib.yaml" --outputs raw -o "$work/image" >"$work/build.log" 2>&1 ||
  { cat "$work/build.log"; exit 1; }
image_bytes=$(stat -c %s "$work/image/worker.raw")

bin=$work/cp-bin
"$kiln" binaries "$root/recipes/worker.yaml" --components kube-apiserver,kube-controller-manager,kubeadm \
  -o "$bin" >"$work/binaries.log" 2>&1 || { cat "$work/binaries.log"; exit 1; }
"$root/tests/cluster/build-etcd.sh" "$bin/etcd" >"$work/etcd.log" 2>&1 || { cat "$work/etcd.log"; exit 1; }
"$root/tests/cluster/control-plane.sh" up "$cp_state" "$bin" >"$work/cp.log" 2>&1 ||
  { cat "$work/cp.log"; exit 1; }
# shellcheck disable=SC1091
source "$cp_state/env"

# Token round trips: each creates a Secret through the API server (TLS, client certificate).
for i in $(seq 1 10); do
  timed "%.4f\n" "$kiln" token create --kubeconfig "$ADMIN_KUBECONFIG" --endpoint "$GUEST_API_URL" \
    --name bench --ttl 30m --labels pool=bench -o "$work/join-$i.yaml"
done >"$work/token.times"
token_median=$(median <"$work/token.times")

# Stamping: the same image, stamped again and again (each stamp replaces the last).
cp --sparse=always "$work/image/worker.raw" "$work/node.raw"
for i in $(seq 1 10); do timed "%.4f\n" "$kiln" stamp "$work/node.raw" --join "$work/join-$i.yaml"; done \
  >"$work/stamp.times"
stamp_median=$(median <"$work/stamp.times")
stamp_max=$(sort -n "$work/stamp.times" | tail -1)

# One node joins: the last stamp's config (pool=bench), two vCPUs as in the join test.
log=$work/console.log
start=$(date +%s.%N)
qemu-system-x86_64 -accel tcg -m 2048 -smp 2 -display none -monitor none -no-reboot \
  -serial "file:$log" -drive "file=$work/node.raw,format=raw,if=virtio" \
  -netdev user,id=n0 -device virtio-net-pci,netdev=n0 >/dev/null 2>&1 &
qemu=$!
for _ in $(seq 1 2400); do
  grep -aqE "kiln: (agent peak RSS|kubeadm join to|refusing)" "$log" 2>/dev/null && break
  sleep 0.5
done
joined_at=$(date +%s.%N)
kill "$qemu" 2>/dev/null; wait "$qemu" 2>/dev/null || true
grep -aq "kiln: joined" "$log" || { echo "bench: the node did not join" >&2; tail -40 "$log" >&2; exit 1; }
to_kubeadm=$(sed -n 's/.*kiln: starting kubeadm join \([0-9.]*\) s after the agent started.*/\1/p' "$log" | head -1)
peak_kib=$(sed -n 's/.*kiln: agent peak RSS \([0-9]*\) KiB.*/\1/p' "$log" | head -1)
peak_mib=$(awk -v k="$peak_kib" 'BEGIN { printf "%.1f", k / 1024 }')
boot_to_joined=$(awk -v a="$start" -v b="$joined_at" 'BEGIN { printf "%.1f", b - a }')

printf '\n%-58s %10s\n' "step" "value"
printf '%-58s %10s\n' "raw image, GiB" "$(awk -v b="$image_bytes" 'BEGIN { printf "%.1f", b / 2^30 }')"
printf '%-58s %10s\n' "kiln stamp on it, median of 10, s" "$stamp_median"
printf '%-58s %10s\n' "kiln stamp, slowest of 10, s" "$stamp_max"
printf '%-58s %10s\n' "kiln token create round trip, median of 10, s" "$token_median"
printf '%-58s %10s\n' "agent start to kubeadm join start (in the guest), s" "$to_kubeadm"
printf '%-58s %10s\n' "agent peak RSS (kubeadm, its child, not counted), MiB" "$peak_mib"
printf '%-58s %10s\n' "qemu start to 'kiln: joined' (TCG, 2 vCPUs), s" "$boot_to_joined"
echo
echo "targets:"
echo "  kiln stamp on a 4 GiB raw       ${stamp_median} s   target <= 0.5 s"
echo "  agent peak RSS                  ${peak_mib} MiB   target <= 16 MiB"
