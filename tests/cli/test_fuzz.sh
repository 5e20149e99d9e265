# test_fuzz.sh — short libFuzzer runs over probe + decode from memory
# (tests/fuzz/fuzz_video.c), the .safetensors reader
# (tests/fuzz/fuzz_safetensors.c) and recipes and model files
# (tests/fuzz/fuzz_config.c): skipped without clang, and in the ASan pass of
# `make test` (the fuzz build has its own sanitizers; once is enough).
. tests/cli/lib.sh

case "$DOJO" in
*asan*) skip fuzz-short "runs in the release pass only" ;;
*)
    if ! command -v clang >/dev/null 2>&1; then
        skip fuzz-short "clang is not installed (tools/setup.sh installs it)"
    else
        expect fuzz-short 0 "Done [0-9]+ runs" -- sh tests/fuzz/run.sh 8
        expect fuzz-safetensors-short 0 "Done [0-9]+ runs" -- env FUZZ_TARGET=safetensors sh tests/fuzz/run.sh 4
        expect fuzz-config-short 0 "Done [0-9]+ runs" -- env FUZZ_TARGET=config sh tests/fuzz/run.sh 4
    fi
    ;;
esac
finish
