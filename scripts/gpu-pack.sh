#!/usr/bin/env bash
# Fills .gpu-pack/ with what the GPU machine lacks (no Node.js, no network): the project's Node 24 (the node
# scripts/node-env.sh puts first on PATH), compressed, and Debian's libfaiss-dev package. On the GPU machine,
# `source .gpu-pack/env.sh` unpacks them into /tmp and sets PATH, FAISS_ROOT and CUDA_HOME. The node is packed
# again when the project's Node changes (.gpu-pack/node.version names the packed one).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/node-env.sh
. scripts/node-env.sh
dir=.gpu-pack
mkdir -p "$dir"
version=$(node --version)
if [ ! -s "$dir/node.xz" ] || [ "$(cat "$dir/node.version" 2>/dev/null)" != "$version" ]; then
  echo "compressing node $version (about a minute)..." >&2
  xz -T2 -6 -c "$(readlink -f "$(command -v node)")" >"$dir/node.xz.tmp"
  mv "$dir/node.xz.tmp" "$dir/node.xz"
  echo "$version" >"$dir/node.version"
fi
ls "$dir"/libfaiss-dev_*.deb >/dev/null 2>&1 || (cd "$dir" && apt-get download libfaiss-dev)
cat >"$dir/env.sh" <<'ENV'
# Sourced on the GPU machine (written by scripts/gpu-pack.sh): unpacks node and Faiss into /tmp (a folder per node
# version, so a node left there by an earlier pack is never used) and sets PATH, FAISS_ROOT and CUDA_HOME.
_d="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
_bin="/tmp/gpu-pack-node-$(cat "$_d/node.version")"
mkdir -p "$_bin" /tmp/gpu-pack-faiss
[ -x "$_bin/node" ] ||
  { xz -d -T8 -c "$_d/node.xz" >"$_bin/node.tmp" && chmod +x "$_bin/node.tmp" && mv "$_bin/node.tmp" "$_bin/node"; }
[ -d /tmp/gpu-pack-faiss/usr ] || dpkg -x "$_d"/libfaiss-dev_*.deb /tmp/gpu-pack-faiss
export PATH="$_bin:/usr/local/cuda/bin:$PATH"
export FAISS_ROOT=/tmp/gpu-pack-faiss/usr
export CUDA_HOME=/usr/local/cuda
unset _d _bin
ENV
