#!/usr/bin/env bash
# Make sure Podman's Docker-compatible API answers on its own socket, beside
# the Docker engines: install Debian's podman, start `podman system service`
# where none runs. Idempotent. Prints its address.
#
# Everything of this Podman is its own: storage, run root, network config and
# containers.conf, so that it touches no other Podman on the machine.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"

state=/run/ephemeral-registry-testbed/podman
socket=$state/podman.sock
host=unix://$socket
data_root=/var/lib/ephemeral-registry-testbed/podman
pidfile=$state/service.pid
log=/var/log/ephemeral-registry-testbed-podman.log

if timeout 5 docker -H "$host" version >/dev/null 2>&1; then
  echo "$host"
  exit 0
fi

if ! command -v podman >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq podman >/dev/null
fi

mkdir -p "$state" "$data_root/storage" "$data_root/networks"
# As root here, runc fails under podman's default limits (1048576), which
# root cannot raise without CAP_SYS_RESOURCE; cgroupfs, as there is no systemd.
cat >"$state/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"

[network]
network_config_dir = "$data_root/networks"
CONF

podman_registries_conf >"$state/registries.conf"

remove_stale_pidfile "$pidfile"
if ! [ -f "$pidfile" ]; then
  echo "testbed: starting Podman's API service at $host (log: $log)" >&2
  CONTAINERS_CONF="$state/containers.conf" CONTAINERS_REGISTRIES_CONF="$state/registries.conf" \
    setsid nohup \
    podman --root "$data_root/storage" --runroot "$state/run" \
    system service --time=0 "$host" >"$log" 2>&1 </dev/null &
  echo $! >"$pidfile"
fi
wait_for_engine "$host" "$log"
echo "$host"
