#!/usr/bin/env bash
# shellcheck disable=SC2329  # (cleanup and its helpers run from traps)
# Run the project's real-QGIS tests (tests/app) against QGIS 3.40 LTR from Debian 13 "trixie".
#
# Usage (as root, from anywhere):
#   scripts/check_qgis_debian13.sh [--rebuild] [--tests PATH] [--] [PYTEST ARGS...]
#   scripts/check_qgis_debian13.sh --shell        # an interactive shell in the root, everything mounted
#   scripts/check_qgis_debian13.sh --help
#
# What it does:
#   1. Builds, once, a Debian 13 root with debootstrap from Debian's mirror (the one apt uses on this host),
#      in $LOC2_DEBIAN13_ROOT (default /var/tmp/loc2-debian13, outside the repository), and installs QGIS
#      there (qgis, python3-qgis, qgis-providers, xvfb, xauth, python3-pytest, ...). A stamp file marks each
#      finished stage; a complete root is reused as is, --rebuild deletes it and starts again.
#   2. Creates in the root the plugin's engine environment, /opt/loc2-engine: a venv (no system site
#      packages) of the host's Python 3.11 (QGIS's Python in Debian 13 is 3.13, for which no CPU torch wheel
#      is reachable here), with pyproject.toml's dependencies (or the requirements file it names) under
#      constraints.txt; it is updated when they or constraints.txt change.
#   3. Checks in the root: QGIS's version (Python and qgis_process), the QGIS desktop started headless under
#      Xvfb with a --code script, and the engine's imports (torch, rasterio, pyproj with its PROJ data, ...).
#   4. Runs, in the root, as the owner of the repository:
#        cd /src && LOC2_ENGINE_PYTHON=/opt/loc2-engine/bin/python dbus-run-session -- xvfb-run -a \
#          python3 -m pytest -p no:cacheprovider --confcutdir=tests/app tests/app [PYTEST ARGS...]
#      and prints a summary (QGIS version, tests passed/failed). The exit status is pytest's (0: all passed).
#      --tests PATH runs other tests instead (PATH inside the root: relative to /src, or absolute).
#
# Mounts while it runs (all bind mounts, ALWAYS unmounted on exit, failure or Ctrl-C included):
#   /proc /sys /dev /dev/pts /dev/shm; the repository at /src (read-write: tests write tests/artifacts/);
#   read-only: the host's Python 3.11 ($LOC2_ENGINE_BASE_PYTHON, default /root/.pyenv/versions/3.11.7, at
#   the same path) and the host's local pip sources and configuration (/opt/wheels, /opt/pypi*,
#   /etc/pip.conf, /etc/xdg/pip, where they exist), so that pip in the root installs the same CPU torch.
#
# Cost (measured on a 2-core Debian 12 host with a fast mirror): the first build takes about 3 minutes
# (debootstrap, 421 MB of QGIS packages, pip) and 3.5 GB of disk (QGIS and the system 2 GB, the engine venv
# 1.5 GB); a later run with the cached root adds about 6 s of checks to the tests' own time.
#
# Environment: LOC2_DEBIAN13_ROOT (the root's folder), LOC2_DEBIAN13_MIRROR (Debian mirror URL; default:
# the host apt's), LOC2_ENGINE_BASE_PYTHON (the Python 3.11 prefix the engine venv is made from).
# Not part of CI (too slow): developers run it by hand and quote its summary.
set -euo pipefail

