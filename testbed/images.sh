#!/usr/bin/env bash
# Build every image the tests and examples use, locally and FROM scratch, on
# the default engine: nothing is ever pulled. An image whose build context has
# not changed is not rebuilt, so a second run takes about a second.
#
# Usage: images.sh [HOST...]. Each HOST (a DOCKER_HOST address of another
# engine) then gets the same images, moved with docker save | docker load, and
# an engine with a containerd image store also gets images as such a store
# keeps them (compressed layers, several platforms), made by oci_images.py.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
prefix=ephemeral-registry-testbed
crane_module=github.com/google/go-containerregistry/cmd/crane@v0.21.9
registry3_module=github.com/distribution/distribution/v3/cmd/registry@v3.1.1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# build NAME TAG [docker build args...]: build images/NAME from the rootfs
# prepared in $work/NAME, unless an image built from the same inputs exists.
# Set GO_BINARY=MODULE@VERSION:NAME:PATH to add a Go binary at PATH in the
# rootfs (built only when the image is built), and EXTRA to anything else the
# image depends on (a parent image's id).
build() {
  local name=$1 tag=$2; shift 2
  local context="$work/$name"
  mkdir -p "$context/rootfs"
  cp "$here/images/$name/Dockerfile" "$context/"
  local hash have
  hash=$( (cd "$context" && find . -type f -print0 | sort -z | xargs -0 sha256sum; echo "$* ${GO_BINARY:-} ${EXTRA:-}") | sha256sum | cut -c1-16)
  have=$(docker image inspect -f '{{ index .Config.Labels "ephemeral-registry-testbed.context" }}' "$tag" 2>/dev/null || true)
  if [ "$have" = "$hash" ]; then
    return
  fi
  if [ -n "${GO_BINARY:-}" ]; then
    IFS=: read -r module binary path <<<"$GO_BINARY"
    mkdir -p "$context/rootfs/$(dirname "$path")"
    cp "$(go_binary "$module" "$binary")" "$context/rootfs/$path"
  fi
  echo "testbed: building image $tag" >&2
  DOCKER_BUILDKIT=0 docker build -q --label "ephemeral-registry-testbed.context=$hash" -t "$tag" "$@" "$context" >/dev/null 2>"$work/$name.log" \
    || { cat "$work/$name.log" >&2; exit 1; }
}

# registry 2: Debian's binary plus the libc it links against.
# skopeo: the tests' second registry client, and their OCI layout maker.
# zstd: oci_images.py compresses layers with it.
if ! command -v docker-registry >/dev/null 2>&1 || ! [ -x /bin/busybox ] \
  || ! command -v skopeo >/dev/null 2>&1 || ! command -v zstd >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq docker-registry busybox-static skopeo zstd >/dev/null
fi
r2="$work/registry2/rootfs"
mkdir -p "$r2/bin" "$r2/etc/docker/registry" "$r2/var/lib/registry" "$r2/tmp"
cp /usr/bin/docker-registry "$r2/bin/registry"
for lib in $(ldd /usr/bin/docker-registry | grep -o '/[^ ]*'); do
  mkdir -p "$r2$(dirname "$lib")"
  cp -L "$lib" "$r2$lib"
done
cp "$here/images/registry2/config.yml" "$r2/etc/docker/registry/config.yml"
chmod 1777 "$r2/tmp"
build registry2 "$prefix/registry:2"

# registry 3: the static v3 binary.
r3="$work/registry3/rootfs"
mkdir -p "$r3/bin" "$r3/etc/distribution" "$r3/var/lib/registry" "$r3/tmp"
cp "$here/images/registry3/config.yml" "$r3/etc/distribution/config.yml"
chmod 1777 "$r3/tmp"
GO_BINARY="$registry3_module:registry:bin/registry" build registry3 "$prefix/registry:3"

# crane: static, non-root, like the upstream image.
c="$work/crane/rootfs"
mkdir -p "$c/ko-app" "$c/etc" "$c/home/nonroot" "$c/tmp"
printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$c/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' >"$c/etc/group"
chmod 1777 "$c/tmp" "$c/home/nonroot"
GO_BINARY="$crane_module:crane:ko-app/crane" build crane "$prefix/crane"

