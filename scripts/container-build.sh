#!/usr/bin/env bash
# Builds the service's images: Dockerfile.base (the build image), then Dockerfile.api (the runtime image).
#
#   scripts/container-build.sh            production images from the CUDA 13 images (Ubuntu 24.04), Node and CMake
#                                         downloaded; needs a registry and the internet (docker or podman)
#   scripts/container-build.sh --local    test images on a machine without a registry (CI):
#                                         a Debian 12 base made here with debootstrap (kept as localhost/debian:bookworm),
#                                         the project's Node 24 (scripts/node-env.sh: .node/bin when the machine's
#                                         node is older), Debian's cmake, the CPU builder; podman only
#
# Prints the runtime image's name on its last line of stdout. Environment:
#   CONTAINER_ENGINE  podman or docker (default: podman when present, else docker)
#   IMAGE             runtime image name (default knn-remote-index-builder, or localhost/knn-remote-index-builder:test
#                     with --local); the build image is named after it with -base
#   KNN_GPU           AUTO | ON | OFF for the native addon (default ON for production, OFF with --local)
#   NODE_SOURCE, CMAKE_SOURCE  Dockerfile.base's choices for production (default tarball and apt)
#   BUILD_CA_FILE     extra CA certificates for TLS during the build (with --local: the host's CA bundle)
#   KNN_CONTAINER_CACHE  folder for the local base's root file system and the Node copy (default
#                     /var/tmp/knn-container-cache)
# Any further arguments are passed to both builds (e.g. --build-arg NODE_VERSION=24.22.3, --no-cache).
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '[container-build] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

local_mode=0
if [ "${1:-}" = --local ]; then local_mode=1; shift; fi

engine=${CONTAINER_ENGINE:-}
if [ -z "$engine" ]; then
  if command -v podman >/dev/null; then engine=podman; elif command -v docker >/dev/null; then engine=docker; fi
fi
[ -n "$engine" ] || die "neither podman nor docker found"
# Podman on these machines needs runc and lower rlimits (docker/containers.conf); a caller's own config wins.
[ "$engine" = podman ] && export CONTAINERS_CONF="${CONTAINERS_CONF:-$PWD/docker/containers.conf}"
cache=${KNN_CONTAINER_CACHE:-/var/tmp/knn-container-cache}
debian_image=localhost/debian:bookworm

# Makes localhost/debian:bookworm with debootstrap unless it exists (about 30 s; kept between runs).
local_debian_image() {
  if "$engine" image exists "$debian_image" 2>/dev/null; then return 0; fi
  command -v debootstrap >/dev/null || die "debootstrap not found (apt-get install debootstrap)"
  local root="$cache/rootfs-bookworm"
  log "making $debian_image with debootstrap (minbase)"
  rm -rf "$root"
  mkdir -p "$cache"
  debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian >"$cache/debootstrap.log" 2>&1 ||
    { tail -n 20 "$cache/debootstrap.log" >&2; die "debootstrap failed (log: $cache/debootstrap.log)"; }
  cat >"$root/etc/apt/sources.list" <<'EOF'
deb http://deb.debian.org/debian bookworm main
deb http://deb.debian.org/debian bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
EOF
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb
  tar -C "$root" -c . | "$engine" import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["/bin/bash"]' - "$debian_image" >/dev/null
  rm -rf "$root"
}

# Lays out the project's Node (24.x, scripts/node-env.sh) and the host's npm like the official tarball: bin/node,
# lib/node_modules/npm.
host_node_dist() {
  local dist node npm_dir
  # shellcheck source=scripts/node-env.sh
  . scripts/node-env.sh
  node=$(readlink -f "$(command -v node)")
  "$node" --version | grep -q '^v24\.' || die "the project's node is $("$node" --version), the image needs Node 24"
  dist="$cache/node-dist-$("$node" --version)"
  # npm's own folder (npm root -g would name .node/lib, the pinned node's prefix).
  npm_dir=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")
  [ -f "$npm_dir/bin/npm-cli.js" ] || die "npm not found at $npm_dir"
  mkdir -p "$dist/bin" "$dist/lib/node_modules"
  cmp -s "$node" "$dist/bin/node" || cp "$node" "$dist/bin/node"
  # Same content, same file times, so the image layer made from it stays cached.
  rm -rf "$dist/lib/node_modules/npm"
  cp -a "$npm_dir" "$dist/lib/node_modules/npm"
  echo "$dist"
}

image=${IMAGE:-}
args=()
# Podman: Docker's image format (OCI images drop HEALTHCHECK), and the host's network for apt and npm.
[ "$engine" = podman ] && args+=(--format docker --network host)
if [ "$local_mode" = 1 ]; then
  [ "$engine" = podman ] || die "--local needs podman (--build-context and debootstrap'd images)"
  image=${image:-localhost/knn-remote-index-builder:test}
  local_debian_image
  node_dist=$(host_node_dist)
  args+=(--build-arg "KNN_GPU=${KNN_GPU:-OFF}")
  base_args=(--build-arg "BASE_IMAGE=$debian_image" --build-arg NODE_SOURCE=context --build-arg CMAKE_SOURCE=apt
    --build-context "node-dist=$node_dist")
  api_args=(--build-arg "RUNTIME_IMAGE=$debian_image")
  ca=${BUILD_CA_FILE:-/etc/ssl/certs/ca-certificates.crt}
else
  image=${image:-knn-remote-index-builder}
  args+=(--build-arg "KNN_GPU=${KNN_GPU:-ON}")
  base_args=(--build-arg "NODE_SOURCE=${NODE_SOURCE:-tarball}" --build-arg "CMAKE_SOURCE=${CMAKE_SOURCE:-apt}")
  api_args=()
  ca=${BUILD_CA_FILE:-}
fi
[ -n "$ca" ] && [ -s "$ca" ] && args+=(--secret "id=build_ca,src=$ca")
# A tag (after the last /) goes after -base: localhost/x:test -> localhost/x-base:test.
name=${image%:*} tag=latest
[[ "${image##*/}" == *:* ]] && tag=${image##*:}
base_image="$name-base:$tag"

t0=$SECONDS
log "building $base_image (Dockerfile.base) with $engine"
"$engine" build "${args[@]}" "${base_args[@]}" "$@" -f Dockerfile.base -t "$base_image" . >&2
log "building $image (Dockerfile.api)"
"$engine" build "${args[@]}" "${api_args[@]}" "$@" --build-arg "BASE_IMAGE=$base_image" -f Dockerfile.api \
  -t "$image" . >&2
log "built $image in $((SECONDS - t0)) s"
echo "$image"