usage() { sed -n '3,/^set -euo pipefail/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; }

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROOT="${LOC2_DEBIAN13_ROOT:-/var/tmp/loc2-debian13}"
ROOT="${ROOT%/}"
SUITE=trixie
BASE_PY="${LOC2_ENGINE_BASE_PYTHON:-/root/.pyenv/versions/3.11.7}"
BASE_PY="${BASE_PY%/}"
ENGINE=/opt/loc2-engine                      # inside the root
RUN_DIR=/tmp/loc2-check                      # inside the root: scratch of this script, emptied each run
HOST_PIP_PATHS=(/opt/wheels /opt/pypi /opt/pypi-more /etc/pip.conf /etc/xdg/pip)
# QGIS and what the tests need; plus the shared libraries the host's Python 3.11 modules link to.
QGIS_DEBS=(qgis python3-qgis qgis-providers xvfb xauth python3-pytest
  ca-certificates locales fonts-dejavu-core dbus-daemon procps git)
PY311_DEBS=(libssl3t64 libsqlite3-0 libffi8 libbz2-1.0 liblzma5 zlib1g libreadline8t64 libncursesw6
  libuuid1 libexpat1 libnsl2 libcrypt1 libstdc++6 libgomp1)
STAMP_BASE=.loc2-stamp-base
STAMP_QGIS=.loc2-stamp-qgis
STAMP_ENGINE=.loc2-stamp-engine
CLEAN_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

REBUILD=0
SHELL_ONLY=0
TESTS=tests/app
PYTEST_ARGS=()
while [ $# -gt 0 ]; do
  case "$1" in
    -h | --help) usage; exit 0 ;;
    --rebuild) REBUILD=1 ;;
    --shell) SHELL_ONLY=1 ;;
    --tests) [ $# -ge 2 ] || { echo "--tests needs a PATH" >&2; exit 2; }; TESTS="$2"; shift ;;
    --tests=*) TESTS="${1#--tests=}" ;;
    --) shift; PYTEST_ARGS+=("$@"); break ;;
    *) PYTEST_ARGS+=("$1") ;;
  esac
  shift
done

log() { printf '\n=== %s\n' "$*"; }
die() { printf 'check_qgis_debian13: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "needs root (debootstrap, chroot, mount)"
for tool in debootstrap chroot mount umount flock; do
  command -v "$tool" > /dev/null || die "$tool is missing (apt-get install debootstrap util-linux)"
done
[ -x "$BASE_PY/bin/python3.11" ] || die "no Python 3.11 at $BASE_PY (set LOC2_ENGINE_BASE_PYTHON)"
case "$ROOT" in "" | / | /var | /var/tmp | /tmp) die "refusing LOC2_DEBIAN13_ROOT=$ROOT" ;; esac
case "$ROOT/" in "$REPO"/*) die "the root must lie outside the repository ($ROOT)" ;; esac

# The Debian mirror apt uses on this host (deb822 "URIs:" or one-line "deb URI"), else deb.debian.org.
apt_uri() {  # $1: the path the URI ends with (debian or debian-security)
  cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2> /dev/null \
    | sed -e 's/#.*//' | grep -oE "https?://[^ ]+/$1/?( |\$)" | head -n1 | tr -d ' ' | sed 's:/$::' || true
}
MIRROR="${LOC2_DEBIAN13_MIRROR:-$(apt_uri debian)}"
MIRROR="${MIRROR:-http://deb.debian.org/debian}"
SECURITY_MIRROR="$(apt_uri debian-security)"

# --- mounts, always undone ------------------------------------------------------------------------------
MOUNTS=()
mounted_under_root() { awk -v r="$ROOT" '$5 == r || index($5, r "/") == 1 {print $5}' /proc/self/mountinfo; }

bind() {  # bind SRC DST-inside-root [ro]
  local src="$1" dst="$ROOT$2"
  if [ -d "$src" ]; then mkdir -p "$dst"; else mkdir -p "$(dirname "$dst")"; [ -e "$dst" ] || : > "$dst"; fi
  mount --bind "$src" "$dst"
  MOUNTS+=("$dst")
  if [ "${3:-}" = ro ]; then mount -o remount,bind,ro "$dst"; fi
}

root_pids() {  # processes whose root directory is the chroot (all started by this script)
  local p
  for p in /proc/[0-9]*; do
    [ "$(readlink "$p/root" 2> /dev/null || true)" != "$ROOT" ] || echo "${p#/proc/}"
  done
}

