#!/usr/bin/env bash
# Type-check (tsc, strict) and unit-test (Vitest) the browser client. Called by `make test`.
set -euo pipefail
cd "$(dirname "$0")/../client"

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
npx --no-install tsc --noEmit -p tsconfig.json
npx --no-install vitest run
