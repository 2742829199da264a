#!/usr/bin/env bash
# apt-install.sh PACKAGE WHY: installs one Debian package for the tests with apt-get (as root, or
# through sudo when that is available), or says clearly what to install when it cannot.
# Shared by tools/ensure-chromium.sh and tools/ensure-searx.sh.
set -euo pipefail
PACKAGE="$1"
WHY="$2"

if ! command -v apt-get >/dev/null 2>&1; then
  echo "$PACKAGE is missing and apt-get is not available: install Debian's package '$PACKAGE' to run $WHY." >&2
  exit 1
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
  else
    echo "$PACKAGE is missing; run as root (or with sudo available) to install it: apt-get install -y $PACKAGE" >&2
    exit 1
  fi
fi

echo "Installing $PACKAGE for $WHY (apt-get install $PACKAGE)…"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
# Recommends are not needed by the tests (searx's uwsgi, say).
$SUDO apt-get install -y --no-install-recommends "$PACKAGE"
