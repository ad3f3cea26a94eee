#!/usr/bin/env bash
# Make sure a one-node Kubernetes cluster (v1.37.2) runs on this machine, for
# the tests that run registries in it: build it from the Go module proxy
# (pinned versions, cached), start what does not run, wait until the node is
# Ready. Idempotent: with the cluster up, a second run takes well under a
# second. Prints the admin kubeconfig's path (stdout's last line); everything
# else goes to stderr.
#
# What runs, each from one multi-call binary built from testbed/kubernetes
# (`kubernetes NAME flags...`), with its own log
# /var/log/ephemeral-registry-testbed-kubernetes-NAME.log:
#   etcd                      http://127.0.0.1:2479 (peer 2480): not etcd's 2379/2380
#   kube-apiserver            https://10.220.0.1:6443 (Node,RBAC)
#   kube-controller-manager   no port, no leader election
#   kube-scheduler            no port, no leader election
#   kubelet                   node ertb-node, https://10.220.0.1:10250, cgroupfs
#                             driver (cgroup v1), pods under the cgroup /ertb-kubepods
#   kube-proxy                nftables mode (its own nft tables, no iptables chain)
# and containerd 2 with its own socket, root, state and config, runc 1.5.3 and
# the CNI plugins 1.10.0.
#
# Addresses, all of them on this machine (no other engine here uses them):
#   10.220.0.1/32   the node: the interface ertb-kube0, a bridge with no port
#                   (this kernel has no dummy interfaces; and not loopback: the
#                   kubelet refuses a loopback node address)
#   10.221.0.0/24   pods: the CNI bridge ertb-kcni0 (gateway 10.221.0.1); a pod
#                   has routes to the node and to the services only, no default
#                   route, and the host forwards nothing from pods elsewhere
#   10.222.0.0/24   services (ClusterIPs): routed locally (`local ... dev lo`)
#                   before anything starts, so that no packet to one leaves by
#                   the default route; kube-proxy sends them on to the pods
#
# Containerd pulls through hosts.toml files under
# /etc/ephemeral-registry-testbed/kubernetes/certs.d: its _default sends every
# registry without a folder of its own to 127.0.0.1:1 (refused), so that the
# node never reaches out; a test that wants the node to pull from a registry
# at a ClusterIP adds certs.d/CLUSTERIP:PORT/hosts.toml. The images the tests
# run in pods (registry:3, busybox, sample:one) and the sandbox image
# (ephemeral-registry-testbed/pause) are copied from the default engine.
#
# testbed/stop.sh kills it all and removes what it made in this host's network.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
begin=$(date +%s.%N)

kubernetes_version=v1.37.2
containerd_module=github.com/containerd/containerd/v2
containerd_version=v2.4.2
cni_module=github.com/containernetworking/plugins
cni_version=v1.10.0
runc_module=github.com/opencontainers/runc@v1.5.3

node_name=ertb-node
node_ip=10.220.0.1
node_link=ertb-kube0
pod_cidr=10.221.0.0/24
pod_gateway=10.221.0.1
pod_bridge=ertb-kcni0
service_cidr=10.222.0.0/24
api_service_ip=10.222.0.1
api=https://$node_ip:6443
etcd_url=http://127.0.0.1:2479
etcd_peer_url=http://127.0.0.1:2480
cgroup_root=ertb-kubepods
prefix=ephemeral-registry-testbed
pause_image=$prefix/pause
pod_images=("$pause_image" "$prefix/registry:3" "$prefix/busybox" "$prefix/sample:one")

data=/var/lib/ephemeral-registry-testbed/kubernetes  # pki, etcd, kubelet, containerd's root
run=/run/ephemeral-registry-testbed/kubernetes      # sockets, pid files, kubeconfigs
etc=/etc/ephemeral-registry-testbed/kubernetes      # containerd's certs.d
pki=$data/pki
conf=$data/config
socket=$run/containerd.sock
kubeconfig=$run/kubeconfig
kubeconfig_norights=$run/kubeconfig-norights
components=(etcd kube-apiserver kube-controller-manager kube-scheduler containerd kubelet kube-proxy)

