# test_bench_pointwise.sh — `dojo bench pointwise`: options, a one-operator
# smoke run in text and JSON (figures are printed, never asserted).
. tests/cli/lib.sh

expect bp-help 0 "--op NAME" -- "$DOJO" bench pointwise --help
expect bp-listed 0 "pointwise" -- "$DOJO" bench --help
expect bp-bad-op 2 "unknown operator 'nope' for --op" -- "$DOJO" bench pointwise --op nope
expect bp-bad-reps 2 "option '--reps' must be between 1 and" -- "$DOJO" bench pointwise --reps 0
expect bp-bad-threads 2 "expects a whole number" -- "$DOJO" bench pointwise --threads two
expect bp-relu-text 0 "^relu +[0-9.]+ +[0-9.]+ +[0-9.]+x" -- "$DOJO" bench pointwise --small --reps 1 --op relu --threads 2
expect bp-memcpy-line 0 "memcpy of the activation .* GB/s on 1 thread" -- "$DOJO" bench pointwise --small --reps 1 --op scale
expect bp-json 0 '^\{"threads":2,.*"memcpy_pool_gbs":[0-9.e+-]+,"ops":\[\{"op":"softmax_196","fwd_ms"' -- \
    "$DOJO" bench pointwise --small --reps 1 --op softmax_196 --threads 2 --json
finish
