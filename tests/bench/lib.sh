# Helpers shared by the benchmark scripts; they set $work before sourcing this.

# timed FORMAT CMD...: runs CMD quietly and prints its wall-clock seconds with the printf
# FORMAT; shows its log on failure.
timed() {
  local format=$1 start end
  shift
  start=$(date +%s.%N)
  if ! "$@" >"$work/last.log" 2>&1; then
    cat "$work/last.log" >&2
    echo "bench: failed: $*" >&2
    exit 1
  fi
  end=$(date +%s.%N)
  awk -v a="$start" -v b="$end" -v f="$format" 'BEGIN { printf f, b - a }'
}

# seconds CMD...: timed to a tenth of a second, for steps that take seconds or minutes.
seconds() { timed '%.1f' "$@"; }

# stage_seconds STAGE LOG: the seconds kiln build's log gives a stage ("<== disk (5.2 s)").
stage_seconds() { sed -n "s/^<== $1 (\([0-9.]*\) s)$/\1/p" "$2" | tail -1; }

# backports_source: lists bookworm-backports in apt's sources unless some source already does
# (a fresh machine has none), for the peer tools the benches install from it.
backports_source() {
  grep -rqs '^[^#]*bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/ ||
    echo 'deb http://deb.debian.org/debian bookworm-backports main' \
      >/etc/apt/sources.list.d/bookworm-backports.list
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

# boot_to_login DISK FIRMWARE [MACHINE]: seconds from qemu's start to a login prompt on the
# console, under software emulation with one vCPU. FIRMWARE: uefi or bios; MACHINE: amd64
# (default, qemu's PC with OVMF or SeaBIOS) or arm64 (qemu's virt machine, Cortex-A72, AAVMF;
# uefi only). The disk is opened with snapshot=on, so it is left as it was.
boot_to_login() {
  local disk=$1 firmware=$2 machine=${3:-amd64} log="$work/console-$RANDOM.log" qemu args=() start end
  if [ "$machine" = arm64 ]; then
    qemu=qemu-system-aarch64
    cp /usr/share/AAVMF/AAVMF_VARS.fd "$log.vars"
    args=(-machine virt -cpu cortex-a72
          -drive if=pflash,format=raw,readonly=on,file=/usr/share/AAVMF/AAVMF_CODE.fd
          -drive "if=pflash,format=raw,file=$log.vars")
  else
    qemu=qemu-system-x86_64
    if [ "$firmware" = uefi ]; then
      cp /usr/share/OVMF/OVMF_VARS_4M.fd "$log.vars"
      args=(-drive if=pflash,format=raw,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd
            -drive "if=pflash,format=raw,file=$log.vars")
    fi
  fi
  start=$(date +%s.%N)
  "$qemu" -accel tcg -m 2048 -smp 1 -display none -monitor none -serial "file:$log" \
    -drive "file=$disk,format=raw,if=virtio,snapshot=on" -netdev user,id=n0 \
    -device virtio-net-pci,netdev=n0 "${args[@]}" >/dev/null 2>&1 &
  local pid=$!
  for _ in $(seq 1 1200); do
    if grep -aq "login: " "$log" 2>/dev/null; then break; fi
    sleep 0.5
  done
  end=$(date +%s.%N)
  kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true
  grep -aq "login: " "$log" || { echo "bench: $disk did not reach a login prompt" >&2; tail -20 "$log" >&2; exit 1; }
  awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }'
}
