#!/usr/bin/env bash
# Install Debian's Chromium for the browser end-to-end tests (tests/browser/) when missing.
# Playwright drives this system browser (executable_path=/usr/bin/chromium); it never
# downloads a browser of its own.
set -euo pipefail

CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
if [ -x "$CHROMIUM" ]; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi
echo "ensure-chromium: $CHROMIUM missing, installing Debian's chromium package" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core
"$CHROMIUM" --version
