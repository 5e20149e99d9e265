#!/bin/sh
# bench_decode.sh — `dojo bench decode` against PyAV on the same clip plan.
#   bench/bench_decode.sh [BUILD] [DATA] [CLIPS]
# Without DATA it makes 4 clips of 320x240 H.264 (x264 defaults: 3 B-frames,
# GOP 32, 300 frames each) with the ffmpeg tool. dojo draws a seeded plan of
# random 16-frame clips and writes it (--plan-out); bench/peers/pyav_decode.py
# decodes the same clips the usual PyAV way. Both convert every delivered
# frame to RGB24 with one decoder thread. Prints both results and the ratios
# (wall-clock, and per CPU second, which is what "per core" means on a busy
# machine). Installs PyAV with pip when no python3 can import it.
set -eu
cd "$(dirname "$0")/.."
BUILD=${1:-build}
DATA=${2:-}
CLIPS=${3:-300}
DOJO=${DOJO:-$BUILD/dojo}
[ -x "$DOJO" ] || { echo "bench_decode: build first (make)" >&2; exit 1; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

if [ -z "$DATA" ]; then
    DATA="$TMP/data"
    mkdir -p "$DATA"
    for i in 1 2 3 4; do
        ffmpeg -nostdin -v error -y -f lavfi -i "testsrc2=size=320x240:rate=25" -frames:v 300 \
            -pix_fmt yuv420p -c:v libx264 -g 32 "$DATA/clip$i.mp4"
    done
fi

PY=""
for p in python3 /usr/bin/python3; do
    if command -v "$p" >/dev/null 2>&1 && "$p" -c 'import av, numpy' >/dev/null 2>&1; then PY=$p; break; fi
done
if [ -z "$PY" ]; then
    echo "bench_decode: installing PyAV with pip" >&2
    python3 -m pip install --quiet av numpy >&2
    PY=python3
fi

"$DOJO" index "$DATA" --out "$TMP/data.idx" --quiet
"$DOJO" bench decode "$TMP/data.idx" --clips "$CLIPS" --plan-out "$TMP/plan.json" --json | tee "$TMP/dojo.json"
"$PY" bench/peers/pyav_decode.py "$TMP/plan.json" --json | tee "$TMP/pyav.json"
"$PY" - "$TMP/dojo.json" "$TMP/pyav.json" <<'PYEOF'
import json, sys
d = json.load(open(sys.argv[1])); p = json.load(open(sys.argv[2]))
print("decode bench: dojo %.1f clips/s (%.1f per CPU s), PyAV %s %.1f clips/s (%.1f per CPU s)"
      % (d["clips_per_s"], d["clips_per_cpu_s"], p["pyav"], p["clips_per_s"], p["clips_per_cpu_s"]))
print("ratio dojo/PyAV: %.2fx wall-clock, %.2fx per CPU second; decoded per delivered %.3f vs %.3f; "
      "seeks per clip %.2f vs %.2f"
      % (d["clips_per_s"] / p["clips_per_s"], d["clips_per_cpu_s"] / p["clips_per_cpu_s"],
         d["decoded_per_delivered"], p["decoded_per_delivered"], d["seeks_per_clip"], p["seeks_per_clip"]))
PYEOF
