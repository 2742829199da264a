#!/usr/bin/env bash
# Makes sure Debian's Chromium is installed for the browser tests (test/e2e). Installs it with
# apt-get only when /usr/bin/chromium is missing, so a prepared machine pays nothing.
set -euo pipefail

CHROMIUM=/usr/bin/chromium
if [ -x "$CHROMIUM" ]; then
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "Chromium is missing at $CHROMIUM and apt-get is not available: install Chromium (Debian package 'chromium') to run the browser tests." >&2
  exit 1
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
  else
    echo "Chromium is missing at $CHROMIUM; run as root (or with sudo available) to install it: apt-get install -y chromium" >&2
    exit 1
  fi
fi

echo "Installing Chromium for the browser tests (apt-get install chromium)…"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
$SUDO apt-get install -y --no-install-recommends chromium
"$CHROMIUM" --version
