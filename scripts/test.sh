#!/usr/bin/env bash
# The test suite as CI runs it (after scripts/setup.sh --test), on the project's Node 24 (scripts/node-env.sh):
# type check, lint, then vitest.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/node-env.sh
. scripts/node-env.sh
npx tsc -p tsconfig.json --noEmit
npx eslint --max-warnings 0 .
npx prettier --check --log-level warn .
npx vitest run "$@"
