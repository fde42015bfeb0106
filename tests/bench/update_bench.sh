#!/usr/bin/env bash
# Day-2 update figures under software emulation: the time from `kiln-update check` finding a
# release to the node being healthy on it (download into the inactive slot, read-back and
# dm-verity check, reboot, trial boot, health check), the bytes it downloaded, and the update
# agent's peak resident memory (the 64 MiB target is for this number; the page cache is not
# counted and is dropped as the slot is written). Runs the UEFI update boot test, whose last
# update (4.0.0) is a clean one, and prints its figures. Run as root after `make`.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${KILN_BUILD:-$root/build}
images=$build/test-images
"$root/tests/image/build-update-releases.sh" "$build/kiln" "$root/recipes/worker.yaml" \
  "$images/update-releases" >/dev/null
mkdir -p "$build/test-tmp"
out=$(TMPDIR=$build/test-tmp "$build/tests/kiln_image_tests" --filenames-as-tags \
  "[#update_boot_test]" 2>&1) || { echo "$out" | tail -40; exit 1; }
echo "$out" | grep '^UPDATE-BENCH' | sed 's/^UPDATE-BENCH /update /'
