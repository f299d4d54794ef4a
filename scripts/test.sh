#!/usr/bin/env bash
# The test suite as CI runs it (after scripts/setup.sh --test): type check, lint, then vitest.
set -euo pipefail
cd "$(dirname "$0")/.."
npx tsc -p tsconfig.json --noEmit
npx eslint --max-warnings 0 .
npx prettier --check --log-level warn .
npx vitest run "$@"
