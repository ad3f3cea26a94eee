#!/usr/bin/env bash
# Build the large images the conversion benchmarks push: four distinct images
# of ~200 MB (four layers each) and one of ~500 MB. Their content is random
# text, which compresses about as well as a typical image layer. Skipped when
# they exist. Run after scripts/setup.
set -euo pipefail

build() { # build TAG SIZE_MB LAYERS
  local tag=$1 size=$2 layers=$3
  if docker image inspect "$tag" >/dev/null 2>&1; then
    return
  fi
  echo "benchmarks: building $tag (~$size MB)" >&2
  local context
  context=$(mktemp -d)
  {
    echo "FROM scratch"
    for i in $(seq 1 "$layers"); do
      head -c $((size * 1024 * 1024 * 3 / 4 / layers)) /dev/urandom | base64 -w 0 >"$context/layer-$i"
      echo "COPY layer-$i /data/layer-$i"
    done
  } >"$context/Dockerfile"
  DOCKER_BUILDKIT=0 docker build -q -t "$tag" "$context" >/dev/null 2>"$context.log" \
    || { cat "$context.log" >&2; exit 1; }
  rm -f "$context.log"
  rm -rf "$context"
}

curves=(ephemeral-registry-benchmark/size:50 ephemeral-registry-benchmark/size:1000
  ephemeral-registry-benchmark/size:2000)
for n in $(seq 0 15); do curves+=("ephemeral-registry-benchmark/bulk-$n:200"); done
if [ "${1:-}" = --remove ]; then  # see --curves below
  shift
  for host in "$@"; do
    docker -H "$host" rmi "${curves[@]}" ephemeral-registry-benchmark/bulk:500 >/dev/null 2>&1 || true
  done
  exit 0
fi

for n in 0 1 2 3; do
  build "ephemeral-registry-benchmark/bulk-$n:200" 200 4
done
build "ephemeral-registry-benchmark/bulk:500" 500 5

# With --curves (benchmarks/curves.py): also one image each of ~50 MB, ~1 GB
# and ~2 GB, and twelve more distinct ~200 MB ones (sixteen in all), built on
# the default engine and copied to each engine HOST given after it:
#   bash benchmarks/images.sh --curves [HOST...]
# `bash benchmarks/images.sh --remove HOST...` removes them from those engines.
case "${1:-}" in
  --curves)
    shift
    build ephemeral-registry-benchmark/size:50 50 2
    build ephemeral-registry-benchmark/size:1000 1000 8
    build ephemeral-registry-benchmark/size:2000 2000 16
    for n in $(seq 4 15); do
      build "ephemeral-registry-benchmark/bulk-$n:200" 200 4
    done
    for host in "$@"; do
      missing=()
      for image in "${curves[@]}"; do
        docker -H "$host" image inspect "$image" >/dev/null 2>&1 || missing+=("$image")
      done
      if [ "${#missing[@]}" -gt 0 ]; then
        echo "benchmarks: copying ${#missing[@]} images to $host" >&2
        docker save "${missing[@]}" | docker -H "$host" load -q >/dev/null
      fi
    done
    ;;
esac
