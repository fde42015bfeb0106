#!/usr/bin/env bash
# `kiln upload azure --blob-only` of recipes/worker.yaml's VHD to Azurite on loopback (the test
# suite's Blob storage), in one run beside the plain page-blob upload a simple client makes:
# every 4 MiB of the VHD written in order, one Put Page each, zeros included. Prints seconds,
# bytes sent, bytes sent / image size and throughput. Loopback and Azurite (Node.js) bound
# both; the ratio of bytes is what carries over to Azure.
# Run after `make test` once (Azurite comes from the suite's build/azurite); builds the image
# from the kiln cache, or reads an existing build folder given as $KILN_BENCH_IMAGES.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
kiln=${KILN:-$root/build/kiln}
azurite=${KILN_AZURITE_DIR:-$root/build/azurite}/node_modules/.bin/azurite-blob
work=$(mktemp -d /var/tmp/kiln-upload-azure-bench.XXXXXX)
azurite_pid=""
trap '[[ -n $azurite_pid ]] && { kill "$azurite_pid"; wait "$azurite_pid" 2>/dev/null; }; rm -rf "$work"' EXIT

# shellcheck source=tests/bench/lib.sh
source "$root/tests/bench/lib.sh"

[[ -x $azurite ]] || { echo "bench: no Azurite at $azurite; run make test once" >&2; exit 1; }
images=${KILN_BENCH_IMAGES:-}
if [[ -z $images ]]; then
  images=$work/out
  "$kiln" build "$root/recipes/worker.yaml" --outputs vhd -o "$images" >"$work/build.log" 2>&1 ||
    { cat "$work/build.log"; exit 1; }
fi
name=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["name"])' "$images/manifest.json")
vhd=$images/$name.vhd
size=$(stat -c %s "$vhd")

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
key=$(head -c 64 /dev/urandom | base64 -w0)
AZURITE_ACCOUNTS="bench:$key" "$azurite" --blobHost 127.0.0.1 --blobPort "$port" \
  --location "$work/azurite" --silent --disableTelemetry >"$work/azurite.log" 2>&1 &
azurite_pid=$!
for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.2; done

export AZURE_STORAGE_ACCOUNT=bench AZURE_STORAGE_KEY=$key KILN_CACHE=$work/cache
endpoint=http://127.0.0.1:$port/bench
kiln_s=$(seconds bash -c '"$1" upload azure "$2" --name kiln --container bench --blob-only \
  --blob-endpoint "$3" --json >"$4"' _ "$kiln" "$images" "$endpoint" "$work/result.json")
sent=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["bytesSent"])' "$work/result.json")

# The plain upload: SharedKey-signed Put Page of every 4 MiB in order (Python's standard
# library; the key comes from the environment).
cat >"$work/plain.py" <<'PY'
import base64, hashlib, hmac, os, sys, time, urllib.request
endpoint, path, size = sys.argv[1], sys.argv[2], os.path.getsize(sys.argv[3])
key = base64.b64decode(os.environ["AZURE_STORAGE_KEY"])
def send(method, query, headers, body=b""):
    headers = dict(headers, **{"x-ms-date": time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime()),
                               "x-ms-version": "2021-08-06"})
    headers["Content-Type"] = "application/octet-stream"
    signed = "\n".join([method, "", "", str(len(body)) if body else "", "",
                        headers["Content-Type"], "", "", "", "", "", ""])
    signed += "\n" + "".join("%s:%s\n" % (k, headers[k]) for k in sorted(headers) if k.startswith("x-ms-"))
    signed += "/bench/bench/bench/plain.vhd" + "".join("\n%s:%s" % q for q in sorted(query))
    headers["Authorization"] = "SharedKey bench:" + base64.b64encode(
        hmac.new(key, signed.encode(), hashlib.sha256).digest()).decode()
    url = endpoint + "/bench/plain.vhd" + ("?" + "&".join("%s=%s" % q for q in query) if query else "")
    urllib.request.urlopen(urllib.request.Request(url, body, headers, method=method)).read()
send("PUT", [], {"x-ms-blob-type": "PageBlob", "x-ms-blob-content-length": str(size)})
with open(sys.argv[3], "rb") as image:
    for offset in range(0, size, 4 << 20):
        chunk = image.read(4 << 20)
        send("PUT", [("comp", "page")], {"x-ms-page-write": "update",
             "x-ms-range": "bytes=%d-%d" % (offset, offset + len(chunk) - 1)}, chunk)
PY
plain_s=$(seconds python3 "$work/plain.py" "$endpoint" /bench/plain.vhd "$vhd")

mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }
echo "upload benchmark: $(nproc) cores, $name.vhd $(mib "$size") MiB, Azurite on loopback"
printf '%-34s %9s %12s %10s %12s\n' "" "seconds" "MiB sent" "of image" "MiB/s sent"
printf '%-34s %9s %12s %10s %12s\n' "kiln upload azure (data pages)" "$kiln_s" "$(mib "$sent")" \
  "$(ratio "$sent" "$size")" "$(awk -v b="$sent" -v s="$kiln_s" 'BEGIN { printf "%.1f", b / 1048576 / s }')"
printf '%-34s %9s %12s %10s %12s\n' "plain page blob upload (all pages)" "$plain_s" "$(mib "$size")" \
  "1.00" "$(awk -v b="$size" -v s="$plain_s" 'BEGIN { printf "%.1f", b / 1048576 / s }')"
echo "kiln / plain, seconds: $(ratio "$kiln_s" "$plain_s")"
