# test_train.sh — dojo train / eval / predict on a tiny synthetic data set:
# outputs, multi-view eval, predictions, and bad input (exit status 1 with
# the file named, or 2 for a bad command line).
. tests/cli/lib.sh
export DOJO_CACHE="$TMP/cache"

"$DOJO" gen motion --out "$TMP/d" --classes 3 --per-class 4 --val-per-class 2 --frames 8 --size 32 --seed 1 \
    >/dev/null 2>&1
check gen-data [ -d "$TMP/d/train" ]
RUN="$TMP/runs/nested/run" # parents that do not exist yet are created
ARGS="--data $TMP/d/train --val $TMP/d/val --model r3d_mini --epochs 2 --batch 4 --frames 4 --size 32 --threads 1"
expect train 0 "validation top-1" -- "$DOJO" train $ARGS --out "$RUN" --set data.stride=1
check summary [ -s "$RUN/summary.json" ]
check summary-key grep -q '"val_top1"' "$RUN/summary.json"
check metrics-lines [ "$(grep -c '"split":"train"' "$RUN/metrics.jsonl")" -ge 2 ]
check tensorboard [ -n "$(ls "$RUN"/tb/events.out.tfevents.* 2>/dev/null)" ]
check report [ -s "$RUN/report.html" ]
expect train-again-refused 1 "already holds a run.*--resume" -- "$DOJO" train $ARGS --out "$RUN"
expect resume-more-epochs 0 "trained 3 epochs" -- "$DOJO" train $ARGS --out "$RUN" --resume --epochs 3 --set data.stride=1

CKPT="$RUN/checkpoints/last.safetensors"
expect eval 0 "video top-1" -- "$DOJO" eval "$CKPT" --data "$TMP/d/val"
expect eval-json 0 '"video_top1":.*"confusion":\[\[' -- "$DOJO" eval "$CKPT" --data "$TMP/d/val" --json --clips 2 --crops 3
expect eval-views 0 '"views_per_video":6' -- "$DOJO" eval "$CKPT" --data "$TMP/d/val" --json --clips 2 --crops 3
expect eval-needs-data 2 "--data is required" -- "$DOJO" eval "$CKPT"
expect eval-crops 2 "--crops is 1 or 3" -- "$DOJO" eval "$CKPT" --data "$TMP/d/val" --crops 2
V="$TMP/d/val/translate_up/translate_up_0000.mp4"
expect predict 0 "translate_" -- "$DOJO" predict "$CKPT" "$V" --top 2
expect predict-json 0 '^\{"path":".*","top":\[\{"label":"translate_' -- "$DOJO" predict "$CKPT" "$V" --json
expect predict-bad-video 1 "cannot be read \($TMP/nope.mp4\)" -- "$DOJO" predict "$CKPT" "$V" "$TMP/nope.mp4"
expect predict-needs-video 2 "expected at least 2 arguments" -- "$DOJO" predict "$CKPT"

