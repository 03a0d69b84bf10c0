#!/usr/bin/env bash
# The project's two commands. On a fresh machine with Python 3.11+, git and Node.js:
#   ./dev.sh up     set everything up and run the whole system (Ctrl-C stops it)
#   ./dev.sh test   set everything up and run the tests
# Other: ./dev.sh bench (benchmarks, see docs/benchmarks.md), ./dev.sh setup (install only).
set -euo pipefail
cd "$(dirname "$0")"

PY=${PYTHON:-python3}
VENV=.venv

setup() {
  if [ ! -x "$VENV/bin/python" ]; then
    echo "==> creating $VENV"
    "$PY" -m venv "$VENV"
  fi
  local stamp="$VENV/.installed" want
  want=$(cat pyproject.toml | sha256sum | cut -d' ' -f1)
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "==> installing the project and its dependencies into $VENV"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    "$VENV/bin/python" -m pip install --quiet -e '.[dev]'
    echo "$want" > "$stamp"
  fi
  # The GOV.UK Design System's CSS, JS, fonts and images (npm), at the version pinned in
  # package-lock.json; the web pages serve them from node_modules.
  local nstamp="node_modules/.installed" nwant
  nwant=$(cat package.json package-lock.json | sha256sum | cut -d' ' -f1)
  if [ ! -f "$nstamp" ] || [ "$(cat "$nstamp")" != "$nwant" ]; then
    echo "==> installing the front-end assets (npm ci)"
    npm ci --no-audit --no-fund --loglevel=error
    echo "$nwant" > "$nstamp"
  fi
}

# PostgreSQL from Debian's packages, for the tests and benchmarks that run on it. The tests
# start their own throwaway server from these binaries; nothing is configured system-wide.
ensure_postgres() {
  if compgen -G "/usr/lib/postgresql/*/bin/initdb" > /dev/null; then return; fi
  if [ "$(id -u)" = 0 ] && command -v apt-get > /dev/null; then
    echo "==> installing PostgreSQL (Debian package) for the database tests"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql > /dev/null
  else
    echo "warning: PostgreSQL is not installed; its tests will be skipped (apt-get install postgresql)" >&2
  fi
}

# Chromium from Debian's packages, for the browser tests (tests/test_browser.py,
# tests/test_accessibility.py): playwright (the dev extras) drives it, and never downloads a
# browser of its own. Without it those tests skip, or fail under CI.
ensure_chromium() {
  if command -v chromium > /dev/null; then return; fi
  if [ "$(id -u)" = 0 ] && command -v apt-get > /dev/null; then
    echo "==> installing Chromium (Debian package) for the browser tests"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium > /dev/null
  else
    echo "warning: Chromium is not installed; the browser and accessibility tests will be" \
      "skipped (apt-get install chromium)" >&2
  fi
}

cmd=${1:-help}
shift || true
case "$cmd" in
  setup) setup ;;
  up) setup; exec "$VENV/bin/ehc" up "$@" ;;
  test) setup; ensure_postgres; ensure_chromium; exec "$VENV/bin/python" -m pytest "$@" ;;
  bench) setup; ensure_postgres; exec "$VENV/bin/python" -m bench "$@" ;;
  *) sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
