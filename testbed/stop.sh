#!/usr/bin/env bash
# Stop every engine of the test bed the way the end of a session does: every
# process killed at once (SIGKILL), pid files and data left behind. For checking
# that scripts/setup (and so .ci/run) brings them all back from nothing:
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
  [ "$alive" = 0 ] && exit 0
  sleep 0.1
done
echo "testbed: some engine processes outlived SIGKILL:" >&2
pgrep -a -x "$(IFS='|'; echo "${names[*]}")" >&2 || true
exit 1
