#!/usr/bin/env bash
# Makes sure Debian's Chromium is installed for the browser tests (test/e2e). Installs it with
# apt-get only when /usr/bin/chromium is missing, so a prepared machine pays nothing.
set -euo pipefail

CHROMIUM=/usr/bin/chromium
if [ -x "$CHROMIUM" ]; then
  exit 0
fi
bash "$(dirname "$0")/apt-install.sh" chromium "the browser tests"
"$CHROMIUM" --version
