#!/usr/bin/env bash
# One prepared GPU check, at most 4 minutes: photos/s at batch 1, 8, 32 at the published VIGOR and KITTI
# sizes (random weights), the solver's time on the device, peak GPU memory, the backbone's fraction of the
# GPU's bf16 peak, and a 50-photo synthetic city through `loc2 localize --device cuda` whose poses must
# agree with the CPU's (the CPU localizes the first 3 of them: 50 would take too long there).
#
#   benchmarks/gpu_check.sh                      # on a CUDA machine (runs `make setup` if .venv is missing)
#   benchmarks/gpu_check.sh --device cpu --quick # the same steps, small, on the CPU (run by make test)
#
# --quick: the tiny backbone size, batch 1 and 2, a city of 3 panoramas; the "device" run is the CPU at one
# thread in batches of 2 against the CPU at two threads one photo at a time, which must agree bit for bit
# (the reproducibility the CPU promises, at any thread count and batch size).
set -euo pipefail
cd "$(dirname "$0")/.."
DEVICE=cuda
QUICK=0
while [ $# -gt 0 ]; do
  case "$1" in
    --device) DEVICE="$2"; shift 2 ;;
    --quick) QUICK=1; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
PY=${PY:-.venv/bin/python}
if [ ! -x "$PY" ]; then make setup; fi
LOC2=("$PY" -m loc2.core.cli)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
FLAGS=(--device "$DEVICE")
[ "$QUICK" = 1 ] && FLAGS+=(--quick)
START=$SECONDS

echo "== throughput and backbone (random weights)"
"$PY" benchmarks/gpu_check.py figures "${FLAGS[@]}"

echo "== loc2 localize on a synthetic city"
PHOTOS=$([ "$QUICK" = 1 ] && echo 3 || echo 50)
"${LOC2[@]}" demo --city-only --panoramas "$PHOTOS" --pinhole 0 --out "$WORK" > /dev/null 2>&1
CITY="$WORK/city"
mkdir -p "$WORK/cpu_photos"
for photo in $(ls "$CITY/photos" | head -n 3); do cp "$CITY/photos/$photo" "$WORK/cpu_photos/"; done
COMMON=(--ortho "$CITY/ortho.tif" --solver published --seed 7)
t0=$SECONDS
if [ "$QUICK" = 1 ]; then
  OMP_NUM_THREADS=1 "${LOC2[@]}" localize "${COMMON[@]}" --images "$CITY/photos" --device cpu --batch-size 2 --out "$WORK/device.csv" > /dev/null 2>&1
else
  "${LOC2[@]}" localize "${COMMON[@]}" --images "$CITY/photos" --device "$DEVICE" --out "$WORK/device.csv" > /dev/null 2>&1
fi
echo "$PHOTOS photos localized on $DEVICE in $((SECONDS - t0)) s (model loading included)"
OMP_NUM_THREADS=2 "${LOC2[@]}" localize "${COMMON[@]}" --images "$WORK/cpu_photos" --device cpu --out "$WORK/cpu.csv" > /dev/null 2>&1
if [ "$QUICK" = 1 ]; then
  "$PY" benchmarks/gpu_check.py compare "$WORK/device.csv" "$WORK/cpu.csv" --tolerance-m 0 --tolerance-deg 0
else
  "$PY" benchmarks/gpu_check.py compare "$WORK/device.csv" "$WORK/cpu.csv"
fi
echo "== done in $((SECONDS - START)) s"
