#!/usr/bin/env bash
# Root filesystem build times for recipes/worker.yaml, with bare mmdebstrap and mkosi doing the
# same package set in the same run, printed as seconds and ratios. Run as root after `make`.
#
#   tests/bench/rootfs_bench.sh            # Go's build cache as the machine has it
#   BENCH_COLD_GO=1 tests/bench/rootfs_bench.sh   # also start Go compilation from nothing
#   BENCH_SKIP_MKOSI=1 ...                 # without the mkosi comparison
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
kiln=${KILN:-$root/build/kiln}
export PATH="/usr/local/go/bin:$PATH"
work=$(mktemp -d /var/tmp/kiln-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT

# shellcheck source=tests/bench/lib.sh
source "$root/tests/bench/lib.sh"

# The worker recipe plus one overlay of our own, so that changing one file is possible.
mkdir -p "$work/overlay/etc/kiln"
echo "pool-a" >"$work/overlay/etc/kiln/pool"
printf 'include: %s\noverlays: [overlay]\n' "$root/recipes/worker.yaml" >"$work/recipe.yaml"
if [ "${BENCH_COLD_GO:-0}" = 1 ]; then
  export GOCACHE="$work/gocache"
  go_state="cold (empty GOCACHE)"
else
  go_state="as found ($(go env GOCACHE))"
fi

echo "kiln rootfs benchmark: $(nproc) cores, Go build cache $go_state"
kiln_cold=$(seconds "$kiln" build "$work/recipe.yaml" --outputs rootfs --cache "$work/cache" -o "$work/out")
size=$(stat -c %s "$work/out/rootfs.tar")
kiln_warm=$(seconds "$kiln" build "$work/recipe.yaml" --outputs rootfs --cache "$work/cache" -o "$work/out")
echo "pool-b" >"$work/overlay/etc/kiln/pool"
kiln_overlay=$(seconds "$kiln" build "$work/recipe.yaml" --outputs rootfs --cache "$work/cache" -o "$work/out")

packages=$("$kiln" plan "$work/recipe.yaml" --offline | awk '$1 == "package" { printf "%s%s", sep, $2; sep = "," }')
mmdebstrap_cold=$(seconds mmdebstrap --variant=minbase --include="$packages" trixie "$work/bare.tar" \
  http://deb.debian.org/debian)

printf '\n%-44s %8s\n' "step" "seconds"
printf '%-44s %8s\n' "kiln cold (empty kiln cache)" "$kiln_cold"
printf '%-44s %8s\n' "kiln warm, nothing changed" "$kiln_warm"
printf '%-44s %8s\n' "kiln after changing one overlay file" "$kiln_overlay"
printf '%-44s %8s\n' "bare mmdebstrap, same packages (cold)" "$mmdebstrap_cold"
printf '%-44s %8s\n' "kiln rootfs.tar size (MiB)" "$((size / 1048576))"

if [ "${BENCH_SKIP_MKOSI:-0}" != 1 ]; then
  "$root/tests/bench/mkosi_build.sh" --install "$work/mkosi-out" "$work/mkosi-cache" >"$work/mkosi-cold.log" 2>&1 ||
    { cat "$work/mkosi-cold.log"; exit 1; }
  mkosi_cold=$(sed -n 's/^mkosi_seconds=//p' "$work/mkosi-cold.log")
  "$root/tests/bench/mkosi_build.sh" "$work/mkosi-out" "$work/mkosi-cache" >"$work/mkosi-warm.log" 2>&1 ||
    { cat "$work/mkosi-warm.log"; exit 1; }
  mkosi_warm=$(sed -n 's/^mkosi_seconds=//p' "$work/mkosi-warm.log")
  printf '%-44s %8s\n' "mkosi cold ($(mkosi --version 2>/dev/null | head -1))" "$mkosi_cold"
  printf '%-44s %8s\n' "mkosi warm (incremental)" "$mkosi_warm"
fi

echo
echo "ratios (lower is better for kiln):"
echo "  kiln cold / bare mmdebstrap      $(ratio "$kiln_cold" "$mmdebstrap_cold")   target <= 1.0"
if [ -n "${mkosi_cold:-}" ]; then
  echo "  kiln cold / mkosi cold           $(ratio "$kiln_cold" "$mkosi_cold")   target <= 0.8"
  echo "  kiln warm / mkosi warm           $(ratio "$kiln_warm" "$mkosi_warm")"
fi
echo "  kiln warm no-change              ${kiln_warm} s   target <= 10 s"
echo "  kiln overlay-only rebuild        ${kiln_overlay} s   target <= 30 s"
