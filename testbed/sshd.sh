#!/usr/bin/env bash
# An SSH server of the test bed's own (Debian's openssh-server), for engines
# reached over ssh://: it listens on 127.0.0.1:2222 only, with a host key of
# its own, and lets in, by key alone, root and the rootless engine's user,
# each with a client key made here. It allows what `ssh://` engines use:
# forwarding to a socket (the engine's) and to a port (the registry's tunnel).
# The system's own sshd, if any, is not touched, nor is it started.
#
#   /run/ephemeral-registry-testbed/sshd/known_hosts     the host key line
#   /run/ephemeral-registry-testbed/sshd/client/USER/id_ed25519   USER's key
#
# Idempotent. Prints the server's address (host:port).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
dir=/run/ephemeral-registry-testbed/sshd
listen=127.0.0.1:2222
users=(root ephemeral-testbed)  # the second: testbed/podman-rootless.sh

if [ ! -x /usr/sbin/sshd ]; then
  echo "testbed: installing openssh-server (its service is not started)" >&2
  # Debian's package starts the system's sshd on port 22 where it can: not here.
  policy=/usr/sbin/policy-rc.d
  made_policy=false
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && made_policy=true
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    openssh-server >/dev/null
  if [ "$made_policy" = true ]; then rm -f "$policy"; fi
fi

mkdir -p "$dir/client" "$dir/authorized"
chmod 755 "$dir" "$dir/client" "$dir/authorized"
[ -f "$dir/host_ed25519" ] || ssh-keygen -q -t ed25519 -N "" -f "$dir/host_ed25519"
for user in "${users[@]}"; do
  id "$user" >/dev/null 2>&1 || continue
  # A locked account ("!" for a password, as useradd makes it) is refused even a key
  # login without PAM; "*": no password at all, and not locked.
  if [ "$(getent shadow "$user" | cut -d: -f2)" = "!" ]; then usermod -p '*' "$user"; fi
  key="$dir/client/$user/id_ed25519"
  if [ ! -f "$key" ]; then
    mkdir -p "$dir/client/$user"
    ssh-keygen -q -t ed25519 -N "" -C "ephemeral-registry-testbed $user" -f "$key"
  fi
  chown -R "$user:" "$dir/client/$user"
  chmod 700 "$dir/client/$user"
  cp "$key.pub" "$dir/authorized/$user"
  chmod 644 "$dir/authorized/$user"
done
echo "[${listen%:*}]:${listen##*:} $(cut -d' ' -f1-2 "$dir/host_ed25519.pub")" >"$dir/known_hosts"
chmod 644 "$dir/known_hosts"

cat >"$dir/sshd_config" <<CONF
ListenAddress $listen
HostKey $dir/host_ed25519
PidFile $dir/sshd.pid
AuthorizedKeysFile $dir/authorized/%u
AuthenticationMethods publickey
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
AllowUsers ${users[*]}
AllowStreamLocalForwarding yes
AllowTcpForwarding yes
X11Forwarding no
UsePAM no
StrictModes no
PrintMotd no
CONF

source "$here/lib.sh"
remove_stale_pidfile "$dir/sshd.pid"
if [ ! -f "$dir/sshd.pid" ]; then
  mkdir -p /run/sshd  # its privilege separation directory
  /usr/sbin/sshd -f "$dir/sshd_config" -E /var/log/ephemeral-registry-testbed-sshd.log
  for _ in $(seq 1 50); do
    [ -f "$dir/sshd.pid" ] && break
    sleep 0.1
  done
  echo "testbed: started sshd on $listen (log: /var/log/ephemeral-registry-testbed-sshd.log)" >&2
fi
echo "$listen"
