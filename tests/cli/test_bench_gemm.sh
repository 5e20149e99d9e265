#!/bin/sh
# test_bench_gemm.sh — `dojo bench gemm`: small runs, text and JSON, bad flags.
. "$(dirname "$0")/lib.sh"

expect "bench gemm text" 0 "GFLOP/s.*of peak" -- "$DOJO" bench gemm --m 40 --n 50 --k 30 --threads 2 --repeat 2
expect "bench gemm json" 0 '"gflops":[0-9].*"peak_gflops":[0-9].*"fraction":[0-9]' -- \
    "$DOJO" bench gemm --m 33 --n 17 --k 65 --threads 1 --repeat 1 --json
expect "bench gemm bf16" 0 '"bf16_vs_f32":[0-9]' -- \
    "$DOJO" bench gemm --m 64 --n 64 --k 64 --threads 1 --repeat 1 --bf16 --json
expect "bench gemm scalar" 0 '"isa":"scalar"' -- env DOJO_CPU=scalar \
    "$DOJO" bench gemm --m 16 --n 16 --k 16 --threads 1 --repeat 1 --json
expect "bench gemm help" 0 "--repeat" -- "$DOJO" bench gemm --help
expect "bench gemm zero size" 2 "m" -- "$DOJO" bench gemm --m 0
expect "bench gemm bad number" 2 "threads" -- "$DOJO" bench gemm --threads abc
expect "bench gemm unknown flag" 2 "frobnicate" -- "$DOJO" bench gemm --frobnicate
expect "bench lists gemm" 0 "gemm" -- "$DOJO" bench --help
finish