# bad input
expect missing-data 1 "dojo: error: .*$TMP/none" -- "$DOJO" train --data "$TMP/none" --out "$TMP/r1"
mkdir -p "$TMP/empty/a" "$TMP/empty/b"
expect empty-classes 1 "dojo: error: .*$TMP/empty" -- "$DOJO" train --data "$TMP/empty" --out "$TMP/r2"
expect unknown-model 1 "unknown model; known models: .*r3d_18" -- "$DOJO" train $ARGS --model nope --out "$TMP/r3"
expect no-out 1 "no run folder" -- "$DOJO" train --data "$TMP/d/train"
expect unknown-recipe-key 1 "unknown config key 'optimiser' \(--set\)" -- "$DOJO" train $ARGS --out "$TMP/r4" --set optimiser.lr=1
expect bad-set 1 "is not KEY=VALUE" -- "$DOJO" train $ARGS --out "$TMP/r5" --set lr
expect resume-nothing 1 "no checkpoint to resume from" -- "$DOJO" train $ARGS --out "$TMP/r6" --resume
head -c 300 "$CKPT" > "$TMP/broken.safetensors"
expect eval-corrupt-checkpoint 1 "$TMP/broken.safetensors" -- "$DOJO" eval "$TMP/broken.safetensors" --data "$TMP/d/val"
expect eval-other-model 1 "dojo: error: " -- "$DOJO" eval "$CKPT" --data "$TMP/d/val" --model r2plus1d_mini
expect eval-missing-checkpoint 1 "$TMP/nope.safetensors" -- "$DOJO" eval "$TMP/nope.safetensors" --data "$TMP/d/val"
# a Kinetics-style CSV (label,youtube_id,time_start,time_end,split) as the
# training data: videos named <id>_<start:06d>_<end:06d>.mp4 under <label>/
mkdir -p "$TMP/k"
echo "label,youtube_id,time_start,time_end,split" > "$TMP/k/train.csv"
n=0
for f in "$TMP"/d/train/*/*.mp4; do
    label=$(basename "$(dirname "$f")")
    mkdir -p "$TMP/k/$label"
    n=$((n + 1))
    ln -s "$f" "$TMP/k/$label/vid$n""_000000_000010.mp4"
    echo "$label,vid$n,0,10,train" >> "$TMP/k/train.csv"
done
expect csv-index 0 "" -- "$DOJO" index "$TMP/k/train.csv" --out "$TMP/k.index"
expect csv-train 0 "trained 1 epochs" -- "$DOJO" train --data "$TMP/k/train.csv" --model r3d_mini --epochs 1 --batch 4 \
    --frames 4 --size 32 --threads 1 --out "$TMP/csvrun" --set data.stride=1

# killed with SIGKILL in the middle of training (possibly while writing a
# checkpoint): the last complete checkpoint loads and --resume goes on
K="$TMP/killed"
"$DOJO" train $ARGS --epochs 200 --out "$K" --set data.stride=1 >/dev/null 2>&1 &
pid=$!
i=0
while [ ! -f "$K/checkpoints/step-9.safetensors" ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
kill -9 $pid 2>/dev/null
wait $pid 2>/dev/null
check killed-left-no-temp-as-last [ -f "$K/checkpoints/last.safetensors" ]
expect killed-checkpoint-loads 0 "video top-1" -- "$DOJO" eval "$K/checkpoints/last.safetensors" --data "$TMP/d/val"
expect killed-run-resumes 0 "resuming from .*last.safetensors" -- "$DOJO" train $ARGS --epochs 5 --out "$K" --resume \
    --set data.stride=1

# killed at exact points of a checkpoint write (tests/cli/support/kill_at.c):
# before the rename that would replace last.safetensors, and after the first
# bytes of the second checkpoint's temporary. The previous checkpoint stays
# whole, the run resumes from it, and the crashed writer's temporary is
# removed by the next save.
KILL_AT="$(dirname "$DOJO")/tests/kill_at.so"
if [ -f "$KILL_AT" ]; then
    for spec in rename:last.safetensors:2 write:last.safetensors.tmp:2; do
        X="$TMP/kill-${spec%%:*}"
        expect "killed-at-$spec" 137 "" -- env LD_PRELOAD="$KILL_AT" DOJO_KILL_AT="$spec" \
            ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" \
            "$DOJO" train $ARGS --epochs 3 --out "$X" --set data.stride=1
        check "killed-at-$spec-left-temporary" [ -n "$(ls "$X"/checkpoints/*.tmp.* 2>/dev/null)" ]
        expect "killed-at-$spec-last-loads" 0 '"video_top1"' -- "$DOJO" eval "$X/checkpoints/last.safetensors" \
            --data "$TMP/d/val" --json
        expect "killed-at-$spec-resumes-from-epoch-1" 0 "resuming from .*last.safetensors: epoch 1 done" -- "$DOJO" train $ARGS --epochs 3 --out "$X" \
            --resume --set data.stride=1
        check "killed-at-$spec-temporary-removed" [ -z "$(ls "$X"/checkpoints/*.tmp.* 2>/dev/null)" ]
    done
else
    skip killed-at-exact-points "$KILL_AT not built"
fi

# --bf16 (train.bf16): mixed precision, said in the log and kept in the recipe; resumes; evaluates
B="$TMP/run-bf16"
expect train-bf16 0 "mixed precision: bf16 matrix products" -- "$DOJO" train $ARGS --out "$B" --bf16 \
    --set data.stride=1
check train-bf16-recipe grep -q '"bf16":true' "$B/config.json"
expect train-bf16-resume 0 "trained 3 epochs" -- "$DOJO" train $ARGS --out "$B" --resume --epochs 3 --bf16 \
    --set data.stride=1
expect train-bf16-eval 0 "video top-1" -- "$DOJO" eval "$B/checkpoints/last.safetensors" --data "$TMP/d/val"
expect train-bf16-set 0 "mixed precision" -- "$DOJO" train $ARGS --epochs 1 --out "$TMP/run-bf16-set" \
    --set data.stride=1,train.bf16=true
expect train-bf16-bad-value 1 "train.bf16" -- "$DOJO" train $ARGS --out "$TMP/r7" --set train.bf16=sometimes
expect train-bf16-flag-value 2 "bf16" -- "$DOJO" train $ARGS --out "$TMP/r8" --bf16=yes
expect train-help-bf16 0 "--bf16" -- "$DOJO" train --help

# data.worker_nice: the decode threads' priority, 0..19
expect train-worker-nice 0 "trained 1 epochs" -- "$DOJO" train $ARGS --epochs 1 --out "$TMP/run-nice" \
    --set data.stride=1,data.worker_nice=0
expect train-worker-nice-bad 1 "a nice value in 0..19, not 20 \\(data.worker_nice\\)" -- "$DOJO" train $ARGS \
    --out "$TMP/r10" --set data.worker_nice=20

# --conv-algo (train.conv_algo): said in the log, kept in the recipe; a bad value is refused
expect train-conv-gemm 0 "conv3d \(gemm\): 0 of [0-9]+ convolutions run Winograd" -- "$DOJO" train $ARGS --epochs 1 \
    --out "$TMP/run-gemm" --conv-algo gemm --set data.stride=1
check train-conv-gemm-recipe grep -q '"conv_algo":"gemm"' "$TMP/run-gemm/config.json"
expect train-conv-auto 0 "conv3d \(auto\): [0-9]+ of [0-9]+ convolutions" -- "$DOJO" train $ARGS --epochs 1 \
    --out "$TMP/run-auto" --set data.stride=1
expect train-conv-bad 1 "auto, gemm or winograd, not 'fft' \\(train.conv_algo\\)" -- "$DOJO" train $ARGS --out "$TMP/r9" \
    --conv-algo fft

# the demo path, made tiny: the data set is generated into DOJO_CACHE, the
# recipe's keys apply, and its checkpoint evaluates (the saved recipe has
# the demo section)
DEMO_SET="demo.classes=2,demo.per_class=4,demo.val_per_class=2,demo.frames=8,demo.size=32"
DEMO_SET="$DEMO_SET,data.size=32,data.frames=4,data.stride=1,train.batch=4,data.short_side=36"
expect demo-tiny 0 "trained 1 epochs" -- "$DOJO" train --epochs 1 --threads 1 --out "$TMP/demo" --set "$DEMO_SET"
check demo-cache [ -f "$DOJO_CACHE"/motion3-c2-n4-v2-f8-s32-seed0/.complete ]
expect demo-reuses-cache 0 "using the synthetic data set" -- "$DOJO" train --epochs 1 --threads 1 \
    --out "$TMP/demo2" --set "$DEMO_SET"
expect demo-eval 0 "video top-1" -- "$DOJO" eval "$TMP/demo/checkpoints/last.safetensors" \
    --data "$DOJO_CACHE/motion3-c2-n4-v2-f8-s32-seed0/val"
finish
