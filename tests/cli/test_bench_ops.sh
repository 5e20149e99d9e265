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
# the algorithm each conv ran: Winograd on stride-1 3x3x3 (on AVX-512), the GEMM on strided ones, or as asked
if "$DOJO" version | grep -q avx512; then
    # shellcheck disable=SC2086
    expect bench-ops-algo 0 "layer1 64->64 3x3x3 .* wino 2x4x4 " -- "$DOJO" bench ops --batch 2 --frames 4 --size 32 --threads 2 --model r3d_18
    check bench-ops-algo-strided grep -Eq "layer2 64->128 3x3x3 s2 .* gemm " "$TMP/.out"
    # DOJO_CONV=gemm: auto means the implicit GEMM everywhere; an explicit winograd still asks for it
    expect bench-ops-env-gemm 0 "layer1 64->64 3x3x3 .* gemm " -- env DOJO_CONV=gemm "$DOJO" bench ops --batch 2 \
        --frames 4 --size 32 --threads 2 --model r3d_18
    expect bench-ops-env-gemm-forced 0 "layer1 64->64 3x3x3 .* wino 2x4x4 " -- env DOJO_CONV=gemm "$DOJO" bench ops \
        --batch 2 --frames 4 --size 32 --threads 2 --model r3d_18 --conv-algo winograd
else
    skip bench-ops-algo "no AVX-512 here: Winograd does not run"
fi
# shellcheck disable=SC2086
expect bench-ops-algo-gemm 0 "layer1 64->64 3x3x3 .* gemm " -- "$DOJO" bench ops $tiny --model r3d_18 --conv-algo gemm
# shellcheck disable=SC2086
expect bench-ops-algo-json 0 '"algo":"gemm".*"conv_algo":"gemm"' -- "$DOJO" bench ops $tiny --model r3d_18 --conv-algo gemm --json
expect bench-ops-bad-algo 2 "--conv-algo must be auto, gemm or winograd, not 'fft'" -- "$DOJO" bench ops --conv-algo fft
expect bench-ops-bad-model 2 "--model must be r3d_18, r2plus1d_18, all or none" -- "$DOJO" bench ops --model vgg
# shellcheck disable=SC2086
expect bench-ops-none 0 "linear 512->400" -- "$DOJO" bench ops $tiny --model none
expect bench-ops-bad-size 2 "option '--size' must be between" -- "$DOJO" bench ops --size 3
expect bench-listed 0 "ops +conv3d" -- "$DOJO" bench --help
finish
