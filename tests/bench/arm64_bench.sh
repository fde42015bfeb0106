#!/usr/bin/env bash
# arm64 figures beside amd64's, in one run on this (amd64) host: cold and warm builds of
# recipes/worker.yaml and recipes/worker-arm64.yaml to a raw disk, and each raw disk booted
# to a login prompt under software emulation (OVMF on qemu's PC, AAVMF on its arm64 virt
# machine), one guest at a time. Run as root after `make`.
#
#   tests/bench/arm64_bench.sh
#
# Cold: an empty kiln cache of the script's own (Debian .debs and Go's build cache as the
# machine has them). Warm: the same build again, every stage from that cache.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
kiln=${KILN:-$root/build/kiln}
export PATH="/usr/local/go/bin:$PATH"
work=$(mktemp -d /var/tmp/kiln-arm64-bench.XXXXXX)
trap 'pkill -f "$work" 2>/dev/null || true; rm -rf "$work"' EXIT

# shellcheck source=tests/bench/lib.sh
source "$root/tests/bench/lib.sh"

build() {  # build RECIPE CACHE OUT: prints seconds; the log is kept as OUT.log
  seconds "$kiln" build "$1" --outputs raw --cache "$2" -o "$3"
  cp "$work/last.log" "$3.log"
}

echo "kiln arm64 benchmark: $(nproc) cores, host $(uname -m), software emulation for boots"
amd64_cold=$(build "$root/recipes/worker.yaml" "$work/cache-amd64" "$work/amd64-cold")
amd64_warm=$(build "$root/recipes/worker.yaml" "$work/cache-amd64" "$work/amd64-warm")
arm64_cold=$(build "$root/recipes/worker-arm64.yaml" "$work/cache-arm64" "$work/arm64-cold")
arm64_warm=$(build "$root/recipes/worker-arm64.yaml" "$work/cache-arm64" "$work/arm64-warm")
amd64_boot=$(boot_to_login "$work/amd64-cold/worker.raw" uefi)
arm64_boot=$(boot_to_login "$work/arm64-cold/worker.raw" uefi arm64)

printf '\n%-44s %10s %10s %8s\n' "step" "amd64" "arm64" "ratio"
printf '%-44s %10s %10s %8s\n' "cold build to raw (empty kiln cache), s" "$amd64_cold" "$arm64_cold" "$(ratio "$arm64_cold" "$amd64_cold")"
printf '%-44s %10s %10s %8s\n' "warm build to raw (every stage cached), s" "$amd64_warm" "$arm64_warm" "$(ratio "$arm64_warm" "$amd64_warm")"
printf '%-44s %10s %10s %8s\n' "boot to login under TCG (UEFI), s" "$amd64_boot" "$arm64_boot" "$(ratio "$arm64_boot" "$amd64_boot")"
for stage in "base trixie" "kubernetes binaries" rootfs disk; do
  a=$(stage_seconds "$stage" "$work/amd64-cold.log")
  b=$(stage_seconds "$stage" "$work/arm64-cold.log")
  printf '%-44s %10s %10s %8s\n' "  cold: $stage stage, s" "$a" "$b" "$(ratio "$b" "$a")"
done
printf '%-44s %10s %10s\n' "raw disk, allocated MB" \
  "$(($(du -B1 "$work/amd64-cold/worker.raw" | cut -f1) / 1000000))" \
  "$(($(du -B1 "$work/arm64-cold/worker.raw" | cut -f1) / 1000000))"
