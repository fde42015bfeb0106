#!/usr/bin/env bash
# Builds etcd for the test control plane from the Go module proxy (etcd is not in the
# Kubernetes release or in a Debian suite recent enough for kube-apiserver v1.34).
#   build-etcd.sh OUT_BINARY     env: ETCD_VERSION (default v3.6.5, what kubeadm v1.34 pins)
set -euo pipefail
export PATH=/usr/local/go/bin:$PATH CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-mod=mod
out=$(realpath -m "$1")
version=${ETCD_VERSION:-v3.6.5}
[[ -x $out ]] && "$out" --version | grep -q "etcd Version: ${version#v}" && exit 0
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
go mod init kiln.local/etcd-build >/dev/null 2>&1
go mod edit -go=1.24.0
printf '//go:build tools\n\npackage tools\n\nimport _ "go.etcd.io/etcd/server/v3/etcdmain"\n' >tools.go
go get "go.etcd.io/etcd/server/v3@$version" >/dev/null 2>&1
go mod tidy >/dev/null 2>&1
go build -trimpath -ldflags "-s -w -buildid=" -o "$out.tmp" go.etcd.io/etcd/server/v3
mv "$out.tmp" "$out"
"$out" --version | head -1
