#!/usr/bin/env bash
# Make sure a rootless Podman, Podman as most of its users run it, answers on
# its own socket: `podman system service` run by an unprivileged user of its
# own, with that user's storage and runtime directory. Idempotent. Prints its
# address.
#
# What differs from Podman as root (podman.sh): containers run in the user's
# namespace (their root is the user, their other users subordinate ids), and
# published ports are relayed by a process (rootlessport), not NAT rules.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"

user=ephemeral-testbed
state=/run/ephemeral-registry-testbed/podman-rootless
socket=$state/podman.sock
host=unix://$socket
pidfile=$state/service.pid
log=/var/log/ephemeral-registry-testbed-podman-rootless.log

if timeout 5 docker -H "$host" version >/dev/null 2>&1; then
  echo "$host"
  exit 0
fi

if ! command -v podman >/dev/null 2>&1 || ! command -v slirp4netns >/dev/null 2>&1 \
  || ! command -v newuidmap >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq podman slirp4netns uidmap >/dev/null
fi

id -u "$user" >/dev/null 2>&1 || useradd --create-home --shell /usr/sbin/nologin "$user"
# Subordinate ids for the containers' users other than root.
for file in /etc/subuid /etc/subgid; do
  grep -q "^$user:" "$file" 2>/dev/null || echo "$user:400000:65536" >>"$file"
done
# slirp4netns opens the tun device as the user; Debian makes it 0666, this
# kind of machine 0600. Storage is the user's, vfs here (Podman's choice).
[ "$(stat -c %a /dev/net/tun)" = 666 ] || chmod 666 /dev/net/tun

uid=$(id -u "$user")
home=$(getent passwd "$user" | cut -d: -f6)
# The runtime directory, as a login would make it: Podman keeps its run root
# there, and the cleanup that records a container's exit refuses a run root
# longer than 50 characters (a wait then takes 20 s).
runtime=/run/user/$uid
mkdir -p "$state" "$runtime"
chown "$user:" "$state" "$runtime"
chmod 700 "$runtime"
config=$home/.config/containers
runuser -u "$user" -- mkdir -p "$config"
# cgroupfs and file events: there is no systemd user session here.
runuser -u "$user" -- tee "$config/containers.conf" >/dev/null <<CONF
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
podman_registries_conf | runuser -u "$user" -- tee "$config/registries.conf" >/dev/null

remove_stale_pidfile "$pidfile"
if ! [ -f "$pidfile" ]; then
  echo "testbed: starting rootless Podman's API service at $host (log: $log)" >&2
  touch "$log" && chown "$user:" "$log"
  setsid nohup runuser -u "$user" -- env HOME="$home" XDG_RUNTIME_DIR="$runtime" \
    podman system service --time=0 "$host" >"$log" 2>&1 </dev/null &
  echo $! >"$pidfile"
fi
wait_for_engine "$host" "$log"
echo "$host"
