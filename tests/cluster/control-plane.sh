#!/usr/bin/env bash
# A real, kubeadm-initialised control plane on loopback for the [cluster] tests, set up the
# way Kamaji sets up a Tenant Control Plane: etcd, kube-apiserver and kube-controller-manager
# (with bootstrapsigner and tokencleaner) as plain processes, then kubeadm's init phases for
# certificates, kubeconfigs, upload-config and bootstrap-token.
#
#   control-plane.sh up STATE_DIR BIN_DIR     BIN_DIR: kubeadm, kube-apiserver,
#                                             kube-controller-manager (from `kiln binaries`), etcd
#   control-plane.sh upgrade STATE_DIR BIN_DIR  the same cluster (etcd, certificates, objects)
#                                             on newer binaries, as a Kamaji TCP upgrade does
#   control-plane.sh down STATE_DIR
#
# `up` writes STATE_DIR/env (ADMIN_KUBECONFIG, API_URL, GUEST_API_URL, ...). The cluster
# advertises 10.0.2.2, which is the host's loopback as seen from a qemu guest on user
# networking (in production: the TCP's load-balancer address); the host itself uses 127.0.0.1.
set -euo pipefail
command=${1:?usage: control-plane.sh up|upgrade|down STATE_DIR [BIN_DIR]}
state=$(realpath -m "${2:?STATE_DIR missing}")
advertise=${CP_ADVERTISE:-10.0.2.2}
api_port=${CP_API_PORT:-26443}
etcd_port=${CP_ETCD_PORT:-22379}
kcm_port=${CP_KCM_PORT:-20257}
timeout=${CP_TIMEOUT:-180}
lo=127.0.0.1
pki=$state/pki kc=$state/kubeconfig run=$state/run logs=$state/logs

stop() {
  for name in "$@"; do
    [[ -s $run/$name.pid ]] || continue
    pid=$(cat "$run/$name.pid")
    if [[ $(readlink "/proc/$pid/exe" 2>/dev/null) == *"/$name"* ]]; then
      kill "$pid" 2>/dev/null || true
      # A stopped process may linger as a zombie until it is reaped: that counts as gone.
      for _ in $(seq 100); do
        [[ -d /proc/$pid && $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) != Z ]] || break
        sleep 0.1
      done
      kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$run/$name.pid"
  done
}
stop_all() { stop kube-controller-manager kube-apiserver etcd; }

if [[ $command == down ]]; then
  stop_all
  exit 0
fi
bin=$(realpath "${3:?BIN_DIR missing}")
needed=(kubeadm kube-apiserver kube-controller-manager)
[[ $command == upgrade ]] || needed+=(etcd)  # an upgrade keeps etcd running as it is
for b in "${needed[@]}"; do
  [[ -x $bin/$b ]] || { echo "control-plane.sh: $bin/$b is missing" >&2; exit 1; }
