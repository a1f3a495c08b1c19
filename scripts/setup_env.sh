#!/usr/bin/env bash
# Install everything Loc2 needs on a Debian 12 machine: QGIS from Debian, a venv that sees it, pip packages.
# Idempotent: each step is skipped when already done. Called by `make setup` (and so by `make test`/`make demo`).
set -euo pipefail
cd "$(dirname "$0")/.."

DEBS="qgis python3-qgis qgis-providers python3-venv xvfb xauth"
missing=""
for p in $DEBS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "loc2 setup: installing Debian packages:$missing"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
fi

if [ ! -x .venv/bin/python ]; then
  echo "loc2 setup: creating .venv (Debian's python3, with system site packages for QGIS)"
  /usr/bin/python3 -m venv --system-site-packages .venv
fi

stamp=.venv/.loc2-installed
want="$(cat pyproject.toml constraints.txt core/requirements.txt | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "loc2 setup: installing Python packages into .venv"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -c constraints.txt -e ".[dev]"
  echo "$want" > "$stamp"
fi
