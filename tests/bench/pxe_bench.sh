#!/usr/bin/env bash
# Netboot figures for recipes/worker.yaml: initrd size, and boot-to-login time of a diskless
# node that fetches its root from `kiln serve` (through qemu's iPXE ROM and boot.ipxe, and
# with the kernel handed over directly), beside the same image booted from its raw disk in
# the same run. Run as root after `make`; uses the kiln cache as it is. Software emulation.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
kiln=${KILN:-$root/build/kiln}
work=$(mktemp -d /var/tmp/kiln-pxe-bench.XXXXXX)
trap 'pkill -f "$work" 2>/dev/null || true; rm -rf "$work"' EXIT

# shellcheck source=tests/bench/lib.sh
source "$root/tests/bench/lib.sh"

# boot_until LOG PATTERN QEMU-ARGS...: seconds from qemu's start until PATTERN is on the
# console (the guest is then stopped).
boot_until() {
  local log=$1 pattern=$2 start end
  shift 2
  start=$(date +%s.%N)
  qemu-system-x86_64 -accel tcg -m 3072 -smp 1 -display none -monitor none -no-reboot \
    -serial "file:$log" "$@" >/dev/null 2>&1 &
  local pid=$!
  for _ in $(seq 1 1800); do
    if grep -aqE "$pattern" "$log" 2>/dev/null; then break; fi
    sleep 0.5
  done
  end=$(date +%s.%N)
  kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true
  grep -aqE "$pattern" "$log" || { echo "bench: no '$pattern' in $log" >&2; tail -20 "$log" >&2; exit 1; }
  awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }'
}

echo "kiln PXE benchmark: $(nproc) cores, software emulation for boots"
"$kiln" build "$root/recipes/worker.yaml" --outputs raw,pxe -o "$work/out" >"$work/build.log" 2>&1 ||
  { cat "$work/build.log"; exit 1; }
pxe=$work/out/pxe
"$kiln" serve "$work/out" --listen 127.0.0.1:0 >"$work/serve.out" 2>"$work/serve.log" &
for _ in $(seq 1 50); do grep -q "http://" "$work/serve.out" && break; sleep 0.1; done
port=$(sed -n 's|.*http://127.0.0.1:\([0-9]*\)/.*|\1|p' "$work/serve.out")
net=(-netdev "user,id=n0" -device virtio-net-pci,netdev=n0)
base=http://10.0.2.2:$port/pxe
# A site menu naming the folder, as qemu's iPXE (older than ${cwduri}) needs.
printf '#!ipxe\nset kiln-base %s\nchain ${kiln-base}/boot.ipxe\n' "$base" >"$work/out/menu.ipxe"

cmdline=$(sed -n 's/^kernel vmlinuz //p' "$pxe/boot.ipxe" |
  sed "s|\${kiln-base}|$base|; s| \${kiln-args}||")
direct_verified=$(boot_until "$work/direct-verified.log" "root image verified" "${net[@]}" \
  -kernel "$pxe/vmlinuz" -initrd "$pxe/initrd.img" -append "$cmdline")
direct_login=$(boot_until "$work/direct.log" "login: " "${net[@]}" \
  -kernel "$pxe/vmlinuz" -initrd "$pxe/initrd.img" -append "$cmdline")
ipxe_login=$(boot_until "$work/ipxe.log" "login: " -boot n -netdev \
  "user,id=n0,bootfile=http://10.0.2.2:$port/menu.ipxe" -device virtio-net-pci,netdev=n0)
disk_login=$(boot_until "$work/disk.log" "login: " "${net[@]}" \
  -drive "file=$work/out/worker.raw,format=raw,if=virtio,snapshot=on")

initrd_bytes=$(stat -c %s "$pxe/initrd.img")
printf '%-56s %10s\n' "initrd.img, MB (target <= 40)" "$(awk -v b="$initrd_bytes" 'BEGIN { printf "%.1f", b / 1e6 }')"
printf '%-56s %10s\n' "root.img (EROFS + verity tree), MB" "$(awk -v b="$(stat -c %s "$pxe/root.img")" 'BEGIN { printf "%.1f", b / 1e6 }')"
printf '%-56s %10s\n' "netboot, kernel handed over: root fetched + verified, s" "$direct_verified"
printf '%-56s %10s\n' "netboot, kernel handed over: boot to login, s" "$direct_login"
printf '%-56s %10s\n' "netboot through iPXE + boot.ipxe: boot to login, s" "$ipxe_login"
printf '%-56s %10s\n' "same image from its raw disk (SeaBIOS): boot to login, s" "$disk_login"
echo "ratios:"
echo "  netboot (kernel handed over) / disk boot   $(ratio "$direct_login" "$disk_login")"
echo "  netboot through iPXE / disk boot           $(ratio "$ipxe_login" "$disk_login")"
