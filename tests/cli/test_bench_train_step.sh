#!/bin/sh
# test_bench_train_step.sh — `dojo bench train-step`: a tiny model and input,
# text and JSON keys, --profile, and bad flags. No timing is asserted.
. "$(dirname "$0")/lib.sh"
tiny="--model r3d_mini --input 2x3x2x16x16 --threads 2 --steps 1 --warmup 0"

# shellcheck disable=SC2086
expect "train-step text" 0 "clips/s.*[0-9].*" -- "$DOJO" bench train-step $tiny
# shellcheck disable=SC2086
expect "train-step text mfu" 0 "of peak \(MFU\)" -- "$DOJO" bench train-step $tiny
# shellcheck disable=SC2086
expect "train-step json keys" 0 \
    '^\{"model":"r3d_mini","input":"2x3x2x16x16","threads":2,"steps":1,.*"ms_per_step":[0-9.e+-]+,"clips_per_s":[0-9.e+-]+,"gflops":[0-9.e+-]+,"mfu":[0-9.e+-]+,"peak_rss_mb":[0-9.e+-]+' \
    -- "$DOJO" bench train-step $tiny --json
# shellcheck disable=SC2086
expect "train-step json flops" 0 '"forward_gflop":0\.0[0-9]*[1-9]' -- "$DOJO" bench train-step $tiny --json
# shellcheck disable=SC2086
expect "train-step profile text" 0 "conv3d +12 " -- "$DOJO" bench train-step $tiny --profile
# shellcheck disable=SC2086
expect "train-step profile nodes" 0 "layer1\.0\.conv1\.0" -- "$DOJO" bench train-step $tiny --profile --top 100
# shellcheck disable=SC2086
expect "train-step profile json" 0 '"profile":\{"operators":\[\{"name":"conv3d","nodes":12,' -- \
    "$DOJO" bench train-step $tiny --profile --json
expect "train-step classes" 0 '"clips_per_s"' -- "$DOJO" bench train-step --model r3d_mini \
    --input 2x3x2x16x16 --threads 1 --steps 2 --warmup 1 --classes 3 --json
expect "train-step r2plus1d" 0 '"mfu"' -- "$DOJO" bench train-step --model r2plus1d_mini \
    --input 2x3x2x16x16 --threads 1 --steps 1 --warmup 0 --json
# --bf16: mixed precision, the dtype key, the same FLOP count, MFU against the bf16 (or FMA) peak
# shellcheck disable=SC2086
expect "train-step bf16 text" 0 "kernels, bf16 mixed precision" -- "$DOJO" bench train-step $tiny --bf16
# shellcheck disable=SC2086
expect "train-step bf16 peak" 0 "(bf16|fma) peak .* of peak \(MFU\)" -- "$DOJO" bench train-step $tiny --bf16
# shellcheck disable=SC2086
expect "train-step bf16 json" 0 '"mfu":[0-9.e+-]+,"peak_rss_mb":[0-9.e+-]+,"dtype":"bf16","peak_kind":"(bf16|fma) peak"' -- \
    "$DOJO" bench train-step $tiny --bf16 --json
# shellcheck disable=SC2086
expect "train-step f32 dtype" 0 '"dtype":"float32"' -- "$DOJO" bench train-step $tiny --json
# shellcheck disable=SC2086
f32_flops=$("$DOJO" bench train-step $tiny --json | grep -o '"forward_gflop":[0-9.e+-]*')
# shellcheck disable=SC2086
bf16_flops=$("$DOJO" bench train-step $tiny --json --bf16 | grep -o '"forward_gflop":[0-9.e+-]*')
check "train-step bf16 same flops" sh -c '[ -n "$1" ] && [ "$1" = "$2" ]' _ "$f32_flops" "$bf16_flops"
# shellcheck disable=SC2086
expect "train-step bf16 converted" 0 '"dtype":"bf16","peak_kind":"fma peak"' -- \
    env DOJO_CPU=avx2 "$DOJO" bench train-step $tiny --bf16 --json
