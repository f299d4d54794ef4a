#!/usr/bin/env bash
# Runs a command on the project's Node.js (scripts/node-env.sh: .node/bin first on PATH when scripts/setup.sh put
# the pinned Node 24 there), e.g. `bash scripts/with-node.sh node dist/src/main.js`, `... npx vitest run test/cli`.
set -euo pipefail
# shellcheck source=scripts/node-env.sh
. "$(dirname "$0")/node-env.sh"
exec "$@"
