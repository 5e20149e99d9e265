#!/bin/sh
# run.sh — `make bench`: runs every benchmark of dojo with the release build.
# Usage: bench/run.sh BUILD_DIR
set -u
build=${1:-build}
dojo="$build/dojo"
status=0
for b in bench/bench_*.sh; do
    [ -e "$b" ] || continue
    echo "== $b"
    DOJO="$dojo" sh "$b" || status=1
done
exit $status
