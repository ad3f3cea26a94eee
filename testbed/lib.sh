# Shared by the test bed's scripts: where built binaries are cached, and how
# to wait for an engine. Sourced, not run.

cache=${XDG_CACHE_HOME:-$HOME/.cache}/ephemeral-registry-testbed

# go_binary MODULE@VERSION NAME [go install flags...]: build once into the
# cache and print the binary's path. Static (CGO off) unless CGO_ENABLED=1 is set.
go_binary() {
  local module=$1 name=$2 version=${1##*@}
  shift 2
  local flavour=${GO_FLAVOUR:+-$GO_FLAVOUR}
  local out="$cache/bin/$version$flavour/$name"
  if [ ! -x "$out" ]; then
    echo "testbed: building $module" >&2
    mkdir -p "$(dirname "$out")"
    CGO_ENABLED=${CGO_ENABLED:-0} GOFLAGS=-mod=mod GOBIN="$(dirname "$out")" \
      go install -trimpath -ldflags=-s "$@" "$module" >&2
  fi
  echo "$out"
}

# wait_for_engine HOST LOG: poll `docker -H HOST info` for up to 60 s.
wait_for_engine() {
  local host=$1 log=$2
  for _ in $(seq 1 600); do
    if timeout 5 docker -H "$host" info >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.1
  done
  echo "testbed: the engine at $host did not answer within 60 s; the end of $log:" >&2
  tail -n 30 "$log" >&2
  return 1
}

# remove_stale_pidfile FILE: a killed daemon leaves its pid file behind, and
# the next one refuses to start while it is there. Remove it if that pid is dead:
# gone, or a zombie (init here does not always reap a killed daemon at once).
remove_stale_pidfile() {
  local pidfile=$1 pid
  [ -f "$pidfile" ] || return 0
  pid=$(cat "$pidfile" 2>/dev/null || true)
  if ! kill -0 "$pid" 2>/dev/null || [[ "$(ps -o stat= -p "$pid" 2>/dev/null)" == Z* ]]; then
    rm -f "$pidfile"
  fi
}

# podman_registries_conf: Podman's registries.conf for the test bed. Docker
# pulls over plain HTTP from 127.0.0.0/8 by itself; Podman only from registries
# marked insecure. The tests pull what they pushed from 127.0.0.1:PORT.
podman_registries_conf() {
  cat <<CONF
unqualified-search-registries = []

[[registry]]
location = "127.0.0.1"
insecure = true
CONF
}
