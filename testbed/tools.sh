#!/usr/bin/env bash
# Clients the tests pull with, on the host, beside skopeo (Debian's, from
# images.sh) and containerd's ctr (Debian's docker.io): oras, built once from
# its pinned module into the test bed's cache and linked into /usr/local/bin.
# Idempotent.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
oras_module=oras.land/oras/cmd/oras@v1.3.6

oras=$(go_binary "$oras_module" oras)
ln -sf "$oras" /usr/local/bin/oras
