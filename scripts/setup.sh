#!/usr/bin/env bash
# Idempotent set-up on a fresh Debian/Ubuntu machine; `npm start` and `npm test` run it first.
#   scripts/setup.sh          system packages, npm packages, the native addon, the TypeScript build
#   scripts/setup.sh --test   the above, plus what the tests need (Ceph RGW for S3, Faiss 1.15 for Python)
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

# --- system packages for building and running the addon
apt_install cmake make g++ libfaiss-dev libopenblas-dev liblapack-dev xz-utils

# --- npm packages (exact versions from package-lock.json)
if [ ! -d node_modules ] || stale npm package-lock.json package.json; then
  log "installing npm packages"
  npm ci --no-audit --no-fund --loglevel=error
  touch .stamps/npm
fi

# --- the native addon (cmake-js; the GPU builder joins where CUDA + cuBLAS exist)
if [ ! -f build/native/Release/knn_native.node ] || stale native src/native; then
  log "building the native addon (KNN_GPU=${KNN_GPU:-AUTO})"
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

# --- test-only: a real S3 server (Ceph RGW), Debian's Faiss 1.7.3 for Python (old-cluster reads)
apt_install radosgw ceph-mon ceph-osd python3-faiss python3-numpy python3-venv

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
