#!/bin/sh
# bench_transform.sh — frame transform throughput (one thread), 112 and 224 outputs.
set -u
: "${DOJO:=build/dojo}"
"$DOJO" bench transform --size 112 && "$DOJO" bench transform --size 224 --frames 1000
