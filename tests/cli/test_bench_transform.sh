#!/bin/sh
# test_bench_transform.sh — `dojo bench transform` runs, reports and checks its flags.
. "$(dirname "$0")/lib.sh"

expect bench-transform-runs 0 "ratio dojo f32 / bare swscale" -- "$DOJO" bench transform --frames 3 --size 32
expect bench-transform-figures 0 "full frame -> f32 normalised +[0-9]+ frames/s" -- "$DOJO" bench transform --frames 3
expect bench-transform-cropped 0 "crop at output size -> f32 +[0-9]+ frames/s" -- "$DOJO" bench transform --frames 3
expect bench-transform-turned 0 "full frame turned 90 -> f32 upright +[0-9]+ frames/s" -- "$DOJO" bench transform --frames 3 --width 96 --height 64
expect bench-transform-help 0 "best of 5 rounds" -- "$DOJO" bench transform --help
expect bench-transform-bad-size 2 "--size" -- "$DOJO" bench transform --size 0
expect bench-transform-listed 0 "transform" -- "$DOJO" bench --help
finish
