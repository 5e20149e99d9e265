#!/bin/sh
# bench_decode.sh — `dojo bench decode` against PyAV on the same clip plans.
#   bench/bench_decode.sh [BUILD] [DATA] [CLIPS]
# Without DATA it makes 4 clips of 320x240 H.264 (x264 defaults: 3 B-frames
# in a pyramid, GOP 32, 300 frames each) with the ffmpeg tool. dojo draws a
# seeded plan of random 16-frame clips and writes it (--plan-out); the PyAV
# peer (bench/peers/pyav_decode.py) decodes the same clips the usual PyAV way,
# and so does torchcodec (bench/peers/torchcodec_decode.py) where it imports.
# One decoder thread each. Every delivered frame is converted to SIZE x SIZE
# RGB (default 112, the training size of issue #4's target; 0: native):
# dojo with its loader's transform (channel-planar uint8, as the batch
# holds it), the peers as their users do (PyAV to_ndarray rgb24, torchcodec
# RGB24 tensors). DOJO_ARGS adds flags to dojo's runs (e.g. --packed: bare
# swscale to packed RGB24, the peers' conversion).
#
# Two plans (MODES):
#   independent  each clip on its own, a fresh reader each (a training
#                loader's case: a batch rarely holds two clips of one video)
#   grouped      clips sorted by video, one reader per video, clips starting
#                in one GOP read in one call (--order video --reuse --share;
#                the peer keeps its container and seeks once per group)
#   strided      independent clips of every 4th frame (--stride 4), where
#                skipping the non-reference frames between them matters
# ROUNDS rounds (default 3) alternate dojo and every peer, so load from other
# work hits all of them; the summary gives medians over rounds, the ratios of
# the medians (wall-clock, and per CPU second, which is what "per core" means
# on a busy machine) and the 1-minute load average before each run.
# PYTHONS: interpreters to try as peers (default: /usr/bin/python3, whose
# PyAV uses the system FFmpeg like dojo, then python3); each one that imports
# av and numpy is a peer. Installs PyAV with pip when none can.
set -eu
cd "$(dirname "$0")/.."
BUILD=${1:-build}
DATA=${2:-}
CLIPS=${3:-300}
ROUNDS=${ROUNDS:-3}
SIZE=${SIZE:-112}
DOJO_ARGS=${DOJO_ARGS:-}
MODES=${MODES:-independent grouped strided}
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

# peers PROBE PYTHONS: the interpreters among PYTHONS for which
# `python -c PROBE` succeeds, one per version it prints
peers() {
    found="" seen=""
    for p in $2; do
        command -v "$p" >/dev/null 2>&1 || continue
        v=$("$p" -c "$1" 2>/dev/null) || continue
        case " $seen " in *" $v "*) continue ;; esac
        seen="$seen $v"
        found="$found $p"
    done
    echo "$found"
}

PEERS=$(peers 'import av, numpy; print(av.__version__)' "${PYTHONS:-/usr/bin/python3 python3}")
if [ -z "$PEERS" ]; then
    echo "bench_decode: installing PyAV with pip" >&2
    python3 -m pip install --quiet av numpy >&2
    PEERS=python3
fi
# torchcodec peers: interpreters that import it (TC_PYTHONS; default
# python3 and /tmp/torchvenv/bin/python when present); none is installed
# here, as torchcodec needs a matching PyTorch (pip install torchcodec).
if [ -z "${TC_PYTHONS:-}" ]; then
    TC_PYTHONS=python3
    [ -x /tmp/torchvenv/bin/python ] && TC_PYTHONS="$TC_PYTHONS /tmp/torchvenv/bin/python"
fi
TC_PEERS=$(peers 'import torchcodec; print(torchcodec.__version__)' "$TC_PYTHONS")
[ -n "$TC_PEERS" ] || echo "bench_decode: no torchcodec peer (pip install torchcodec beside a PyTorch)" >&2

