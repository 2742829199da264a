#!/usr/bin/env bash
# Makes sure Debian's searx (a real SearXNG-compatible search server, 1.1.0) is installed for the
# web search tests (test/search-web.test.ts start it on loopback). Installs it with apt-get only
# when Debian's python3 cannot import it, so a prepared machine pays nothing.
set -euo pipefail

PYTHON=/usr/bin/python3
# find_spec of the top package, not an import: importing searx reads its settings file, which
# only the tests write.
FOUND='import importlib.util, os, sys; s = importlib.util.find_spec("searx"); sys.exit(0 if s and s.submodule_search_locations and os.path.isfile(os.path.join(list(s.submodule_search_locations)[0], "webapp.py")) else 1)'
if [ -x "$PYTHON" ] && "$PYTHON" -c "$FOUND" >/dev/null 2>&1 </dev/null; then
  exit 0
fi

bash "$(dirname "$0")/apt-install.sh" searx "the web search tests"
"$PYTHON" -c "$FOUND" && dpkg-query -W searx
