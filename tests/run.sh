#!/bin/sh
# run.sh — runs every test of dojo against one or more build folders and ends
# with the line "N passed, N failed, N skipped" summing all of them.
#   tests/run.sh build build/asan
# Unit tests are the binaries BUILD/tests/test_*; command-line tests are the
# scripts tests/cli/test_*.sh, run with DOJO=BUILD/dojo. Each prints a last
# line "# result: P passed, F failed, S skipped"; a test program that dies
# before printing it counts as one failure.
set -u
cd "$(dirname "$0")/.."
[ $# -gt 0 ] || set -- build
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
total_p=0; total_f=0; total_s=0
failed_list=""
log_dir=$(mktemp -d)
trap 'rm -rf "$log_dir"' EXIT

run_one() { # build name command...
    b=$1; name=$2; shift 2
    log="$log_dir/out"
    start=$(date +%s)
    "$@" >"$log" 2>&1
    rc=$?
    secs=$(( $(date +%s) - start ))
    line=$(grep '^# result:' "$log" | tail -n 1)
    if [ -n "$line" ]; then
        p=$(echo "$line" | sed 's/.*: \([0-9]*\) passed.*/\1/')
        f=$(echo "$line" | sed 's/.* \([0-9]*\) failed.*/\1/')
        s=$(echo "$line" | sed 's/.* \([0-9]*\) skipped.*/\1/')
    else
        p=0; f=1; s=0
    fi
    if [ "$rc" != 0 ] && [ "$f" = 0 ]; then f=1; fi
    total_p=$((total_p + p)); total_f=$((total_f + f)); total_s=$((total_s + s))
    if [ "$f" != 0 ]; then
        echo "FAIL [$b] $name ($p passed, $f failed, ${secs}s, exit $rc)"
        sed 's/^/    /' "$log" | tail -n 60
        failed_list="$failed_list [$b]$name"
    else
        echo "ok   [$b] $name ($p passed, $s skipped, ${secs}s)"
        grep '^SKIP' "$log" | sed 's/^/    /'
    fi
}

for b in "$@"; do
    if [ ! -x "$b/dojo" ]; then
        echo "FAIL [$b] build folder has no dojo binary (run make first)"
        total_f=$((total_f + 1))
        continue
    fi
    for t in "$b"/tests/test_*; do
        [ -x "$t" ] || continue
        run_one "$b" "$(basename "$t")" env DOJO="$b/dojo" "$t"
    done
    for t in tests/cli/test_*.sh; do
        [ -e "$t" ] || continue
        run_one "$b" "$(basename "$t")" env DOJO="$b/dojo" sh "$t"
    done
done

[ -z "$failed_list" ] || echo "failed:$failed_list"
echo "$total_p passed, $total_f failed, $total_s skipped"
[ "$total_f" = 0 ]
