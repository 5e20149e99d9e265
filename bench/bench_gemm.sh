#!/bin/sh
# bench_gemm.sh — GEMM throughput against the FMA peak measured in the same
# run: 2048^3 float32 and bfloat16 on 2 threads, then float32 on 1 thread.
# The machine may be shared: figures are medians of the repeats.
set -u
: "${DOJO:=build/dojo}"
"$DOJO" bench gemm --m 2048 --n 2048 --k 2048 --threads 2 --bf16 --repeat 7 &&
"$DOJO" bench gemm --m 2048 --n 2048 --k 2048 --threads 1 --repeat 5