mode_args() {
    case "$1" in
    independent) echo "" ;;
    grouped) echo "--order video --reuse --share" ;;
    strided) echo "--stride 4" ;;
    *) echo "bench_decode: unknown mode $1" >&2; exit 2 ;;
    esac
}

load() { cut -d' ' -f1 /proc/loadavg; }

"$DOJO" index "$DATA" --out "$TMP/data.idx" --quiet
results="$TMP/results.jsonl"
: >"$results"
round=1
while [ "$round" -le "$ROUNDS" ]; do
    for mode in $MODES; do
        echo "round $round/$ROUNDS $mode (load $(cut -d' ' -f1-3 /proc/loadavg))" >&2
        l=$(load)
        # shellcheck disable=SC2046
        "$DOJO" bench decode "$TMP/data.idx" --clips "$CLIPS" --size "$SIZE" --plan-out "$TMP/plan-$mode.json" --json \
            $(mode_args "$mode") $DOJO_ARGS >"$TMP/one.json"
        printf '{"mode":"%s","runner":"dojo","load":%s,"r":%s}\n' "$mode" "$l" "$(cat "$TMP/one.json")" >>"$results"
        for py in $PEERS; do
            l=$(load)
            "$py" bench/peers/pyav_decode.py "$TMP/plan-$mode.json" --json >"$TMP/one.json"
            printf '{"mode":"%s","runner":"%s","load":%s,"r":%s}\n' "$mode" "$py" "$l" "$(cat "$TMP/one.json")" \
                >>"$results"
        done
        for py in $TC_PEERS; do
            l=$(load)
            "$py" bench/peers/torchcodec_decode.py "$TMP/plan-$mode.json" --json >"$TMP/one.json"
            printf '{"mode":"%s","runner":"torchcodec %s","load":%s,"r":%s}\n' "$mode" "$py" "$l" \
                "$(cat "$TMP/one.json")" >>"$results"
        done
    done
    round=$((round + 1))
done

python3 - "$results" <<'PYEOF'
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
med = lambda xs: statistics.median(xs)
modes = []
for r in rows:
    if r["mode"] not in modes:
        modes.append(r["mode"])
d0 = [r for r in rows if r["runner"] == "dojo"][0]["r"]
print("decode bench, frames to %s RGB (dojo: %s); medians of %d rounds; 1-minute load average before the runs: %s"
      % ("%dx%d" % (d0["size"], d0["size"]) if d0["size"] else "native-size", d0.get("convert", "?"),
         len([r for r in rows if r["runner"] == "dojo" and r["mode"] == modes[0]]),
         " ".join("%.1f" % r["load"] for r in rows)))
for mode in modes:
    runs = {}
    for r in rows:
        if r["mode"] == mode:
            runs.setdefault(r["runner"], []).append(r["r"])
    d = runs.pop("dojo")
    dw, dc = med([x["clips_per_s"] for x in d]), med([x["clips_per_cpu_s"] for x in d])
    print("%-11s dojo: %.1f clips/s, %.1f per CPU s, decoded per delivered %.3f, seeks per clip %.2f"
          % (mode, dw, dc, d[0]["decoded_per_delivered"], d[0]["seeks_per_clip"]))
    for runner, p in runs.items():
        pw, pc = med([x["clips_per_s"] for x in p]), med([x["clips_per_cpu_s"] for x in p])
        if "torchcodec" in p[0]:
            name = "torchcodec %s" % p[0]["torchcodec"]
            print("%-11s %s (torch %s, %s): %.1f clips/s, %.1f per CPU s"
                  % (mode, name, p[0]["torch"], runner.split()[-1], pw, pc))
        else:
            name = "PyAV %s" % p[0]["pyav"]
            print("%-11s %s (libavcodec %s, %s): %.1f clips/s, %.1f per CPU s, decoded per delivered %.3f"
                  % (mode, name, p[0]["libavcodec"], runner, pw, pc, p[0]["decoded_per_delivered"]))
        print("%-11s ratio dojo/%s: %.2fx wall-clock, %.2fx per CPU second" % (mode, name, dw / pw, dc / pc))
PYEOF