logfile() { echo "/var/log/ephemeral-registry-testbed-kubernetes-$1.log"; }

# alive NAME: its pid file names a live process of ours (not a zombie, not
# another program that got the pid since).
alive() {
  local pid
  pid=$(cat "$run/$1.pid" 2>/dev/null) || return 1
  [[ "$(ps -o stat= -p "$pid" 2>/dev/null)" == [^Z]* ]] || return 1
  case "$(cat "/proc/$pid/comm" 2>/dev/null)" in
    kubernetes | containerd) return 0 ;;
  esac
  return 1
}

# get PATH: GET from the API server as the admin; the body on stdout.
get() {
  curl -sf --max-time 5 --cacert "$pki/ca.crt" --cert "$pki/admin.crt" --key "$pki/admin.key" "$api$1"
}

# node_ready: the kubelet answers, and the API says the node is Ready (which
# it still says for a while after the kubelet's end).
node_ready() {
  curl -sf --max-time 5 --cacert "$pki/ca.crt" --cert "$pki/admin.crt" --key "$pki/admin.key" \
    "https://$node_ip:10250/healthz" >/dev/null || return 1
  get "/api/v1/nodes/$node_name" 2>/dev/null | python3 -c '
import json, sys
conditions = json.load(sys.stdin).get("status", {}).get("conditions", [])
sys.exit(not any(c["type"] == "Ready" and c["status"] == "True" for c in conditions))'
}

up() {
  for name in "${components[@]}"; do
    alive "$name" || return 1
  done
  [ -f "$kubeconfig" ] && [ -f "$kubeconfig_norights" ] && node_ready
}

if up; then
  echo "$kubeconfig"
  exit 0
fi

# --- Binaries: built once, cached like go_binary's. ---------------------------

# go_binaries DIR VERSION PACKAGE...: `go install` every PACKAGE@VERSION into
# DIR, in one command, unless each is there. Flags in GO_INSTALL_FLAGS.
go_binaries() {
  local dir=$1 version=$2 package missing=()
  shift 2
  for package in "$@"; do
    [ -x "$dir/$(basename "$package")" ] || missing+=("$package@$version")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "testbed: building ${missing[*]}" >&2
    mkdir -p "$dir"
    # shellcheck disable=SC2086  # GO_INSTALL_FLAGS is words
    CGO_ENABLED=0 GOFLAGS=-mod=mod GOBIN="$dir" \
      go install -trimpath -ldflags=-s ${GO_INSTALL_FLAGS:-} "${missing[@]}" >&2
  fi
}

