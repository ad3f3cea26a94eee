#!/usr/bin/env bash
# Make sure a current Docker engine (29, containerd image store) answers on its
# own socket, beside Debian's 20.10: build it from the Go module proxy (pinned
# versions, cached), start it where none runs. Idempotent. Prints its address.
#
# It has its own socket, data root, exec root, pid file, address pool and
# default bridge (e29br0), and leaves iptables to the first engine ("iptables":
# false), so that the two do not fight over the same chains. Not "bridge":
# "none": with it, dockerd deletes the interface docker0 at start, which is the
# first engine's default bridge, and `docker run` there fails from then on. And
# "live-restore": on every start after the first, dockerd deletes its stale
# "bridge" network and then, where default-address-pools is set and live-restore
# is not, the interface named docker0 whatever its own bridge is called (moby's
# configureNetworking); seen here after the engines were killed and set up again.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"

moby=github.com/moby/moby/v2
moby_version=v2.0.0-beta.24  # Docker 29
runc_module=github.com/opencontainers/runc@v1.5.3  # knows the time namespace; Debian's 1.1 does not
pool=10.201.0.0/16
bridge=e29br0
bridge_address=10.233.0.1/24

state=/run/ephemeral-registry-testbed/docker29
socket=$state/docker.sock
host=unix://$socket
data_root=/var/lib/ephemeral-registry-testbed/docker29
pidfile=$state/docker.pid
log=/var/log/ephemeral-registry-testbed-docker29.log

if timeout 5 docker -H "$host" info >/dev/null 2>&1; then
  echo "$host"
  exit 0
fi

if ! command -v containerd >/dev/null 2>&1 || ! [ -f /usr/include/seccomp.h ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq containerd libseccomp-dev >/dev/null
fi
dockerd=$(go_binary "$moby/cmd/dockerd@$moby_version" dockerd)
go_binary "$moby/cmd/docker-proxy@$moby_version" docker-proxy >/dev/null
runc=$(GO_FLAVOUR=seccomp CGO_ENABLED=1 go_binary "$runc_module" runc -tags seccomp)

if ! ip link show "$bridge" >/dev/null 2>&1; then
  ip link add "$bridge" type bridge
  ip addr add "$bridge_address" dev "$bridge"
fi
ip link set "$bridge" up

mkdir -p "$state" "$data_root"
cat >"$state/daemon.json" <<JSON
{
  "bridge": "$bridge",
  "iptables": false,
  "ip6tables": false,
  "default-address-pools": [{"base": "$pool", "size": 24}],
  "live-restore": true,
  "runtimes": {"testbed-runc": {"path": "$runc"}},
  "default-runtime": "testbed-runc"
}
JSON

# With iptables off, this engine adds no rule of its own, and the first
# engine's FORWARD policy drops bridged traffic: let this engine's pool through,
# so that crane reaches the registry on their network.
iptables -C FORWARD -s "$pool" -d "$pool" -j ACCEPT 2>/dev/null \
  || iptables -I FORWARD -s "$pool" -d "$pool" -j ACCEPT

remove_stale_pidfile "$pidfile"
remove_stale_pidfile "$state/exec/containerd/containerd.pid"
if ! [ -f "$pidfile" ]; then
  echo "testbed: starting Docker 29 at $host (log: $log)" >&2
  # Its own docker-proxy first on PATH: Debian's is 20.10's.
  PATH="$(dirname "$dockerd"):$PATH" setsid nohup "$dockerd" \
    --config-file "$state/daemon.json" \
    --host "$host" \
    --data-root "$data_root" \
    --exec-root "$state/exec" \
    --pidfile "$pidfile" \
    >"$log" 2>&1 </dev/null &
fi
wait_for_engine "$host" "$log"
echo "$host"
