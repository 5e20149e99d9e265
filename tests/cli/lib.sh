# lib.sh — helpers for command-line tests (sourced by tests/cli/test_*.sh).
#   expect NAME STATUS PATTERN -- COMMAND...   runs COMMAND, checks its exit
#       status and that stdout+stderr match the grep -E PATTERN ("" = any)
# DOJO is the binary under test; TMP a fresh folder removed at exit.
: "${DOJO:=build/dojo}"
PASSED=0; FAILED=0; SKIPPED=0
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

expect() {
    name=$1; want=$2; pattern=$3; shift 3
    [ "$1" = "--" ] && shift
    "$@" >"$TMP/.out" 2>&1
    got=$?
    if [ "$got" != "$want" ]; then
        echo "FAIL $name: exit status $got, expected $want: $*"
        sed 's/^/    /' "$TMP/.out" | head -n 20
        FAILED=$((FAILED + 1)); return 1
    fi
    if [ -n "$pattern" ] && ! grep -Eq -- "$pattern" "$TMP/.out"; then
        echo "FAIL $name: output does not match /$pattern/: $*"
        sed 's/^/    /' "$TMP/.out" | head -n 20
        FAILED=$((FAILED + 1)); return 1
    fi
    echo "ok   $name"
    PASSED=$((PASSED + 1))
}

# check NAME COMMAND...: passes when COMMAND exits 0
check() {
    name=$1; shift
    if "$@"; then echo "ok   $name"; PASSED=$((PASSED + 1));
    else echo "FAIL $name: $*"; FAILED=$((FAILED + 1)); fi
}

skip() { echo "SKIP $1: $2"; SKIPPED=$((SKIPPED + 1)); }

finish() {
    echo "# result: $PASSED passed, $FAILED failed, $SKIPPED skipped"
    [ "$FAILED" = 0 ]
}