# shellcheck disable=SC2086
expect "train-step bf16 compare" 0 '"f32_ms_per_step":[0-9.e+-]+,"speedup_vs_f32":[0-9.e+-]+' -- \
    "$DOJO" bench train-step $tiny --bf16 --compare --json
# shellcheck disable=SC2086
expect "train-step bf16 compare text" 0 "float32 step .* alternating in this run -> bf16 [0-9.]+x faster" -- \
    "$DOJO" bench train-step $tiny --bf16 --compare
# --conv-algo and --compare without --bf16: against conv3d on the implicit GEMM
# shellcheck disable=SC2086
expect "train-step compare gemm" 0 '"conv_algo":"auto","gemm_ms_per_step":[0-9.e+-]+,"speedup_vs_gemm":[0-9.e+-]+' -- \
    "$DOJO" bench train-step $tiny --compare --json
# shellcheck disable=SC2086
expect "train-step compare gemm text" 0 "GEMM step .* alternating in this run -> [0-9.]+x faster" -- \
    "$DOJO" bench train-step $tiny --compare
# shellcheck disable=SC2086
expect "train-step conv-algo text" 0 "float32, conv3d winograd," -- "$DOJO" bench train-step $tiny --conv-algo winograd
# shellcheck disable=SC2086
expect "train-step compare gemm itself" 2 "compares with --conv-algo gemm itself" -- \
    "$DOJO" bench train-step $tiny --conv-algo gemm --compare
# shellcheck disable=SC2086
expect "train-step bad conv-algo" 2 "--conv-algo must be auto, gemm or winograd, not 'fft'" -- \
    "$DOJO" bench train-step $tiny --conv-algo fft
expect "train-step help" 0 "3 x forward FLOPs" -- "$DOJO" bench train-step --help
expect "train-step help bf16" 0 "bf16 dot-product peak" -- "$DOJO" bench train-step --help
expect "train-step listed" 0 "train-step" -- "$DOJO" bench --help

# bad flags and inputs
expect "train-step no model" 2 "--model" -- "$DOJO" bench train-step --input 1x3x2x16x16
expect "train-step unknown model" 1 "no_such_net" -- "$DOJO" bench train-step --model no_such_net \
    --input 1x3x2x16x16
expect "train-step input 4 dims" 2 "--input '1x3x16x16'" -- "$DOJO" bench train-step --model r3d_mini \
    --input 1x3x16x16
expect "train-step input 6 dims" 2 "--input" -- "$DOJO" bench train-step --model r3d_mini --input 1x3x2x16x16x2
expect "train-step input channels" 2 "C = 3" -- "$DOJO" bench train-step --model r3d_mini --input 1x4x2x16x16
expect "train-step input zero" 2 "--input" -- "$DOJO" bench train-step --model r3d_mini --input 0x3x2x16x16
expect "train-step input text" 2 "--input" -- "$DOJO" bench train-step --model r3d_mini --input axbxcxdxe
expect "train-step input huge" 2 "--input" -- "$DOJO" bench train-step --model r3d_mini --input 1x3x2x16x99999999
expect "train-step input too small" 1 "more than one value per channel" -- "$DOJO" bench train-step \
    --model r3d_mini --input 1x3x1x1x1 --steps 1 --warmup 0
expect "train-step zero steps" 2 "steps" -- "$DOJO" bench train-step --model r3d_mini --steps 0
expect "train-step bad threads" 2 "threads" -- "$DOJO" bench train-step --model r3d_mini --threads abc
expect "train-step unknown flag" 2 "frobnicate" -- "$DOJO" bench train-step --model r3d_mini --frobnicate
printf 'arch: video_resnet\nwidths: [1, 2\n' >"$TMP/broken.yaml"
expect "train-step broken model file" 1 "broken.yaml" -- "$DOJO" bench train-step --model "$TMP/broken.yaml" \
    --input 1x3x2x16x16
finish
