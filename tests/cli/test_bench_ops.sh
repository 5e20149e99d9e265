# test_bench_ops.sh — `dojo bench ops`: runs on a tiny input, prints its
# table or one JSON object, and rejects bad options.
. tests/cli/lib.sh

tiny="--batch 1 --frames 1 --size 16 --threads 2"
# shellcheck disable=SC2086
expect bench-ops-table 0 "layer1 64->64 3x3x3 .*[0-9]" -- "$DOJO" bench ops $tiny --model r3d_18
check bench-ops-memory grep -q "batchnorm3d train" "$TMP/.out"
# shellcheck disable=SC2086
expect bench-ops-json 0 '^\{"conv3d":\[\{"model":"r2plus1d_18".*"memory_bound":\[' -- "$DOJO" bench ops $tiny --model r2plus1d_18 --json
# shellcheck disable=SC2086
expect bench-ops-bf16 0 "layer1 64->64 3x3x3 .*[0-9]x$" -- "$DOJO" bench ops $tiny --model r3d_18 --bf16
check bench-ops-bf16-summary grep -Eq "conv3d bf16 fwd\+bwd over all layers .*x the float32 convs" "$TMP/.out"
# shellcheck disable=SC2086
expect bench-ops-bf16-json 0 '"bf16_speedup":[0-9.]+.*"conv3d_bf16_speedup":' -- "$DOJO" bench ops $tiny --model r2plus1d_18 --bf16 --json
expect bench-ops-cpu-time 0 "1 threads, CPU time" -- "$DOJO" bench ops --batch 1 --frames 1 --size 16 --threads 1 --model r3d_18 --cpu-time
check bench-ops-cpu-time-table grep -Eq "layer1 64->64 3x3x3 .*[0-9]" "$TMP/.out"
expect bench-ops-bad-model 2 "--model must be r3d_18, r2plus1d_18, all or none" -- "$DOJO" bench ops --model vgg
# shellcheck disable=SC2086
expect bench-ops-none 0 "linear 512->400" -- "$DOJO" bench ops $tiny --model none
expect bench-ops-bad-size 2 "option '--size' must be between" -- "$DOJO" bench ops --size 3
expect bench-listed 0 "ops +conv3d" -- "$DOJO" bench --help
finish
