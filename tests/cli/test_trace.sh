# test_trace.sh — `dojo train --trace` in one process: RUNDIR/trace.rank0.json
# is a valid Chrome trace (tests/mpi/check_trace.c: parses, well-formed
# events nested in their steps, expected names); a full event buffer stops
# recording with one warning and the file says how many were dropped; a bad
# buffer size is refused naming its key. (Per-rank files under mpirun:
# tests/cli/test_mpi_train.sh.)
. tests/cli/lib.sh
TRACE="$(dirname "$DOJO")/tests/mpi/check_trace"
"$DOJO" gen motion --out "$TMP/d" --classes 2 --per-class 3 --frames 6 --size 32 --seed 4 >/dev/null 2>&1
A="--data $TMP/d --model tests/mpi/tiny_timesformer.yaml --frames 2 --size 32 --threads 1 --batch 2 --epochs 2"

expect train-trace 0 "timeline: .*trace.rank0.json \(30 events\)" -- "$DOJO" train $A --out "$TMP/a" --trace
expect trace-valid 0 "trace ok: 30 events \(6 steps, 0 all-reduces\)" -- "$TRACE" "$TMP/a/trace.rank0.json" 0 1
check trace-one-file [ "$(ls "$TMP/a" | grep -c '^trace')" = 1 ]
# 7 events: the first step whole, then the buffer is full
"$DOJO" train $A --out "$TMP/f" --set train.trace=true,train.trace_events=7 >"$TMP/f.log" 2>&1
check full-buffer-run [ $? = 0 ]
check full-buffer-warns-once [ "$(grep -c 'event buffer is full (7 events)' "$TMP/f.log")" = 1 ]
expect full-buffer-file 0 "trace ok: 7 events .* [1-9][0-9]* dropped" -- "$TRACE" "$TMP/f/trace.rank0.json" 0 1 --full
expect full-buffer-expected 1 "events were dropped" -- "$TRACE" "$TMP/f/trace.rank0.json" 0 1
expect trace-events-zero 1 "train.trace_events" -- "$DOJO" train $A --out "$TMP/z" --set train.trace_events=0
expect trace-bad-value 1 "train.trace" -- "$DOJO" train $A --out "$TMP/z" --set train.trace=maybe
printf '{"traceEvents": [{"name": "step", "ph": "X", "ts": 5, "dur": -1, "pid": 0, "tid": 0}]}' >"$TMP/neg.json"
expect checker-negative-dur 1 "negative" -- "$TRACE" "$TMP/neg.json" 0 1
printf '{"traceEvents": [' >"$TMP/cut.json"
expect checker-truncated 1 "not JSON" -- "$TRACE" "$TMP/cut.json" 0 1
finish
