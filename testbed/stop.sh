#!/usr/bin/env bash
# Stop every engine of the test bed the way the end of a session does: every
# process killed at once (SIGKILL), pid files and data left behind. Then, once
# no engine process is left, what testbed/desktop.sh made in this host's network
# is removed: the Desktop-shaped engines' network namespaces, and after them
# the local routes of their subnets (desktop.sh routes a subnet again before
# its engine starts). For checking that scripts/setup (and so .ci/run) brings
# them all back from nothing:
#
#   bash testbed/stop.sh && git clone . /tmp/fresh && (cd /tmp/fresh && bash .ci/run)
set -euo pipefail

rootless_user=ephemeral-testbed  # testbed/podman-rootless.sh
names=(dockerd containerd containerd-shim docker-proxy  # process names, at most 15 characters
  podman conmon slirp4netns rootlessport aardvark-dns)
if id "$rootless_user" >/dev/null 2>&1; then
  pkill -KILL -u "$rootless_user" || true
fi
for name in "${names[@]}"; do
  pkill -KILL -x "$name" || true
done
# The Desktop-shaped engine's port forwarder (testbed/desktop.sh), if that pid is one.
forwarder_pid=/run/ephemeral-registry-testbed/desktop-forwarded/forwarder.pid
if [ -f "$forwarder_pid" ] && pid=$(cat "$forwarder_pid") \
  && grep -qa desktop_forwarder.py "/proc/$pid/cmdline" 2>/dev/null; then
  kill -KILL "$pid" || true
fi
# The test bed's sshd (testbed/sshd.sh) and its sessions; not the system's.
sshd_pid=/run/ephemeral-registry-testbed/sshd/sshd.pid
if [ -f "$sshd_pid" ]; then
  pkill -KILL -P "$(cat "$sshd_pid")" 2>/dev/null || true
  kill -KILL "$(cat "$sshd_pid")" 2>/dev/null || true
fi
for _ in $(seq 1 50); do
  alive=0
  for name in "${names[@]}"; do
    if pgrep -x "$name" >/dev/null; then alive=1; fi
  done
  if [ "$alive" = 0 ]; then
    # testbed/desktop.sh's namespaces and subnets, in that order: no route is
    # taken away while something could still send to those addresses.
    for netns in ertb-desktop-fwd ertb-desktop-iso; do
      if [ -e "/run/netns/$netns" ]; then ip netns delete "$netns"; fi
    done
    for subnet in 10.210.0.0/16 10.211.0.0/16; do
      if ip route show table local "$subnet" | grep -q .; then
        ip route del local "$subnet" dev lo table local
      fi
    done
    exit 0
  fi
  sleep 0.1
done
echo "testbed: some engine processes outlived SIGKILL:" >&2
pgrep -a -x "$(IFS='|'; echo "${names[*]}")" >&2 || true
exit 1
