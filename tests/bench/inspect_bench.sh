#!/usr/bin/env bash
# `kiln inspect` time per output format of recipes/worker.yaml, each reading the image, its
# manifest, SBOM and stamp and verifying the whole root against its dm-verity hash. Beside it,
# in the same run, the two other ways to look into a qcow2 without root: converting it to a
# temporary raw file first (qemu-img convert), and libguestfs (guestfish, when installed),
# whose appliance boots under software emulation here. Run after `make`; builds the outputs
# from the kiln cache, or reads an existing build folder given as $KILN_BENCH_IMAGES.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
kiln=${KILN:-$root/build/kiln}
work=$(mktemp -d /var/tmp/kiln-inspect-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT

# shellcheck source=tests/bench/lib.sh
source "$root/tests/bench/lib.sh"

images=${KILN_BENCH_IMAGES:-}
if [[ -z $images ]]; then
  images=$work/out
  "$kiln" build "$root/recipes/worker.yaml" --outputs raw,raw.zst,qcow2,vhd,vmdk,ova,gce,pxe \
    -o "$images" >"$work/build.log" 2>&1 || { cat "$work/build.log"; exit 1; }
fi
name=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["name"])' "$images/manifest.json")

echo "kiln inspect benchmark: $(nproc) cores, $(du -h --apparent-size "$images/$name.raw" | cut -f1) disk"
printf '%-22s %10s %10s\n' "output" "size" "inspect s"
for file in "$name.raw" "$name.raw.zst" "$name.qcow2" "$name.vhd" "$name.vmdk" "$name.ova" \
  "$name.gce.tar.gz" pxe; do
  [[ -e $images/$file ]] || continue
  size=$(du -sh "$images/$file" | cut -f1)
  printf '%-22s %10s %10s\n' "$file" "$size" "$(seconds "$kiln" inspect "$images/$file")"
done

echo
echo "qcow2, other ways to look inside as this user:"
inspect_qcow2=$(seconds "$kiln" inspect "$images/$name.qcow2")
convert=$(seconds qemu-img convert -f qcow2 -O raw "$images/$name.qcow2" "$work/converted.raw")
then_raw=$(seconds "$kiln" inspect "$work/converted.raw")
rm -f "$work/converted.raw"
printf '  %-46s %6s s\n' "kiln inspect (qemu-nbd + libnbd)" "$inspect_qcow2"
printf '  %-46s %6s s (%sx)\n' "qemu-img convert to raw, then kiln inspect" \
  "$(awk -v a="$convert" -v b="$then_raw" 'BEGIN { printf "%.1f", a + b }')" \
  "$(ratio "$(awk -v a="$convert" -v b="$then_raw" 'BEGIN { print a + b }')" "$inspect_qcow2")"
if command -v guestfish >/dev/null; then
  # Reads the manifest only: no verification of the root at all. force_tcg: KVM opens here
  # but its guests hang (see the README's notes on emulation). supermin needs a host kernel
  # (apt-get install linux-image-amd64).
  if guestfs=$(LIBGUESTFS_BACKEND=direct LIBGUESTFS_BACKEND_SETTINGS=force_tcg seconds \
    timeout 300 guestfish --ro -a "$images/$name.qcow2" run : mount /dev/sda1 / : \
    cat /kiln/manifest.json); then
    printf '  %-46s %6s s (%sx)\n' "guestfish: start appliance, read manifest only" "$guestfs" \
      "$(ratio "$guestfs" "$inspect_qcow2")"
  else
    echo "  guestfish failed (see above) - skipped"
  fi
else
  echo "  guestfish not installed (apt-get install libguestfs-tools linux-image-amd64) - skipped"
fi
