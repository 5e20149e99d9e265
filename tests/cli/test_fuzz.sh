# test_fuzz.sh — a short libFuzzer run over probe + decode from memory
# (tests/fuzz/fuzz_video.c): skipped without clang, and in the ASan pass of
# `make test` (the fuzz build has its own sanitizers; once is enough).
. tests/cli/lib.sh

case "$DOJO" in
*asan*) skip fuzz-short "runs in the release pass only" ;;
*)
    if ! command -v clang >/dev/null 2>&1; then
        skip fuzz-short "clang is not installed (tools/setup.sh installs it)"
    else
        expect fuzz-short 0 "Done [0-9]+ runs" -- sh tests/fuzz/run.sh 8
    fi
    ;;
esac
finish
