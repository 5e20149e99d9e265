#!/bin/sh
# bench_ops.sh — `dojo bench ops`: conv3d / norm / pool speed on the layer
# shapes of r3d_18 and r2plus1d_18. Run by bench/run.sh with DOJO set.
# The full torchvision batch (8x3x8x112x112) takes minutes per conv with the
# placeholder GEMM on a small machine, so the default here is one clip;
# override with DOJO_BENCH_OPS_ARGS (e.g. "--batch 8 --threads 16").
set -u
dojo=${DOJO:-build/dojo}
# shellcheck disable=SC2086
exec "$dojo" bench ops ${DOJO_BENCH_OPS_ARGS:---batch 1} "$@"