# Registries and a crane that misbehave, for the tests.
for name in registry-late registry-exits registry-silent crane-hangs crane-chatty; do
  mkdir -p "$work/$name/rootfs/bin"
  cp /bin/busybox "$work/$name/rootfs/bin/busybox"
done
EXTRA=$(docker image inspect -f '{{.Id}}' "$prefix/registry:2") build registry-late "$prefix/registry-late"
EXTRA=$(docker image inspect -f '{{.Id}}' "$prefix/registry:2") build registry-small-disk "$prefix/registry-small-disk"
build registry-exits "$prefix/registry-exits"
build registry-silent "$prefix/registry-silent"
build crane-hangs "$prefix/crane-hangs"
build crane-chatty "$prefix/crane-chatty"

# busybox: the relay of a tunnel through the engine's API (nc and sleep).
b="$work/busybox/rootfs"
mkdir -p "$b/bin"
cp /bin/busybox "$b/bin/busybox"
for applet in sh nc sleep; do
  ln -s busybox "$b/bin/$applet"
done
build busybox "$prefix/busybox"

# pause: the pod sandbox of the one-node cluster (testbed/kubernetes.sh), which
# takes it from here; the engines do not need it.
mkdir -p "$work/pause/rootfs/bin"
cp /bin/busybox "$work/pause/rootfs/bin/busybox"
build pause "$prefix/pause"

# Small sample images to push.
s="$work/sample/rootfs"
mkdir -p "$s/data"
echo "hello from an ephemeral registry" >"$s/greeting.txt"
for i in 1 2 3; do
  head -c 65536 /dev/zero | tr '\0' "$i" >"$s/data/block-$i"
done
build sample "$prefix/sample:one" --build-arg VARIANT=one
build sample "$prefix/sample:two" --build-arg VARIANT=two

# An image whose layers hold links, whiteouts, long names and nothing at all.
mkdir -p "$work/interop/rootfs/bin"
cp /bin/busybox "$work/interop/rootfs/bin/busybox"
build interop "$prefix/interop" --network none  # RUN steps, with no network

# The other engines.
tags=(
  "$prefix/registry:2" "$prefix/registry:3" "$prefix/crane" "$prefix/registry-late"
  "$prefix/registry-exits" "$prefix/registry-silent" "$prefix/crane-hangs" "$prefix/crane-chatty"
  "$prefix/registry-small-disk" "$prefix/busybox"
  "$prefix/sample:one" "$prefix/sample:two" "$prefix/interop"
)
context() {  # context [-H HOST] TAG: the label that says what an image was built from
  docker "${@:1:$#-1}" image inspect -f '{{ index .Config.Labels "ephemeral-registry-testbed.context" }}' \
    "${!#}" 2>/dev/null || true
}
# made [-H HOST] TAG: which build an image is: the same inputs built again make
# another image (its creation time is in its config, kept by docker save | load).
made() {
  docker "${@:1:$#-1}" image inspect \
    -f '{{ index .Config.Labels "ephemeral-registry-testbed.context" }} {{ .Created }}' \
    "${!#}" 2>/dev/null || true
}
for host in "$@"; do
  stale=()
  for tag in "${tags[@]}"; do
    [ "$(made "$tag")" = "$(made -H "$host" "$tag")" ] || stale+=("$tag")
  done
  if [ ${#stale[@]} -gt 0 ]; then
    echo "testbed: copying ${#stale[@]} images to $host" >&2
    docker save "${stale[@]}" | docker -H "$host" load -q >/dev/null
  fi
  if docker -H "$host" info -f '{{ json .DriverStatus }}' | grep -q io.containerd.snapshotter; then
    # sample:gzip and :zstd keep the sample's config, so its label and creation time.
    if [ "$(context -H "$host" "$prefix/multi:latest")" != "$(context "$prefix/sample:one")" ] \
      || [ "$(made -H "$host" "$prefix/sample:zstd")" != "$(made "$prefix/sample:one")" ]; then
      echo "testbed: loading compressed and multi-platform images into $host" >&2
      docker save "$prefix/sample:one" >"$work/sample.tar"
      python3 "$here/oci_images.py" "$work/sample.tar" "$work"
      for archive in gzip zstd multi; do
        docker -H "$host" load -q -i "$work/$archive.tar" >/dev/null
      done
    fi
  fi
done
