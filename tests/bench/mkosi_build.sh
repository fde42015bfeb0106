#!/usr/bin/env bash
# Peer benchmark: build the kiln worker package set (Debian trixie, amd64) with mkosi 24.x,
# configured by tests/bench/mkosi/mkosi.conf.
#
#   tests/bench/mkosi_build.sh [--install] OUTDIR CACHEDIR
#
# --install  install mkosi >= 24 from bookworm-backports first if it is missing (needs root;
#            adds the bookworm-backports source if absent). Not part of the timing.
# OUTDIR     receives rootfs.tar (uncompressed, like kiln's rootfs.tar); replaced on each run.
# CACHEDIR   mkosi's incremental image cache (the tree after package installation) and,
#            under CACHEDIR/packages, the apt package cache. Empty: cold build. Reused: warm
#            build (packages are not reinstalled, only the output is produced again).
#
# mkosi's own log goes to stderr. stdout carries exactly one line, the last one:
#   mkosi_seconds=<wall-clock seconds of the mkosi build>
# If the build fails the script exits with mkosi's status and prints no mkosi_seconds line.
# Needs root (mkosi installs packages into the tree as root, no KVM needed).
set -euo pipefail

usage() {
  echo "usage: $0 [--install] OUTDIR CACHEDIR" >&2
  exit 2
}

install=0
args=()
for arg in "$@"; do
  case "$arg" in
    --install) install=1 ;;
    -h|--help) usage ;;
    -*) echo "$0: unknown option: $arg" >&2; usage ;;
    *) args+=("$arg") ;;
  esac
done
[ "${#args[@]}" -eq 2 ] || usage

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
config_dir="${MKOSI_CONFIG:-$here/mkosi}"
outdir="$(realpath -m "${args[0]}")"
cachedir="$(realpath -m "${args[1]}")"

# Major version of the installed mkosi, or 0 when it is absent.
mkosi_major() {
  local v
  v="$(mkosi --version 2>/dev/null | awk '{print $2}')" || true
  echo "${v%%.*}" | grep -E '^[0-9]+$' || echo 0
}

if [ "$install" -eq 1 ] && [ "$(mkosi_major)" -lt 24 ]; then
  # shellcheck source=tests/bench/lib.sh
  source "$here/lib.sh"
  backports_source
  apt-get update >&2
  # mkosi 24 depends on systemd >= 254, so this also moves the host's systemd to
  # bookworm-backports.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -t bookworm-backports mkosi >&2
fi

if [ "$(mkosi_major)" -lt 24 ]; then
  echo "$0: mkosi 24 or newer is required (found: $(mkosi --version 2>/dev/null || echo none));" \
       "run with --install or: apt-get install -t bookworm-backports mkosi" >&2
  exit 1
fi

mkdir -p "$outdir" "$cachedir/packages"

start="$(date +%s.%N)"
status=0
# -f: remove the previous output and build again (-ff would also drop the incremental cache).
# mkosi's stdout is sent to stderr so that mkosi_seconds is the only line on stdout.
mkosi --directory "$config_dir" \
      --output-dir "$outdir" \
      --cache-dir "$cachedir" \
      --package-cache-dir "$cachedir/packages" \
      --force \
      build >&2 || status=$?
end="$(date +%s.%N)"

if [ "$status" -ne 0 ]; then
  echo "$0: mkosi build failed (exit status $status)" >&2
  exit "$status"
fi

awk -v s="$start" -v e="$end" 'BEGIN { printf "mkosi_seconds=%.3f\n", e - s }'
