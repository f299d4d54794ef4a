# Sourced by the project's scripts (setup.sh, test.sh, with-node.sh, container-build.sh, gpu-bundle.sh): puts the
# Node.js that scripts/setup.sh provided first on PATH (.node/bin, present only when the machine's node is older
# than 24), so node, npm, npx and every tool they start (vitest, tsx, cmake-js, the build workers, which inherit
# process.execPath) run on it; stops with a message when the node found is still older than 24.
_knn_node_bin="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.node/bin"
if [ -x "$_knn_node_bin/node" ] && [ "${PATH%%:*}" != "$_knn_node_bin" ]; then
  export PATH="$_knn_node_bin:$PATH"
fi
unset _knn_node_bin
if [ "$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)" -lt 24 ]; then
  printf 'Node.js 24 or newer is needed, found %s: run `bash scripts/setup.sh` (it fetches the pinned Node 24 into .node/)\n' \
    "$(node --version 2>/dev/null || echo none)" >&2
  return 1 2>/dev/null || exit 1
fi
