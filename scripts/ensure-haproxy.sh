#!/usr/bin/env bash
# Install Debian's HAProxy for `make cluster` and the cluster tests when missing. The
# cluster runs its own haproxy under supervisord with a generated configuration
# (deploy/haproxy.cfg.template); the package's system service is not used.
set -euo pipefail

HAPROXY="${HAPROXY:-/usr/sbin/haproxy}"
if [ -x "$HAPROXY" ]; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi
echo "ensure-haproxy: $HAPROXY missing, installing Debian's haproxy package" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# RUNLEVEL=1: the package's init script must not start a system-wide haproxy here.
$SUDO env RUNLEVEL=1 apt-get install -y -q --no-install-recommends haproxy
"$HAPROXY" -v | head -n1
