#!/usr/bin/env bash
# Builds etcd for the test control plane from the Go module proxy (etcd is not in the
# Kubernetes release or in a Debian suite recent enough for kube-apiserver v1.34).
#   build-etcd.sh OUT_BINARY     env: ETCD_VERSION (default v3.6.5, what kubeadm v1.34 pins)
set -euo pipefail
export PATH=/usr/local/go/bin:$PATH CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-mod=mod
out=$(realpath -m "$1")
version=${ETCD_VERSION:-v3.6.5}
# The version is read whole before it is matched: with pipefail, `etcd --version | grep -q`
# (or `| head -1`) fails whenever etcd is still writing when the reader exits (SIGPIPE).
installed_version() { [[ -x $out ]] && "$out" --version 2>/dev/null | sed -n 1p; }
[[ $(installed_version || true) == "etcd Version: ${version#v}" ]] && exit 0
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
installed_version