# etcd and the Kubernetes components: one `go build` of testbed/kubernetes,
# again whenever its go.mod, go.sum or main.go change. From nothing, 30 to 40
# min on two cores; from Go's build cache, a link (12 s).
source_hash=$(cd "$here/kubernetes" && cat go.mod go.sum main.go | sha256sum | cut -c1-16)
kube=$cache/bin/kubernetes-$kubernetes_version/$source_hash/kubernetes
if [ ! -x "$kube" ]; then
  echo "testbed: building Kubernetes $kubernetes_version (testbed/kubernetes; from nothing, 30 to 40 min)" >&2
  mkdir -p "$(dirname "$kube")"
  version=${kubernetes_version#v}
  (cd "$here/kubernetes" && CGO_ENABLED=0 go build -trimpath \
    -ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$kubernetes_version -X k8s.io/component-base/version.gitMajor=${version%%.*} -X k8s.io/component-base/version.gitMinor=$(cut -d. -f2 <<<"$version")" \
    -o "$kube.partial" .) >&2
  mv "$kube.partial" "$kube"
fi
containerd_dir=$cache/bin/containerd-$containerd_version
GO_INSTALL_FLAGS="-tags=no_btrfs,no_devmapper,no_zfs" go_binaries "$containerd_dir" "$containerd_version" \
  "$containerd_module/cmd/containerd" "$containerd_module/cmd/ctr" "$containerd_module/cmd/containerd-shim-runc-v2"
cni_dir=$cache/bin/cni-$cni_version
go_binaries "$cni_dir" "$cni_version" \
  "$cni_module/plugins/main/bridge" "$cni_module/plugins/main/loopback" \
  "$cni_module/plugins/ipam/host-local" "$cni_module/plugins/meta/portmap"
runc=$(GO_FLAVOUR=seccomp CGO_ENABLED=1 go_binary "$runc_module" runc -tags seccomp)
ctr() { "$containerd_dir/ctr" --address "$socket" --namespace k8s.io "$@"; }

# The images: built on the default engine (images.sh; a second run is quick).
bash "$here/images.sh"

# --- This host's network. ------------------------------------------------------
# The node's address first, then the services' local route (its source is the
# node's address), and only then anything that could send to either.
if ! ip link show "$node_link" >/dev/null 2>&1; then
  ip link add "$node_link" type bridge
fi
ip addr replace "$node_ip/32" dev "$node_link"
ip link set "$node_link" up
if ! ip route show table local "$service_cidr" | grep -q .; then
  ip route add local "$service_cidr" dev lo table local src "$node_ip"
fi
if ! ip route get "${service_cidr%.*}.10" | grep -q '^local '; then
  echo "testbed: $service_cidr is not routed locally: $(ip route get "${service_cidr%.*}.10")" >&2
  exit 1
fi
# The default engine's FORWARD policy drops what it does not know: let the
# pods reach each other (through a ClusterIP too), and nothing else.
iptables -C FORWARD -s "$pod_cidr" -d "$pod_cidr" -j ACCEPT 2>/dev/null \
  || iptables -I FORWARD -s "$pod_cidr" -d "$pod_cidr" -j ACCEPT

# The pods' cgroup, in every hierarchy (the kubelet wants it there already;
# testbed/stop.sh kills what is left in it). A new cpuset has no CPUs.
for hierarchy in /sys/fs/cgroup/*/; do
  mkdir -p "$hierarchy$cgroup_root"
done
for file in cpuset.cpus cpuset.mems; do
  if [ -f "/sys/fs/cgroup/cpuset/$cgroup_root/$file" ] && [ -z "$(cat "/sys/fs/cgroup/cpuset/$cgroup_root/$file")" ]; then
    cat "/sys/fs/cgroup/cpuset/$file" >"/sys/fs/cgroup/cpuset/$cgroup_root/$file"
  fi
done

# --- Certificates: one CA, kept across restarts. -------------------------------
mkdir -p "$pki" "$conf" "$run" "$etc/certs.d/_default" "$data/cni/net.d" "$data/cni/networks"
umask_before=$(umask)
umask 077
key() {  # key FILE: a P-256 key, unless there is one
  [ -f "$1" ] || openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null
}
if [ ! -f "$pki/ca.crt" ]; then
  echo "testbed: making the cluster's certificates in $pki" >&2
  key "$pki/ca.key"
  openssl req -x509 -new -key "$pki/ca.key" -subj "/CN=ephemeral-registry-testbed kubernetes CA" -days 3650 \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
    -out "$pki/ca.crt" 2>/dev/null
fi
# cert NAME SUBJECT USAGE [SAN]: NAME.crt signed by the CA for NAME.key, unless
# a valid one is there. USAGE: clientAuth or serverAuth.
cert() {
  local name=$1 subject=$2 usage=$3 san=${4:-}
  if [ -f "$pki/$name.crt" ] && openssl verify -CAfile "$pki/ca.crt" "$pki/$name.crt" >/dev/null 2>&1; then
    return
  fi
  key "$pki/$name.key"
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=$usage"
    if [ -n "$san" ]; then echo "subjectAltName=$san"; fi
  } >"$pki/$name.ext"
  openssl req -new -key "$pki/$name.key" -subj "$subject" -out "$pki/$name.csr" 2>/dev/null
  openssl x509 -req -in "$pki/$name.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" \
    -set_serial "0x$(openssl rand -hex 16)" -days 3650 -extfile "$pki/$name.ext" -out "$pki/$name.crt" 2>/dev/null
  rm -f "$pki/$name.csr" "$pki/$name.ext"
}
cert apiserver "/CN=kube-apiserver" serverAuth \
  "IP:$node_ip,IP:$api_service_ip,IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" clientAuth
cert admin "/O=system:masters/CN=ertb-admin" clientAuth
cert norights "/CN=ertb-norights" clientAuth
cert controller-manager "/CN=system:kube-controller-manager" clientAuth
cert scheduler "/CN=system:kube-scheduler" clientAuth
cert kube-proxy "/CN=system:kube-proxy" clientAuth
cert kubelet "/O=system:nodes/CN=system:node:$node_name" clientAuth
cert kubelet-serving "/CN=$node_name" serverAuth "IP:$node_ip,DNS:$node_name"
if [ ! -f "$pki/sa.key" ]; then  # the service accounts' tokens
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$pki/sa.key" 2>/dev/null
  openssl pkey -in "$pki/sa.key" -pubout -out "$pki/sa.pub"
fi
umask "$umask_before"

# put FILE: write stdin to FILE unless FILE holds that already (kube-proxy
# ends when its configuration file changes, even to the same bytes).
put() {
  local file=$1
  cat >"$file.partial"
  if cmp -s "$file.partial" "$file"; then
    rm "$file.partial"
  else
    mv "$file.partial" "$file"
  fi
}

# kubeconfig FILE CERT: a kubeconfig for the user of CERT, with the data in it.
kubeconfig() {
  local file=$1 name=$2
  put "$file" <<YAML
apiVersion: v1
kind: Config
clusters:
- name: ertb
  cluster:
    server: $api
    certificate-authority-data: $(base64 -w0 "$pki/ca.crt")
users:
- name: $name
  user:
    client-certificate-data: $(base64 -w0 "$pki/$name.crt")
    client-key-data: $(base64 -w0 "$pki/$name.key")
contexts:
- name: ertb
  context:
    cluster: ertb
    user: $name
    namespace: default
current-context: ertb
YAML
}
for name in controller-manager scheduler kube-proxy kubelet; do
  (umask 077 && kubeconfig "$conf/$name.kubeconfig" "$name")
done

# --- Configuration files. ------------------------------------------------------
put "$conf/scheduler.yaml" <<YAML
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
clientConnection:
  kubeconfig: $conf/scheduler.kubeconfig
leaderElection:
  leaderElect: false
YAML

# Containerd keeps to its own paths; no NRI (its socket would be everyone's).
# Root here lacks CAP_SYS_RESOURCE: no container gets an OOM score below
# containerd's (the pause container's -998 is refused), nor kube-proxy.
put "$conf/containerd.toml" <<TOML
version = 4
root = '$data/containerd'
state = '$run/containerd'
imports = []
disabled_plugins = ['io.containerd.nri.v1.nri']

[plugins]
  [plugins.'io.containerd.server.v1.grpc']
    address = '$socket'

  [plugins.'io.containerd.server.v1.ttrpc']
    address = '$socket.ttrpc'

  [plugins.'io.containerd.internal.v1.opt']
    path = '$data/containerd-opt'

  [plugins.'io.containerd.cri.v1.images']
    snapshotter = 'overlayfs'

    [plugins.'io.containerd.cri.v1.images'.pinned_images]
      sandbox = 'docker.io/$pause_image:latest'

    [plugins.'io.containerd.cri.v1.images'.registry]
      config_path = '$etc/certs.d'

  [plugins.'io.containerd.cri.v1.runtime']
    netns_mounts_under_state_dir = true
    restrict_oom_score_adj = true

    [plugins.'io.containerd.cri.v1.runtime'.containerd]
      default_runtime_name = 'runc'

      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
        runtime_type = 'io.containerd.runc.v2'

        [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
          BinaryName = '$runc'
          SystemdCgroup = false

    [plugins.'io.containerd.cri.v1.runtime'.cni]
      bin_dirs = ['$cni_dir']
      conf_dir = '$data/cni/net.d'
      max_conf_num = 1
TOML

# Every registry without a folder of its own: refused, on this host.
put "$etc/certs.d/_default/hosts.toml" <<TOML
# testbed/kubernetes.sh: the node pulls from no registry unless a test says
# where (certs.d/HOST:PORT/hosts.toml); never from outside this machine.
server = "http://127.0.0.1:1"
TOML

# Pods: on the bridge, with routes to the node and the services only.
put "$data/cni/net.d/10-ertb.conflist" <<JSON
{
  "cniVersion": "1.0.0",
  "name": "ertb-kube",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$pod_bridge",
      "isGateway": true,
      "isDefaultGateway": false,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$data/cni/networks",
        "ranges": [[{"subnet": "$pod_cidr", "gateway": "$pod_gateway"}]],
        "routes": [{"dst": "$node_ip/32"}, {"dst": "$service_cidr"}]
      }
    },
    {"type": "portmap", "backend": "nftables", "capabilities": {"portMappings": true}}
  ]
}
JSON

# No iptables chain of the kubelet's (the default engine's tables are left
# alone). No eviction, no image garbage collection: the images come from the
# default engine, and a pod whose image is gone could not start again.
put "$conf/kubelet.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $node_ip
port: 10250
readOnlyPort: 0
healthzPort: 0
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: true
  x509:
    clientCAFile: $pki/ca.crt
authorization:
  mode: Webhook
tlsCertFile: $pki/kubelet-serving.crt
tlsPrivateKeyFile: $pki/kubelet-serving.key
makeIPTablesUtilChains: false
cgroupDriver: cgroupfs
cgroupRoot: /$cgroup_root
failCgroupV1: false
failSwapOn: false
containerRuntimeEndpoint: unix://$socket
imageServiceEndpoint: unix://$socket
podCIDR: $pod_cidr
clusterDomain: cluster.local
resolvConf: ""
podLogsDir: $data/pod-logs
evictionHard:
  memory.available: "0%"
  nodefs.available: "0%"
  nodefs.inodesFree: "0%"
  imagefs.available: "0%"
  imagefs.inodesFree: "0%"
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
registerNode: true
YAML

put "$conf/kube-proxy.yaml" <<YAML
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: nftables
clientConnection:
  kubeconfig: $conf/kube-proxy.kubeconfig
hostnameOverride: $node_name
bindAddress: $node_ip
healthzBindAddress: $node_ip:10256
metricsBindAddress: $node_ip:10249
clusterCIDR: $pod_cidr
nodePortAddresses: ["$node_ip/32"]
oomScoreAdj: 0
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
YAML

# --- Start what does not run. --------------------------------------------------

# start NAME COMMAND...: unless NAME is alive, start COMMAND with its own log.
start() {
  local name=$1 log
  shift
  alive "$name" && return
  log=$(logfile "$name")
  echo "testbed: starting $name (log: $log)" >&2
  setsid nohup "$@" >"$log" 2>&1 </dev/null &
  echo $! >"$run/$name.pid"
}

# wait_for WHAT SECONDS LOG COMMAND...: poll COMMAND every 0.1 s.
wait_for() {
  local what=$1 seconds=$2 log=$3
  shift 3
  for _ in $(seq 1 $((seconds * 10))); do
    if "$@" >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.1
  done
  echo "testbed: $what did not come within $seconds s; the end of $log:" >&2
  tail -n 30 "$log" >&2
  exit 1
}

start etcd "$kube" etcd --name ertb --data-dir "$data/etcd" --log-level warn \
  --listen-client-urls "$etcd_url" --advertise-client-urls "$etcd_url" \
  --listen-peer-urls "$etcd_peer_url" --initial-advertise-peer-urls "$etcd_peer_url" \
  --initial-cluster "ertb=$etcd_peer_url"
wait_for etcd 60 "$(logfile etcd)" curl -sf --max-time 2 "$etcd_url/health"

start kube-apiserver "$kube" kube-apiserver \
  --advertise-address="$node_ip" --bind-address="$node_ip" --secure-port=6443 \
  --etcd-servers="$etcd_url" \
  --service-cluster-ip-range="$service_cidr" \
  --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction \
  --allow-privileged=true --profiling=false \
  --client-ca-file="$pki/ca.crt" \
  --tls-cert-file="$pki/apiserver.crt" --tls-private-key-file="$pki/apiserver.key" \
  --kubelet-client-certificate="$pki/apiserver-kubelet-client.crt" \
  --kubelet-client-key="$pki/apiserver-kubelet-client.key" \
  --kubelet-certificate-authority="$pki/ca.crt" \
  --kubelet-preferred-address-types=InternalIP \
  --service-account-issuer=https://kubernetes.default.svc.cluster.local \
  --service-account-key-file="$pki/sa.pub" --service-account-signing-key-file="$pki/sa.key"
wait_for kube-apiserver 120 "$(logfile kube-apiserver)" get /readyz

start kube-controller-manager "$kube" kube-controller-manager \
  --kubeconfig="$conf/controller-manager.kubeconfig" --secure-port=0 --leader-elect=false \
  --use-service-account-credentials=true \
  --service-account-private-key-file="$pki/sa.key" --root-ca-file="$pki/ca.crt" \
  --cluster-signing-cert-file="$pki/ca.crt" --cluster-signing-key-file="$pki/ca.key" \
  --service-cluster-ip-range="$service_cidr" --allocate-node-cidrs=false --profiling=false
start kube-scheduler "$kube" kube-scheduler --config="$conf/scheduler.yaml" --secure-port=0 --profiling=false

# Its shim and runc from the cache, before any other on PATH.
PATH="$containerd_dir:$PATH" start containerd "$containerd_dir/containerd" --config "$conf/containerd.toml"
wait_for containerd 60 "$(logfile containerd)" ctr version

# The pods' images, from the default engine; only those whose image id changed.
record=$data/containerd/testbed-images  # TAG ID lines: what was copied last
present=$(ctr images ls -q 2>/dev/null)
stale=()
ids=()
for tag in "${pod_images[@]}"; do
  id=$(docker image inspect -f '{{.Id}}' "$tag")
  ids+=("$tag $id")
  name=docker.io/$tag
  [[ "$tag" == *:* ]] || name=$name:latest
  if ! grep -qxF "$tag $id" "$record" 2>/dev/null || ! grep -qxF "$name" <<<"$present"; then
    stale+=("$tag")
  fi
done
if [ ${#stale[@]} -gt 0 ]; then
  echo "testbed: copying ${stale[*]} into the node's containerd" >&2
  # (ctr warns of cgroup v1 on every command: its stderr only on failure)
  if ! docker save "${stale[@]}" | ctr images import - >/dev/null 2>"$run/import.log"; then
    cat "$run/import.log" >&2
    exit 1
  fi
  printf '%s\n' "${ids[@]}" >"$record"
fi

start kubelet "$kube" kubelet --config="$conf/kubelet.yaml" --kubeconfig="$conf/kubelet.kubeconfig" \
  --root-dir="$data/kubelet" --hostname-override="$node_name" --node-ip="$node_ip"
start kube-proxy "$kube" kube-proxy --config="$conf/kube-proxy.yaml"

# --- The API's objects the tests expect. ---------------------------------------
# ensure PATH BODY: POST BODY to PATH unless it is there (409).
ensure() {
  local code
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 --cacert "$pki/ca.crt" \
    --cert "$pki/admin.crt" --key "$pki/admin.key" -H 'Content-Type: application/json' \
    -X POST --data "$2" "$api$1")
  case "$code" in
    201 | 409) ;;
    *) echo "testbed: POST $1 answered $code" >&2; exit 1 ;;
  esac
}
# A namespace, a service account and a client-certificate user (ertb-norights,
# kubeconfig-norights) with no rights anywhere: the tests' "forbidden".
ensure /api/v1/namespaces '{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ertb-norights"}}'
ensure /api/v1/namespaces/ertb-norights/serviceaccounts \
  '{"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "ertb-norights"}}'

wait_for "the node $node_name, Ready," 120 "$(logfile kubelet)" node_ready
# Pods in default need its service account, which the controller manager makes.
wait_for "the service account default/default" 60 "$(logfile kube-controller-manager)" \
  get /api/v1/namespaces/default/serviceaccounts/default

kubeconfig "$kubeconfig_norights" norights
kubeconfig "$kubeconfig" admin
chmod 644 "$kubeconfig" "$kubeconfig_norights"
echo "testbed: the cluster is up ($(date +%s.%N | awk -v b="$begin" '{printf "%.1f", $1 - b}') s)" >&2
echo "$kubeconfig"
