#!/usr/bin/env bash
# Build the browser client (client/) into realtime_project/static/client/ with esbuild.
# Installs the pinned npm dependencies (npm ci) when node_modules is missing or older
# than package-lock.json. Called by `make run` and `make test` (Makefile target `client`).
set -euo pipefail
cd "$(dirname "$0")/../client"

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
node build.mjs
