#!/usr/bin/env bash
# Stop every engine of the test bed, and the one-node cluster, the way the end
# of a session does: every process killed at once (SIGKILL), pid files and data
# left behind. Then, once no engine process is left, what testbed/desktop.sh and
# testbed/kubernetes.sh made in this host's network is removed: the
# Desktop-shaped engines' network namespaces, the cluster's mounts, bridge and
# nft tables, and after them the local routes of their subnets and the
# cluster's node address (both scripts make them again before anything of
# theirs starts). For checking that scripts/setup (and so .ci/run) brings them
# all back from nothing:
#
#   bash testbed/stop.sh && git clone . /tmp/fresh && (cd /tmp/fresh && bash .ci/run)
set -euo pipefail

rootless_user=ephemeral-testbed  # testbed/podman-rootless.sh
names=(dockerd containerd containerd-shim docker-proxy  # process names, at most 15 characters
  podman conmon slirp4netns rootlessport aardvark-dns
  kubernetes)  # testbed/kubernetes.sh: etcd and each component, one binary
# testbed/kubernetes.sh's pods: every process in the kubelet's cgroup, in any
# hierarchy (cgroup v1 here), whatever its name.
kube_cgroups=(/sys/fs/cgroup/*/ertb-kubepods)
kube_pods() {
  local dir
  for dir in "${kube_cgroups[@]}"; do
    if [ -d "$dir" ]; then find "$dir" -name cgroup.procs -exec cat {} +; fi
  done | sort -u
}
kill_kube_pods() {
  local pid
  for pid in $(kube_pods); do kill -KILL "$pid" 2>/dev/null || true; done
}
kube_data=/var/lib/ephemeral-registry-testbed/kubernetes
kube_run=/run/ephemeral-registry-testbed/kubernetes
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
kill_kube_pods
for _ in $(seq 1 50); do
  alive=0
  for name in "${names[@]}"; do
    if pgrep -x "$name" >/dev/null; then alive=1; fi
  done
  if [ -n "$(kube_pods)" ]; then
    alive=1
    kill_kube_pods  # forked since, by a shim not yet gone
  fi
  if [ "$alive" = 0 ]; then
    # testbed/kubernetes.sh's, in that order: what containerd and the kubelet
    # mounted (the pods' network namespaces among them, and so their veths),
    # the address reservations of those dead pods, the pods' bridge,
    # kube-proxy's and the CNI portmap's nft tables, the FORWARD rule; then
    # the services' local route and the node's address, last.
    awk -v a="$kube_data/" -v b="$kube_run/" 'index($2, a) == 1 || index($2, b) == 1 { print $2 }' /proc/mounts \
      | tac | while read -r mount; do umount -l "$mount" || true; done
    rm -rf "$kube_data/cni/networks/ertb-kube"
    if ip link show ertb-kcni0 >/dev/null 2>&1; then ip link delete ertb-kcni0; fi
    for table in "ip kube-proxy" "ip6 kube-proxy" "ip cni_hostport" "ip6 cni_hostport"; do
      # shellcheck disable=SC2086  # family and name
      if nft list table $table >/dev/null 2>&1; then nft delete table $table; fi
    done
    while iptables -C FORWARD -s 10.221.0.0/24 -d 10.221.0.0/24 -j ACCEPT 2>/dev/null; do
      iptables -D FORWARD -s 10.221.0.0/24 -d 10.221.0.0/24 -j ACCEPT
    done
    if ip route show table local 10.222.0.0/24 | grep -q .; then
      ip route del local 10.222.0.0/24 dev lo table local
    fi
    if ip link show ertb-kube0 >/dev/null 2>&1; then ip link delete ertb-kube0; fi
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
kube_pods | sed 's/^/pod process /' >&2
exit 1