done
start_time=$SECONDS
say() { echo "control-plane [$((SECONDS - start_time))s] $*" >&2; }
fail() { say "ERROR: $*"; for f in "$logs"/*.log; do echo "--- $f" >&2; tail -15 "$f" >&2; done; stop_all; exit 1; }
kubeadm() { "$bin/kubeadm" "$@" >>"$logs/kubeadm.log" 2>&1 || fail "kubeadm $* failed"; }
version=$("$bin/kubeadm" version -o short)

# Command lines from the static Pod manifests kubeadm renders (dry-run keeps /etc clean).
render_command_lines() {
  rm -rf "$state/manifests" && mkdir -p "$state/manifests"
  KUBEADM_INIT_DRYRUN_DIR=$state/manifests kubeadm init phase control-plane all --config "$state/kubeadm.yaml" --dry-run
  KUBEADM_INIT_DRYRUN_DIR=$state/manifests kubeadm init phase etcd local --config "$state/kubeadm.yaml" --dry-run
  for c in etcd kube-apiserver kube-controller-manager; do
    awk '/^ *- command:/{on=1; next} on && /^ *image:/{exit} on {sub(/^ *- /,""); print}' "$state/manifests/$c.yaml" |
      sed -e "s#^'\(.*\)'\$#\1#" -e 's#^"\(.*\)"$#\1#' -e "s#/etc/kubernetes/\([a-z-]*\)\.conf#$kc/\1.host.conf#g" |
      tail -n +2 >"$run/$c.args"
    ! grep -q /etc/kubernetes "$run/$c.args" || fail "$c still refers to /etc/kubernetes"
  done
}
start() {
  mapfile -t args <"$run/$1.args"
  setsid "$bin/$1" "${args[@]}" >>"$logs/$1.log" 2>&1 </dev/null &
  echo $! >"$run/$1.pid"
}
wait_for() {  # what, command...
  local what=$1 deadline=$((SECONDS + timeout))
  shift
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || fail "timed out waiting for $what"
    sleep 0.5
  done
  say "$what"
}
super() { curl -sS --fail --max-time 5 --cacert "$pki/ca.crt" -E "$state/super-admin.pem" "$@"; }
start_api_server() {
  start kube-apiserver
  wait_for "kube-apiserver $version is ready" sh -c "[ \"\$(curl -s --max-time 3 --cacert $pki/ca.crt -E $state/super-admin.pem https://$lo:$api_port/readyz)\" = ok ]"
}
start_controllers() {
  start kube-controller-manager
  wait_for "kube-controller-manager is healthy" sh -c "[ \"\$(curl -sk --max-time 3 https://$lo:$kcm_port/healthz)\" = ok ]"
}
upload_cluster_config() {
  kubeadm init phase upload-config all --config "$state/kubeadm-cluster.yaml" --kubeconfig "$kc/admin.host.conf"
}

if [[ $command == upgrade ]]; then
  # The order kubeadm upgrade (and Kamaji) keeps: the API server first, then the controllers,
  # then the cluster configuration nodes read, so that no kubelet is ever newer than its server.
  [[ -s $state/env ]] || { echo "control-plane.sh: no control plane in $state to upgrade" >&2; exit 1; }
  sed -i "s/^kubernetesVersion: .*/kubernetesVersion: $version/" "$state/kubeadm.yaml" "$state/kubeadm-cluster.yaml"
  render_command_lines
  stop kube-controller-manager kube-apiserver
  start_api_server
  start_controllers
  upload_cluster_config
  sed -i "s/^KUBERNETES_VERSION=.*/KUBERNETES_VERSION=$version/" "$state/env"
  say "control plane upgraded to $version"
  exit 0
fi
[[ $command == up ]] || { echo "control-plane.sh: unknown command '$command'" >&2; exit 1; }

stop_all
# Another control plane (say, one a killed test left running) would hold the ports: say so
# now rather than time out waiting for a server that cannot bind.
for port in "$api_port" "$etcd_port" "$kcm_port"; do
  if (exec 3<>"/dev/tcp/$lo/$port") 2>/dev/null; then
    echo "control-plane.sh: $lo:$port is already in use (another control plane still running?)" >&2
    exit 1
  fi
done
rm -rf "$state"
mkdir -p "$pki" "$kc" "$run" "$logs" "$state/manifests"
chmod 700 "$state"

cat >"$state/kubeadm.yaml" <<YAML
apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
localAPIEndpoint:
  advertiseAddress: $advertise
  bindPort: $api_port
nodeRegistration:
  name: kiln-test-control-plane
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: $version
clusterName: kiln-test
controlPlaneEndpoint: $advertise:$api_port
certificatesDir: $pki
networking:
  serviceSubnet: 10.96.0.0/12
  podSubnet: 10.244.0.0/16
apiServer:
  certSANs: [$lo, $advertise, localhost]
  extraArgs:
  - {name: bind-address, value: "$lo"}
  - {name: etcd-servers, value: "https://$lo:$etcd_port"}
controllerManager:
  extraArgs:
  - {name: bind-address, value: "$lo"}
  - {name: secure-port, value: "$kcm_port"}
  - {name: controllers, value: "*,bootstrapsigner,tokencleaner"}
etcd:
  local:
    dataDir: $state/etcd
    extraArgs:
    - {name: listen-client-urls, value: "https://$lo:$etcd_port"}
    - {name: advertise-client-urls, value: "https://$lo:$etcd_port"}
    - {name: listen-peer-urls, value: "https://$lo:$((etcd_port + 1))"}
    - {name: initial-advertise-peer-urls, value: "https://$lo:$((etcd_port + 1))"}
    - {name: initial-cluster, value: "kiln-test-control-plane=https://$lo:$((etcd_port + 1))"}
    - {name: listen-metrics-urls, value: "http://$lo:$((etcd_port + 2))"}
YAML
# What joining nodes read back (kube-system/kubeadm-config) must carry node paths.
sed -e "s#^certificatesDir: .*#certificatesDir: /etc/kubernetes/pki#" \
    -e "s#^    dataDir: .*#    dataDir: /var/lib/etcd#" "$state/kubeadm.yaml" >"$state/kubeadm-cluster.yaml"

kubeadm init phase certs all --config "$state/kubeadm.yaml"
for k in admin super-admin controller-manager; do
  kubeadm init phase kubeconfig "$k" --config "$state/kubeadm.yaml" --kubeconfig-dir "$kc"
  # kubeadm writes the advertised (guest-side) address; the host talks to loopback.
  sed "s#server: https://$advertise:$api_port#server: https://$lo:$api_port#" "$kc/$k.conf" >"$kc/$k.host.conf"
  chmod 600 "$kc/$k.host.conf"
done
render_command_lines
say "certificates, kubeconfigs and command lines ready"

grep client-certificate-data "$kc/super-admin.conf" | awk '{print $2}' | base64 -d >"$state/super-admin.pem"
grep client-key-data "$kc/super-admin.conf" | awk '{print $2}' | base64 -d >>"$state/super-admin.pem"
chmod 600 "$state/super-admin.pem"

start etcd
wait_for "etcd is healthy" sh -c "curl -s http://$lo:$((etcd_port + 2))/health | grep -q '\"health\":\"true\"'"
start_api_server
# kubeadm init binds admin.conf's group to cluster-admin only for its default paths.
super -o /dev/null -X POST -H 'Content-Type: application/json' \
  "https://$lo:$api_port/apis/rbac.authorization.k8s.io/v1/clusterrolebindings" -d '{
  "apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRoleBinding",
  "metadata":{"name":"kubeadm:cluster-admins"},
  "roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"cluster-admin"},
  "subjects":[{"apiGroup":"rbac.authorization.k8s.io","kind":"Group","name":"kubeadm:cluster-admins"}]}' ||
  fail "cannot bind kubeadm:cluster-admins"
start_controllers

upload_cluster_config
kubeadm init phase bootstrap-token --config "$state/kubeadm-cluster.yaml" --kubeconfig "$kc/admin.host.conf"
# bootstrap-token copies the client's (loopback) server into cluster-info; nodes need the
# advertised address. bootstrapsigner re-signs the updated content.
cluster_info=https://$lo:$api_port/api/v1/namespaces/kube-public/configmaps/cluster-info
super "$cluster_info" | python3 -c '
import json, sys
cm = json.load(sys.stdin)
print(json.dumps({"data": {"kubeconfig": cm["data"]["kubeconfig"].replace(sys.argv[1], sys.argv[2])}}))' \
  "server: https://$lo:$api_port" "server: https://$advertise:$api_port" |
  super -o /dev/null -X PATCH -H 'Content-Type: application/merge-patch+json' --data-binary @- "$cluster_info" ||
  fail "cannot point cluster-info at $advertise"
say "control plane ready"

cat >"$state/env" <<ENV
ADMIN_KUBECONFIG=$kc/admin.host.conf
API_URL=https://$lo:$api_port
GUEST_API_URL=https://$advertise:$api_port
CA_CERT=$pki/ca.crt
KUBERNETES_VERSION=$version
ENV
