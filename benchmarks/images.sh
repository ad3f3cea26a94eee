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

for n in 0 1 2 3; do
  build "ephemeral-registry-benchmark/bulk-$n:200" 200 4
done
build "ephemeral-registry-benchmark/bulk:500" 500 5
