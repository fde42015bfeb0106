#!/usr/bin/env bash
# `kiln upload aws` of recipes/worker.yaml's raw image to moto's server mode on loopback (the
# test suite's local AWS), in one run beside the plain upload `aws s3 cp` would make: the
# whole file as one S3 object, sent by curl with the same SigV4 signing (no AWS CLI is
# installed here). Prints seconds, bytes sent, bytes sent / image size and throughput.
# Loopback and moto (Python) bound both; the ratio of bytes is what carries over to AWS.
# Run after `make` (moto comes from the suite's build/moto); builds the image from the kiln
# cache, or reads an existing build folder given as $KILN_BENCH_IMAGES.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
kiln=${KILN:-$root/build/kiln}
moto=${KILN_MOTO_DIR:-$root/build/moto}
work=$(mktemp -d /var/tmp/kiln-upload-bench.XXXXXX)
moto_pid=""
trap '[[ -n $moto_pid ]] && kill "$moto_pid"; rm -rf "$work"' EXIT

# shellcheck source=tests/bench/lib.sh
source "$root/tests/bench/lib.sh"

[[ -x $moto/bin/moto_server ]] || { echo "bench: no moto in $moto; run make test once" >&2; exit 1; }
images=${KILN_BENCH_IMAGES:-}
if [[ -z $images ]]; then
  images=$work/out
  "$kiln" build "$root/recipes/worker.yaml" --outputs raw -o "$images" >"$work/build.log" 2>&1 ||
    { cat "$work/build.log"; exit 1; }
fi
name=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["name"])' "$images/manifest.json")
raw=$images/$name.raw
size=$(stat -c %s "$raw")

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$moto/bin/moto_server" -H 127.0.0.1 -p "$port" >"$work/moto.log" 2>&1 &
moto_pid=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/moto-api/data.json" >/dev/null && break; sleep 0.2; done

export AWS_ACCESS_KEY_ID=AKIAKILNBENCH AWS_SECRET_ACCESS_KEY=bench-secret AWS_REGION=eu-west-1
export AWS_ENDPOINT_URL=http://127.0.0.1:$port KILN_CACHE=$work/cache
kiln_s=$(seconds bash -c '"$1" upload aws "$2" --name "$3" --json >"$4"' _ "$kiln" "$images" \
  "kiln-bench-$RANDOM" "$work/result.json")
sent=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["bytesSent"])' "$work/result.json")

# `aws s3 cp`'s equivalent: the whole raw file as one object (sparse holes are sent as zeros).
# The key pair goes to curl in a private config file, not its arguments.
(umask 077; printf 'user = "%s:%s"\n' "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" >"$work/curl.conf")
# In us-east-1, where a bucket needs no location constraint (loopback either way).
curl -sf -K "$work/curl.conf" --aws-sigv4 "aws:amz:us-east-1:s3" -X PUT \
  "http://127.0.0.1:$port/kiln-bench" >/dev/null
plain_s=$(seconds curl -sf -K "$work/curl.conf" --aws-sigv4 "aws:amz:us-east-1:s3" -H "Expect:" \
  -T "$raw" "http://127.0.0.1:$port/kiln-bench/$name.raw")

mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }
echo "upload benchmark: $(nproc) cores, $name.raw $(mib "$size") MiB, moto on loopback"
printf '%-34s %9s %12s %10s %12s\n' "" "seconds" "MiB sent" "of image" "MiB/s sent"
printf '%-34s %9s %12s %10s %12s\n' "kiln upload aws (EBS direct)" "$kiln_s" "$(mib "$sent")" \
  "$(ratio "$sent" "$size")" "$(awk -v b="$sent" -v s="$kiln_s" 'BEGIN { printf "%.1f", b / 1048576 / s }')"
printf '%-34s %9s %12s %10s %12s\n' "plain upload (as aws s3 cp)" "$plain_s" "$(mib "$size")" \
  "1.00" "$(awk -v b="$size" -v s="$plain_s" 'BEGIN { printf "%.1f", b / 1048576 / s }')"
echo "kiln / plain, seconds: $(ratio "$kiln_s" "$plain_s")"