kill_root_processes() {  # give them 3 s to end by themselves (after Ctrl-C), then TERM, then KILL
  local pids=() pid i
  for i in 1 2 3 4 5 6 7; do
    mapfile -t pids < <(root_pids)
    [ ${#pids[@]} -gt 0 ] || return 0
    sleep 0.5
  done
  for pid in "${pids[@]}"; do
    echo "check_qgis_debian13: stopping process $pid left in the root: $(tr '\0' ' ' 2> /dev/null < "/proc/$pid/cmdline")" >&2
  done
  kill -TERM "${pids[@]}" 2> /dev/null || true
  for i in 1 2 3 4 5 6 7 8 9 10; do
    mapfile -t pids < <(root_pids)
    [ ${#pids[@]} -gt 0 ] || return 0
    sleep 0.5
  done
  kill -KILL "${pids[@]}" 2> /dev/null || true
  sleep 0.5
}

cleanup() {
  local rc=$? i
  trap - EXIT INT TERM
  kill_root_processes
  for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do
    umount "${MOUNTS[i]}" 2> /dev/null || umount -l "${MOUNTS[i]}" \
      || echo "check_qgis_debian13: could not unmount ${MOUNTS[i]}" >&2
  done
  MOUNTS=()
  local left
  left="$(mounted_under_root)"
  [ -z "$left" ] || echo "check_qgis_debian13: still mounted under $ROOT:"$'\n'"$left" >&2
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mount_all() {
  bind /proc /proc
  bind /sys /sys
  bind /dev /dev
  bind /dev/pts /dev/pts
  [ -d /dev/shm ] && bind /dev/shm /dev/shm
  bind "$REPO" /src
  bind "$BASE_PY" "$BASE_PY" ro
  # Its folders in the root must be traversable by the repository's owner (the root's /root is 0700):
  # the venv's python links there, and that Python's RUNPATH is absolute, so it cannot move elsewhere.
  local d
  d="$(dirname "$BASE_PY")"
  while [ "$d" != / ]; do chmod o+x "$ROOT$d"; d="$(dirname "$d")"; done
  local p
  for p in "${HOST_PIP_PATHS[@]}"; do [ -e "$p" ] && bind "$p" "$p" ro; done
  cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf" 2> /dev/null || true
}

root_size() {  # disk used by the root itself, not by what is bind-mounted into it
  local m ex=()
  for m in "${MOUNTS[@]}"; do ex+=("--exclude=$m"); done
  du -sh --one-file-system "${ex[@]}" "$ROOT" 2> /dev/null | cut -f1
}

# Run a command in the root with a clean environment (plus the host's PIP_* settings), as root.
in_root() {
  local pipenv=()
  mapfile -t pipenv < <(env | grep -E '^PIP_' || true)
  chroot "$ROOT" /usr/bin/env -i PATH="$CLEAN_PATH" HOME=/root LANG=C.UTF-8 LC_ALL=C.UTF-8 \
    DEBIAN_FRONTEND=noninteractive PYTHONDONTWRITEBYTECODE=1 "${pipenv[@]}" "$@"
}

# The same as the owner of the repository (so nothing in it becomes root's), in $RUN_DIR's home.
OWNER_UID="$(stat -c %u "$REPO")"
OWNER_GID="$(stat -c %g "$REPO")"
add_owner_account() {  # D-Bus (and others) need the owner's user and group in the root's databases
  grep -q "^[^:]*:[^:]*:$OWNER_GID:" "$ROOT/etc/group" || echo "loc2-$OWNER_GID:x:$OWNER_GID:" >> "$ROOT/etc/group"
  grep -q "^[^:]*:[^:]*:$OWNER_UID:" "$ROOT/etc/passwd" \
    || echo "loc2-$OWNER_UID:x:$OWNER_UID:$OWNER_GID:Loc2 checks:$RUN_DIR/home:/bin/bash" >> "$ROOT/etc/passwd"
}
as_owner() {
  chroot --userspec="$OWNER_UID:$OWNER_GID" "$ROOT" /usr/bin/env -i PATH="$CLEAN_PATH" HOME="$RUN_DIR/home" \
    LANG=C.UTF-8 LC_ALL=C.UTF-8 PYTHONDONTWRITEBYTECODE=1 XDG_RUNTIME_DIR="$RUN_DIR/xdg" \
    LOC2_ENGINE_PYTHON="$ENGINE/bin/python" LOC2_APP_BASE_PYTHON="$BASE_PY/bin/python3.11" "$@"
}

# --- one run at a time per root -------------------------------------------------------------------------
mkdir -p "$(dirname "$ROOT")"
exec 9> "$ROOT.lock"
flock -n 9 || die "another run is using $ROOT (lock $ROOT.lock)"
left="$(mounted_under_root)"
[ -z "$left" ] || die "something is still mounted under $ROOT (an interrupted run?); unmount it first:"$'\n'"$left"

T0=$SECONDS
if [ "$REBUILD" = 1 ] && [ -e "$ROOT" ]; then
  log "--rebuild: deleting $ROOT"
  rm -rf --one-file-system "$ROOT"
fi

# --- stage 1: Debian 13 base system ---------------------------------------------------------------------
if [ ! -f "$ROOT/$STAMP_BASE" ]; then
  [ ! -e "$ROOT" ] || { log "incomplete root at $ROOT: deleting it"; rm -rf --one-file-system "$ROOT"; }
  log "debootstrap $SUITE from $MIRROR into $ROOT"
  debootstrap --variant=minbase --include=ca-certificates "$SUITE" "$ROOT" "$MIRROR"
  {
    echo "Types: deb"
    echo "URIs: $MIRROR"
    echo "Suites: $SUITE $SUITE-updates"
    echo "Components: main"
    echo "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg"
    if [ -n "$SECURITY_MIRROR" ]; then
      echo
      echo "Types: deb"
      echo "URIs: $SECURITY_MIRROR"
      echo "Suites: $SUITE-security"
      echo "Components: main"
      echo "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg"
    fi
  } > "$ROOT/etc/apt/sources.list.d/debian.sources"
  : > "$ROOT/etc/apt/sources.list"
  # no services are started by package scripts in the root
  printf '#!/bin/sh\nexit 101\n' > "$ROOT/usr/sbin/policy-rc.d"
  chmod 755 "$ROOT/usr/sbin/policy-rc.d"
  # no documentation or man pages: about 150 MB less
  cat > "$ROOT/etc/dpkg/dpkg.cfg.d/01-loc2-nodoc" << 'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
EOF
  date -u +%FT%TZ > "$ROOT/$STAMP_BASE"
fi

mount_all

if [ "$SHELL_ONLY" = 1 ]; then
  log "shell in $ROOT (the repository is /src; exit to unmount)"
  in_root TERM="${TERM:-xterm}" PS1='(debian13) \w# ' bash --norc -i || true
  exit 0
fi

# --- stage 2: QGIS from Debian 13 -----------------------------------------------------------------------
want_qgis="$(printf '%s\n' "${QGIS_DEBS[@]}" "${PY311_DEBS[@]}" | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$ROOT/$STAMP_QGIS" 2> /dev/null || true)" != "$want_qgis" ]; then
  log "apt-get install ${QGIS_DEBS[*]} (and Python 3.11's libraries)"
  in_root apt-get update -q
  in_root apt-get install -y -q --no-install-recommends "${QGIS_DEBS[@]}" "${PY311_DEBS[@]}"
  in_root apt-get clean
  echo "$want_qgis" > "$ROOT/$STAMP_QGIS"
fi

# --- stage 3: the engine's venv (host Python 3.11, CPU torch) -------------------------------------------
# The host's own certificate authorities (a TLS-intercepting proxy's, a company's) are trusted in the root
# too, or pip cannot reach PyPI from there.
if [ -d /usr/local/share/ca-certificates ] \
  && ! diff -rq /usr/local/share/ca-certificates "$ROOT/usr/local/share/ca-certificates" > /dev/null 2>&1; then
  log "trusting the host's local certificate authorities in the root"
  rm -rf "$ROOT/usr/local/share/ca-certificates"
  cp -a /usr/local/share/ca-certificates "$ROOT/usr/local/share/ca-certificates"
  in_root update-ca-certificates --fresh > /dev/null
fi
# The engine's requirements as pyproject.toml gives them, read by the engine's Python (tomllib): pip
# arguments, one a line: [project] dependencies, or "-r FILE" for [tool.setuptools.dynamic] dependency files.
# With "hash", also the files' contents (the venv is updated when they or constraints.txt change).
cat > "$ROOT/usr/local/lib/loc2-engine-requirements.py" << 'EOF'
import sys
import tomllib
from pathlib import Path

src = Path("/src")
meta = tomllib.loads((src / "pyproject.toml").read_text())
project = meta["project"]
if "dependencies" in project:
    print("\n".join(project["dependencies"]))
else:
    files = meta["tool"]["setuptools"]["dynamic"]["dependencies"]["file"]
    for name in [files] if isinstance(files, str) else files:
        print(f"-r\n{src / name}")
        if sys.argv[1:] == ["hash"]:
            print((src / name).read_text())
EOF
engine_args=()
mapfile -t engine_args < <(in_root "$BASE_PY/bin/python3.11" /usr/local/lib/loc2-engine-requirements.py)
[ ${#engine_args[@]} -gt 0 ] || die "could not read the engine's requirements from pyproject.toml"
engine_inputs="$(in_root "$BASE_PY/bin/python3.11" /usr/local/lib/loc2-engine-requirements.py hash)"
want_engine="$(printf '%s\n' "$BASE_PY" "$engine_inputs" "$(cat "$REPO/constraints.txt")" | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$ROOT/$STAMP_ENGINE" 2> /dev/null || true)" != "$want_engine" ]; then
  if [ ! -x "$ROOT$ENGINE/bin/python" ] || ! grep -q "^home = $BASE_PY/bin\$" "$ROOT$ENGINE/pyvenv.cfg"; then
    log "creating the engine venv $ENGINE from $BASE_PY"
    rm -rf --one-file-system "$ROOT$ENGINE"
    in_root "$BASE_PY/bin/python3.11" -m venv "$ENGINE"
    in_root "$ENGINE/bin/python" -m pip install -q --no-cache-dir --upgrade pip
  fi
  log "pip install -c /src/constraints.txt ${engine_args[*]}"
  in_root "$ENGINE/bin/python" -m pip install --no-cache-dir --progress-bar off -c /src/constraints.txt \
    "${engine_args[@]}"
  echo "$want_engine" > "$ROOT/$STAMP_ENGINE"
  echo "root built or updated in $((SECONDS - T0)) s; size: $(root_size)"
fi

# --- checks in the root ---------------------------------------------------------------------------------
rm -rf --one-file-system "$ROOT$RUN_DIR"
mkdir -p "$ROOT$RUN_DIR/home" "$ROOT$RUN_DIR/xdg" "$ROOT$RUN_DIR/profiles"
add_owner_account
chown -R "$OWNER_UID:$OWNER_GID" "$ROOT$RUN_DIR"
chmod 700 "$ROOT$RUN_DIR/xdg"

log "engine: $ENGINE/bin/python"
cat > "$ROOT$RUN_DIR/engine_check.py" << 'EOF'
import sys
import cv2, geopandas, numpy, pyproj, rasterio, shapely, torch
from pyproj import CRS, Transformer
utm = CRS("EPSG:32632")
x, y = Transformer.from_crs("EPSG:4326", utm, always_xy=True).transform(9.0, 45.0)
assert abs(x - 500000.0) < 1e-3 and 4.98e6 < y < 4.99e6, (x, y)
with rasterio.Env():
    assert rasterio.crs.CRS.from_epsg(32632).to_epsg() == 32632
print(f"python {sys.version.split()[0]}, torch {torch.__version__} (CUDA: {torch.version.cuda}), "
      f"numpy {numpy.__version__}, rasterio {rasterio.__version__}, pyproj {pyproj.__version__} "
      f"(PROJ {pyproj.proj_version_str}, data {pyproj.datadir.get_data_dir()}), shapely {shapely.__version__}, "
      f"geopandas {geopandas.__version__}, cv2 {cv2.__version__}; EPSG:32632 transform ok")
EOF
ENGINE_INFO="$(as_owner "$ENGINE/bin/python" "$RUN_DIR/engine_check.py")" || die "the engine environment is broken"
echo "$ENGINE_INFO"

log "QGIS in the root"
QGIS_VERSION="$(as_owner python3 -c 'from qgis.core import Qgis; print(Qgis.version())')" \
  || die "python3 -c 'from qgis.core import Qgis' failed in the root"
QGIS_PYTHON="$(as_owner python3 -c 'import sys; print(sys.version.split()[0])')"
echo "QGIS $QGIS_VERSION (Python $QGIS_PYTHON)"
as_owner env QT_QPA_PLATFORM=offscreen qgis_process --version 2> /dev/null | sed 's/^/  qgis_process: /' \
  || die "qgis_process --version failed"

# The desktop, headless: start it with a --code script that writes a file and quits. The script runs before
# QGIS's event loop starts, where QgsApplication.exit() alone is ignored (QGIS would stay open): the exit is
# queued with a timer. dbus-run-session gives QGIS a session bus that ends with it (else D-Bus autolaunch
# leaves a dbus-launch behind).
cat > "$ROOT$RUN_DIR/desktop_check.py" << EOF
from qgis.core import Qgis, QgsApplication
from qgis.PyQt.QtCore import QTimer
from qgis.utils import iface
with open("$RUN_DIR/desktop_ok.txt", "w") as f:
    f.write(f"{Qgis.version()} | {iface.mainWindow().windowTitle()}\n")
QTimer.singleShot(0, lambda: QgsApplication.exit(0))
EOF
t_start=$EPOCHREALTIME
set +e
as_owner timeout 180 dbus-run-session -- xvfb-run -a qgis --nologo --noversioncheck --profiles-path "$RUN_DIR/profiles" \
  --code "$RUN_DIR/desktop_check.py" > "$ROOT$RUN_DIR/desktop.log" 2>&1
desktop_rc=$?
set -e
desktop_s="$(awk -v a="$t_start" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.1f", b - a}')"
if [ -s "$ROOT$RUN_DIR/desktop_ok.txt" ]; then
  DESKTOP="started, ran the --code script (\"$(cat "$ROOT$RUN_DIR/desktop_ok.txt")\"), exit status $desktop_rc, $desktop_s s"
else
  DESKTOP="FAILED (exit status $desktop_rc, $desktop_s s); log: $ROOT$RUN_DIR/desktop.log"
fi
echo "QGIS desktop: $DESKTOP"
if [ "$desktop_rc" != 0 ] || [ ! -s "$ROOT$RUN_DIR/desktop_ok.txt" ]; then
  tail -n 30 "$ROOT$RUN_DIR/desktop.log" >&2
  die "the QGIS desktop did not start and quit cleanly under Xvfb"
fi

# --- the tests ------------------------------------------------------------------------------------------
case "$TESTS" in /*) tests_host="$ROOT$TESTS" ;; *) tests_host="$REPO/$TESTS" ;; esac
[ -e "$tests_host" ] || die "no tests at $TESTS (inside the root: relative to /src or absolute); use --tests PATH"
# --confcutdir: only the tests' own conftest.py files are loaded. The real-QGIS tests use only the standard
# library, pytest and qgis (QGIS's Python 3.13 has no torch), and reach the engine through
# LOC2_ENGINE_PYTHON; "Install engine" makes its environment from the host's Python 3.11
# (LOC2_APP_BASE_PYTHON), for which this machine holds a CPU build of PyTorch.
confcut="$TESTS"
[ -d "$tests_host" ] || confcut="$(dirname "$TESTS")"
# --basetemp: one temporary folder, emptied by pytest at each run (an installed engine takes 1.5 GB)
pytest_cmd=(python3 -m pytest -p no:cacheprovider "--confcutdir=$confcut" --basetemp=/tmp/loc2-pytest
  "$TESTS" "${PYTEST_ARGS[@]}")
log "cd /src && LOC2_ENGINE_PYTHON=$ENGINE/bin/python dbus-run-session -- xvfb-run -a ${pytest_cmd[*]}"
set +e
as_owner bash -c 'cd /src && exec dbus-run-session -- xvfb-run -a "$@"' pytest "${pytest_cmd[@]}" 2>&1 \
  | tee "$ROOT$RUN_DIR/pytest.log"
test_rc=${PIPESTATUS[0]}
set -e
result="$(grep -E '^=+ .* in [0-9.]+s' "$ROOT$RUN_DIR/pytest.log" | tail -n1 | sed -E 's/^=+ //; s/ =+$//')"

log "summary"
echo "root:        $ROOT (Debian $(cat "$ROOT/etc/debian_version"), $(root_size))"
echo "QGIS:        $QGIS_VERSION, Python $QGIS_PYTHON"
echo "desktop:     $DESKTOP"
echo "engine:      $ENGINE_INFO"
echo "tests:       $TESTS ${PYTEST_ARGS[*]}"
echo "result:      ${result:-no pytest summary line} (pytest exit status $test_rc)"
echo "total time:  $((SECONDS - T0)) s"
if [ "$test_rc" = 0 ]; then echo "PASSED"; else echo "FAILED"; fi
exit "$test_rc"
