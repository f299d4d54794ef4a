#!/usr/bin/env bash
# Fills .gpu-pack/ with what the GPU machine lacks (no Node.js, no network): the project's Node 24 (the node
# scripts/node-env.sh puts first on PATH), compressed. On the GPU machine, `source .gpu-pack/env.sh` unpacks it into
# /tmp and sets PATH and CUDA_HOME. (Faiss is not packed: the addon has its own CPU builder and links no Faiss.) The node is packed
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
rm -f "$dir"/libfaiss-dev_*.deb # packed by earlier versions of this script
cat >"$dir/env.sh" <<'ENV'
# Sourced on the GPU machine (written by scripts/gpu-pack.sh): unpacks node into /tmp (a folder per node version, so
# a node left there by an earlier pack is never used) and sets PATH and CUDA_HOME.
_d="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
_bin="/tmp/gpu-pack-node-$(cat "$_d/node.version")"
mkdir -p "$_bin"
[ -x "$_bin/node" ] ||
  { xz -d -T8 -c "$_d/node.xz" >"$_bin/node.tmp" && chmod +x "$_bin/node.tmp" && mv "$_bin/node.tmp" "$_bin/node"; }
export PATH="$_bin:/usr/local/cuda/bin:$PATH"
export CUDA_HOME=/usr/local/cuda
unset _d _bin
ENV
