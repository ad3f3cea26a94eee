#!/usr/bin/env bash
# Make sure a Docker engine answers on this machine: install Debian's docker.io
# where there is no dockerd, start dockerd where none runs. Idempotent.
set -euo pipefail

log=/var/log/dockerd.log

engine_answers() { timeout 5 docker info >/dev/null 2>&1; }

if engine_answers; then
  exit 0
fi

if ! command -v dockerd >/dev/null 2>&1; then
  echo "testbed: installing Debian's docker.io" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq docker.io >/dev/null
fi

# A dockerd that was killed leaves its pid file behind, and the next one
# refuses to start while it is there. Remove it only if that pid is dead.
for pidfile in /var/run/docker.pid /run/docker/containerd/containerd.pid; do
  if [ -f "$pidfile" ] && ! kill -0 "$(cat "$pidfile" 2>/dev/null)" 2>/dev/null; then
    rm -f "$pidfile"
  fi
done

if ! pgrep -x dockerd >/dev/null 2>&1; then
  echo "testbed: starting dockerd (log: $log)" >&2
  setsid nohup dockerd >"$log" 2>&1 </dev/null &
fi

for _ in $(seq 1 300); do
  if engine_answers; then
    exit 0
  fi
  sleep 0.1
done
echo "testbed: dockerd did not answer within 30 s; the end of $log:" >&2
tail -n 30 "$log" >&2
exit 1
