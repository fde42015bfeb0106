#!/usr/bin/env bash
# Disk image figures for recipes/worker.yaml, with mkosi building the same package set as a
# bootable UEFI disk in the same run; prints seconds, sizes and ratios. Run as root after
# `make`. Boots use qemu under software emulation (no KVM here), one guest at a time.
#
#   tests/bench/disk_bench.sh                 # everything
#   BENCH_SKIP_MKOSI=1 tests/bench/disk_bench.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
kiln=${KILN:-$root/build/kiln}
export PATH="/usr/local/go/bin:$PATH"
work=$(mktemp -d /var/tmp/kiln-disk-bench.XXXXXX)
trap 'pkill -f "$work" 2>/dev/null || true; rm -rf "$work"' EXIT

# shellcheck source=tests/bench/lib.sh
source "$root/tests/bench/lib.sh"

echo "kiln disk benchmark: $(nproc) cores, software emulation for boots"
# Cold: an empty kiln cache (Go's build cache as the machine has it).
kiln_cold=$(seconds "$kiln" build "$root/recipes/worker.yaml" --outputs raw --cache "$work/cache" \
  -o "$work/cold")
# Disk assembly from the cached rootfs: a recipe differing only in its disk sizes shares
# every earlier stage's inputs except the recipe text, so the rootfs is recomposed (a few
# seconds, reported apart) and the disk stage and exports run in full.
printf 'include: %s\ndisk: {state: 1100M}\n' "$root/recipes/worker.yaml" >"$work/resized.yaml"
# Traced, to count what it executes: no qemu, supermin or libguestfs appliance.
# (--seccomp-bpf stops the build only at execve, so the timing is not disturbed.)
strace -f --seccomp-bpf -qq -e trace=execve -e signal=none -o "$work/exec.trace" \
  "$kiln" build "$work/resized.yaml" --outputs raw,qcow2,raw.zst --cache "$work/cache" \
  -o "$work/assembly" >"$work/assembly.log" 2>&1 || { cat "$work/assembly.log"; exit 1; }
disk_stage=$(stage_seconds disk "$work/assembly.log")
export_stage=$(stage_seconds export "$work/assembly.log")
rootfs_stage=$(stage_seconds rootfs "$work/assembly.log")
assembly=$(awk -v a="$disk_stage" -v b="$export_stage" 'BEGIN { printf "%.1f", a + b }')
zst_bytes=$(stat -c %s "$work/assembly/worker.raw.zst")
# Processes (strace's first column), not execve attempts: a PATH search tries several.
launches=$({ grep 'execve("[^"]*\(qemu-system\|supermin\|guestfsd\|libguestfs\)' "$work/exec.trace" || true; } |
  awk '{ print $1 }' | sort -u | wc -l)
# Every program it ran or looked for, by name (a threaded caller's execve result comes on
# a later "resumed" line, so results are not matched).
tools=$(sed -n 's/.*execve("\([^"]*\)".*/\1/p' "$work/exec.trace" | xargs -n1 basename | sort -u | tr '\n' ' ')
kiln_boot_uefi=$(boot_to_login "$work/cold/worker.raw" uefi)
kiln_boot_bios=$(boot_to_login "$work/cold/worker.raw" bios)

printf '\n%-52s %10s\n' "step" "value"
printf '%-52s %10s\n' "kiln cold build to raw (empty kiln cache), s" "$kiln_cold"
printf '%-52s %10s\n' "disk stage from cached rootfs, s" "$disk_stage"
printf '%-52s %10s\n' "exports raw + qcow2 + raw.zst, s" "$export_stage"
printf '%-52s %10s\n' "disk assembly (disk + exports), s" "$assembly"
printf '%-52s %10s\n' "(rootfs recomposition before it, s)" "$rootfs_stage"
printf '%-52s %10s\n' "libguestfs appliance / VM launches per build" "$launches"
echo "  (programs the build ran: $tools)"
printf '%-52s %10s\n' "worker.raw.zst, MB" "$((zst_bytes / 1000000))"
printf '%-52s %10s\n' "kiln boot to login, UEFI (OVMF), s" "$kiln_boot_uefi"
printf '%-52s %10s\n' "kiln boot to login, BIOS (SeaBIOS), s" "$kiln_boot_bios"

if [ "${BENCH_SKIP_MKOSI:-0}" != 1 ]; then
  # mkosi's disk build runs host tools: depmod, cpio for its initrd, bootctl (backports'
  # systemd-boot, matching the backports systemd mkosi 24 needs).
  command -v depmod >/dev/null && command -v cpio >/dev/null ||
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kmod cpio >/dev/null
  if ! command -v bootctl >/dev/null; then
    backports_source
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -t bookworm-backports systemd-boot >/dev/null
  fi
  MKOSI_CONFIG="$root/tests/bench/mkosi-disk" "$root/tests/bench/mkosi_build.sh" --install \
    "$work/mkosi-out" "$work/mkosi-cache" >"$work/mkosi.log" 2>&1 || { tail -40 "$work/mkosi.log"; exit 1; }
  mkosi_cold=$(sed -n 's/^mkosi_seconds=//p' "$work/mkosi.log")
  mkosi_disk=$(ls "$work"/mkosi-out/disk*.raw 2>/dev/null | head -1)
  [ -n "$mkosi_disk" ] || mkosi_disk="$work/mkosi-out/disk"
  # Compressed as kiln writes raw.zst, so the sizes compare like with like.
  zstd -q -T0 -12 --long=27 "$mkosi_disk" -o "$work/mkosi.raw.zst"
  mkosi_zst_bytes=$(stat -c %s "$work/mkosi.raw.zst")
  mkosi_boot=$(boot_to_login "$mkosi_disk" uefi)
  printf '%-52s %10s\n' "mkosi cold build, Format=disk UEFI ($(mkosi --version | head -1)), s" "$mkosi_cold"
  printf '%-52s %10s\n' "mkosi disk as raw.zst (zstd -12 --long=27), MB" "$((mkosi_zst_bytes / 1000000))"
  printf '%-52s %10s\n' "mkosi boot to login, UEFI, s" "$mkosi_boot"
fi

echo
echo "ratios and targets:"
echo "  disk assembly from cached rootfs   ${assembly} s   target <= 60 s"
echo "  appliance launches                 ${launches}   target <= 1"
echo "  raw.zst                            $((zst_bytes / 1000000)) MB   target <= 220 MB"
if [ -n "${mkosi_cold:-}" ]; then
  echo "  kiln cold / mkosi cold (build)     $(ratio "$kiln_cold" "$mkosi_cold")   target <= 0.8"
  echo "  kiln / mkosi raw.zst size          $(ratio "$zst_bytes" "$mkosi_zst_bytes")"
  echo "  kiln / mkosi boot to login (UEFI)  $(ratio "$kiln_boot_uefi" "$mkosi_boot")   target <= 0.8"
fi
