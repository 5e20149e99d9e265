#!/bin/sh
# bench_train_step.sh — dojo against PyTorch on the same machine, side by side:
# whole training steps of the same network, input shape, thread count and
# optimizer, run in alternation (dojo, torch eager, torch compile, then again,
# ROUNDS times) so that other work on the machine hits every runner alike;
# prints the median of each runner and the ratios dojo/torch for clips/s and
# for peak memory, with the load average (/proc/loadavg) next to every figure.
#
# Settings (environment): DOJO (binary, build/dojo), MODELS (r3d_mini),
# INPUT (NxCxTxHxW, 4x3x8x56x56), THREADS (2), STEPS (3 timed steps per run),
# WARMUP (1), ROUNDS (3), CLASSES (400), PYTHONS (interpreters with torch to
# compare: /usr/bin/python3 and /tmp/torchvenv/bin/python when present),
# RESULTS (file that keeps the JSON lines; a temporary file by default),
# REPORT_ONLY=1 (print the table of an existing RESULTS file, run nothing).
# `make bench-peers` runs it on r3d_18 and r2plus1d_18 at 8x3x8x112x112.
set -u
DOJO=${DOJO:-build/dojo}
MODELS=${MODELS:-r3d_mini}
INPUT=${INPUT:-4x3x8x56x56}
THREADS=${THREADS:-2}
STEPS=${STEPS:-3}
WARMUP=${WARMUP:-1}
ROUNDS=${ROUNDS:-3}
CLASSES=${CLASSES:-400}
if [ -z "${PYTHONS:-}" ]; then
    PYTHONS=/usr/bin/python3
    [ -x /tmp/torchvenv/bin/python ] && PYTHONS="$PYTHONS /tmp/torchvenv/bin/python"
fi
here=$(dirname "$0")
peer="$here/peers/torch_train_step.py"
results=${RESULTS:-$(mktemp)}
if [ "${REPORT_ONLY:-0}" = 1 ]; then
    [ -s "$results" ] || { echo "bench_train_step.sh: REPORT_ONLY=1 needs RESULTS=FILE with JSON lines" >&2; exit 2; }
else
    : >"$results"

# The peer: Debian's python3-torch, installed when missing (root only).
if ! /usr/bin/python3 -c 'import torch, torchvision' 2>/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "installing the peer: apt-get install -y python3-torch python3-torchvision"
        apt-get install -y python3-torch python3-torchvision >/dev/null || echo "note: apt-get failed"
    else
        echo "note: python3-torch is missing and cannot be installed here; dojo runs alone"
    fi
fi
pythons=""
for py in $PYTHONS; do
    if "$py" -c 'import torch, torchvision' 2>/dev/null; then pythons="$pythons $py"
    else echo "note: $py has no torch/torchvision: skipped"; fi
done

# run LABEL COMMAND...: appends the command's JSON line to the results, or a
# line saying it failed (with the first line of its error).
run() {
    label=$1; shift
    if out=$("$@" 2>"$results.err"); then
        printf '%s\n' "$out" | tail -n 1 >>"$results"
    else
        err=$(head -n 1 "$results.err" | tr '"\\' "''")
        printf '{"runner":"%s","failed":"%s","loadavg_before":%s}\n' "$label" "$err" \
            "$(cut -d' ' -f1 /proc/loadavg)" >>"$results"
        echo "note: $label failed: $err"
    fi
}

echo "train-step: models $MODELS, input $INPUT, $THREADS threads, $ROUNDS rounds of $STEPS steps (+$WARMUP warm-up)"
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores"
for round in $(seq 1 "$ROUNDS"); do
    for model in $MODELS; do
        echo "round $round/$ROUNDS $model (load $(cut -d' ' -f1-3 /proc/loadavg))"
        run "dojo $model" "$DOJO" bench train-step --model "$model" --input "$INPUT" --threads "$THREADS" \
            --steps "$STEPS" --warmup "$WARMUP" --classes "$CLASSES" --json
        for py in $pythons; do
            for mode in eager compile; do
                run "torch $mode $model ($py)" "$py" "$peer" --model "$model" --input "$INPUT" \
                    --threads "$THREADS" --steps "$STEPS" --warmup "$WARMUP" --classes "$CLASSES" \
                    --mode "$mode" --json
            done
        done
    done
done
rm -f "$results.err"
fi

/usr/bin/python3 - "$results" <<'EOF'
# Medians per runner and model, and the ratios of dojo to each torch runner.
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
groups, notes = {}, []
for r in rows:
    if "failed" in r:
        notes.append(f"{r['runner']}: failed: {r['failed']}")
        continue
    if "skipped" in r:
        notes.append(f"torch {r['torch_version']} {r['mode']} {r['model']}: skipped: {r['skipped']}")
        continue
    runner = "dojo " + r.get("dojo_version", "") if "peer" not in r else f"torch {r['torch_version']} {r['mode']}"
    groups.setdefault((r["model"], runner), []).append(r)
med = lambda rs, k: statistics.median(x[k] for x in rs)
best = lambda rs: max(x["clips_per_s"] for x in rs)  # the least disturbed run
print(f"\n{'model':12} {'runner':27} {'runs':>4} {'ms/step':>10} {'clips/s':>9} {'best':>7} {'peak MB':>8} {'load':>5}"
      f" {'MFU':>6} {'dojo x clips/s':>14} {'(best)':>7} {'dojo x memory':>13}")
for model in sorted({m for m, _ in groups}):
    dojo = next((rs for (m, run), rs in groups.items() if m == model and run.startswith("dojo")), None)
    for (m, runner), rs in sorted(groups.items(), key=lambda kv: (not kv[0][1].startswith("dojo"), kv[0][1])):
        if m != model:
            continue
        mfu = f"{100 * med(rs, 'mfu'):5.1f}%" if "mfu" in rs[0] else ""
        ratio = best_ratio = mem = ""
        if dojo and not runner.startswith("dojo"):
            ratio = f"{med(dojo, 'clips_per_s') / med(rs, 'clips_per_s'):.2f}x"
            best_ratio = f"{best(dojo) / best(rs):.2f}x"
            mem = f"{med(dojo, 'peak_rss_mb') / med(rs, 'peak_rss_mb'):.2f}x"
        print(f"{model:12} {runner:27} {len(rs):4d} {med(rs, 'ms_per_step'):10.1f} {med(rs, 'clips_per_s'):9.3f}"
              f" {best(rs):7.3f} {med(rs, 'peak_rss_mb'):8.1f} {med(rs, 'loadavg_before'):5.2f} {mfu:>6} {ratio:>14}"
              f" {best_ratio:>7} {mem:>13}")
print("\nmedians over rounds; best = the fastest run (the least disturbed by other work); load = 1-minute load"
      " average before each run (median);\nMFU = 3 x forward FLOPs per step / time / FMA peak of the same run (a"
      " loaded machine lowers the peak measured too);\ndojo x clips/s > 1: dojo is faster; dojo x memory < 1: dojo"
      " uses less peak resident memory.")
for n in sorted(set(notes)):
    print("note:", n)
EOF
echo "JSON lines: $results"
