#!/usr/bin/env bash
# Make sure an engine shaped like Docker Desktop's answers on its own socket:
# Debian's dockerd 20.10 (the default engine's binary) in a network namespace
# and a mount namespace of its own, as Desktop, colima or OrbStack run theirs
# in a VM. Its loopback and networks are not this host's, and its /tmp is not
# this host's /tmp: a bind mount of a host temporary file fails, as it does
# there. Idempotent. Prints its address.
#
# Usage: desktop.sh VARIANT
#   forwarded  ports its containers publish on 127.0.0.1 answer on this host's
#              127.0.0.1 at the same port, relayed by desktop_forwarder.py (as
#              Desktop's port forwarding does)
#   isolated   no forwarder: its published ports are not reachable from here
#
# Nothing connects the namespace to this host's networks, and its subnet is
# routed locally on this host before anything starts: a packet sent from here
# to one of its container addresses stays on this machine.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"

variant=${1:-}
case "$variant" in
  forwarded)
    netns=ertb-desktop-fwd
    subnet=10.210.0.0/16
    bip=10.210.255.1/24
    port_range="20000 24999"
    ;;
  isolated)
    netns=ertb-desktop-iso
    subnet=10.211.0.0/16
    bip=10.211.255.1/24
    port_range="25000 29999"
    ;;
  *)
    echo "usage: testbed/desktop.sh forwarded|isolated" >&2
    exit 2
    ;;
esac

state=/run/ephemeral-registry-testbed/desktop-$variant
socket=$state/docker.sock
host=unix://$socket
data_root=/var/lib/ephemeral-registry-testbed/desktop-$variant
pidfile=$state/docker.pid
log=/var/log/ephemeral-registry-testbed-desktop-$variant.log
forwarder_pidfile=$state/forwarder.pid
forwarder_log=/var/log/ephemeral-registry-testbed-desktop-$variant-forwarder.log

# forwarder_runs: whether the pid in the forwarder's pid file is a live forwarder.
forwarder_runs() {
  local pid
  pid=$(cat "$forwarder_pidfile" 2>/dev/null) || return 1
  [ -n "$pid" ] && grep -qa desktop_forwarder.py "/proc/$pid/cmdline" 2>/dev/null
}

# start_forwarder: start the port forwarder where none runs; it writes its pid
# file once it follows the engine's events.
start_forwarder() {
  [ "$variant" = forwarded ] || return 0
  forwarder_runs && return 0
  echo "testbed: starting the port forwarder of $host (log: $forwarder_log)" >&2
  rm -f "$forwarder_pidfile"
  setsid nohup /usr/bin/python3 "$here/desktop_forwarder.py" \
    --netns "/run/netns/$netns" --engine "$socket" --pidfile "$forwarder_pidfile" \
    >>"$forwarder_log" 2>&1 </dev/null &
  local pid=$!
  for _ in $(seq 1 100); do
    forwarder_runs && return 0
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  kill "$pid" 2>/dev/null || true
  echo "testbed: the port forwarder did not start; the end of $forwarder_log:" >&2
  tail -n 20 "$forwarder_log" >&2
  return 1
}

if timeout 5 docker -H "$host" info >/dev/null 2>&1; then
  start_forwarder
  echo "$host"
  exit 0
fi

# Before anything starts: every address of the subnet is this host's own.
ip route show table local "$subnet" | grep -q . || ip route add local "$subnet" dev lo
probe=${subnet%.0.0/16}.0.2
if ! ip route get "$probe" | grep -q "^local $probe "; then
  echo "testbed: $subnet is not routed locally on this host (ip route get $probe:" \
    "$(ip route get "$probe" | head -n 1)); not starting an engine whose addresses could leave it" >&2
  exit 1
fi

if ! [ -e "/run/netns/$netns" ]; then
  ip netns add "$netns"
fi
nsenter --net="/run/netns/$netns" ip link set lo up
# The engine takes the ports it publishes from its namespace's ephemeral range:
# one outside this host's (32768-60999, where the host's engines and outgoing
# connections take theirs), so that the forwarder finds the same port free on
# this host, and a port of the isolated engine is not answered by something else.
nsenter --net="/run/netns/$netns" sysctl -q -w net.ipv4.ip_local_port_range="$port_range"

mkdir -p "$state" "$data_root"
# Its own configuration file: the default engine's /etc/docker/daemon.json is not
# its. iptables stays on: the chains it writes are its namespace's own, and with
# them containers on one of its networks reach each other by name.
echo '{}' >"$state/daemon.json"

# Run in the new mount namespace, as root of it, then become dockerd. The
# namespace starts as a copy of this host's mounts: drop those of other engines
# (their containers' root file systems, and their network namespace files, whose
# copies would keep a removed container's namespace and addresses alive), then
# give it a /tmp of its own.
inside='
set -eu
awk '\''{
  for (i = 7; i <= NF; i++) if ($i == "-") { type = $(i + 1); break }
  if (type == "nsfs" || $5 ~ "^/(var/)?run/." || $5 ~ "^/var/lib/.") print $5
}'\'' /proc/self/mountinfo | while read -r point; do
  umount -l "$point" 2>/dev/null || true  # lazily: a parent taken first takes its children
done
mount -t tmpfs -o mode=1777 tmpfs /tmp
exec "$@"
'

remove_stale_pidfile "$pidfile"
remove_stale_pidfile "$state/exec/containerd/containerd.pid"
if ! [ -f "$pidfile" ]; then
  echo "testbed: starting the Desktop-shaped engine ($variant) at $host (log: $log)" >&2
  setsid nohup nsenter --net="/run/netns/$netns" \
    unshare --mount --propagation private \
    sh -c "$inside" sh dockerd \
    --config-file "$state/daemon.json" \
    --host "$host" \
    --data-root "$data_root" \
    --exec-root "$state/exec" \
    --pidfile "$pidfile" \
    --bip "$bip" \
    --default-address-pool "base=$subnet,size=24" \
    >"$log" 2>&1 </dev/null &
fi
wait_for_engine "$host" "$log"
start_forwarder
echo "$host"
