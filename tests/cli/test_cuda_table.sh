#!/bin/sh
# test_cuda_table.sh — every operator defined for the CPU graph (a dj_op_def
# in src/nn) has an entry in the CUDA operator table (src/core/cuda_table.c),
# so adding a CPU operator without deciding its CUDA side fails here.
. "$(dirname "$0")/lib.sh"

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
names=$(grep -ho 'dj_op_def dj_op_[a-z0-9_]* = {"[a-z0-9_]*"' "$ROOT"/src/nn/*.c | sed 's/.*{"\([a-z0-9_]*\)"/\1/')
check "CPU operators found" test -n "$names"
for n in $names; do
    check "CUDA table has $n" grep -q "{\"$n\"," "$ROOT/src/core/cuda_table.c"
done
finish
