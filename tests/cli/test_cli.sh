# test_cli.sh — the `dojo` command's conventions: help, version, bad command
# lines (message and exit status 2), failures (exit 1).
. tests/cli/lib.sh

expect help-flag 0 "^usage: dojo" -- "$DOJO" --help
expect help-lists-train 0 "train" -- "$DOJO" --help
expect no-command 2 "usage: dojo" -- "$DOJO"
expect help-cmd 0 "^usage: dojo train" -- "$DOJO" help train
expect cmd-help 0 "^usage: dojo train" -- "$DOJO" train --help
expect cmd-help-lists-options 0 "--epochs N" -- "$DOJO" train --help
# every command's and benchmark's help states each default once
for c in $("$DOJO" --help | sed -n 's/^  \([a-z][a-z-]*\)  .*/\1/p') \
         $("$DOJO" bench --help | sed -n 's/^  \([a-z][a-z-]*\)  .*/bench \1/p' | tr ' ' '+'); do
    c=$(echo "$c" | tr '+' ' ')
    [ "$c" = help ] && continue
    check "help-defaults-once-$(echo "$c" | tr " " -)" sh -c '! "$1" $2 --help 2>&1 | grep -q "default.*default"' _ "$DOJO" "$c"
done
expect help-unknown-cmd 2 "dojo: error: unknown command 'nope'" -- "$DOJO" help nope
expect unknown-command 2 "^dojo: error: unknown command 'frobnicate'" -- "$DOJO" frobnicate
expect unknown-global-option 2 "^dojo: error: unknown option '--bogus'" -- "$DOJO" --bogus version
expect unknown-option 2 "^dojo: error: unknown option '--bogus' \(dojo train\)" -- "$DOJO" train --bogus
expect unknown-option-hint 2 "try 'dojo train --help'" -- "$DOJO" train --bogus
expect short-option 2 "unknown option '-x'" -- "$DOJO" train -x
expect missing-value 2 "^dojo: error: option '--epochs' needs a value \(N\) \(dojo train\)" -- "$DOJO" train --epochs
expect bad-integer 2 "^dojo: error: option '--epochs' expects a whole number, got '1x0' \(dojo train\)" -- "$DOJO" train --epochs 1x0
expect bad-integer-empty 2 "option '--batch' expects a whole number, got ''" -- "$DOJO" train --batch=
expect integer-out-of-range 2 "option '--epochs' must be between 1 and" -- "$DOJO" train --epochs 0
expect integer-overflow 2 "expects a whole number" -- "$DOJO" train --epochs 99999999999999999999999
expect bad-double 2 "^dojo: error: option '--lr' expects a number, got 'fast' \(dojo train\)" -- "$DOJO" train --lr fast
expect nan-double 2 "option '--lr' expects a number, got 'nan'" -- "$DOJO" train --lr nan
expect flag-with-value 2 "option '--resume' takes no value" -- "$DOJO" train --resume=yes
expect unexpected-positional 2 "unexpected argument 'extra'" -- "$DOJO" version extra
expect equals-form 1 "no-such-data" -- "$DOJO" train --epochs=3 --lr=0.5 --data "$TMP/no-such-data" --out "$TMP/run"
expect version 0 "^dojo [0-9]+\.[0-9]+\.[0-9]+" -- "$DOJO" version
expect version-flag 0 "^dojo [0-9]+\.[0-9]+\.[0-9]+" -- "$DOJO" --version
expect version-ffmpeg 0 "libavcodec [0-9]+\." -- "$DOJO" version
expect version-backends 0 "^backends: +cpu" -- "$DOJO" version
expect version-json 0 '^\{"version":"[0-9.]+","build_type":"(release|asan|debug)"' -- "$DOJO" version --json
expect quiet-accepted 0 "^dojo " -- "$DOJO" --quiet version
expect bench-unknown 2 "unknown benchmark 'nope'" -- "$DOJO" bench nope

# The CPU features dojo reports match the kernel's view in /proc/cpuinfo.
if [ -r /proc/cpuinfo ] && grep -q '^flags' /proc/cpuinfo; then
    flags=$(grep -m1 '^flags' /proc/cpuinfo)
    features=$("$DOJO" version | sed -n 's/^features: *//p')
    for pair in avx2:avx2 fma:fma avx512f:avx512f avx512bw:avx512bw avx512vl:avx512vl \
                avx512_bf16:avx512_bf16 avx512_vnni:avx512_vnni; do
        kernel=${pair%%:*}; ours=${pair#*:}
        has_kernel=0; has_ours=0
        echo "$flags" | grep -qw "$kernel" && has_kernel=1
        echo " $features " | grep -q " $ours " && has_ours=1
        check "cpu-feature-$ours-matches-cpuinfo" [ "$has_kernel" = "$has_ours" ]
    done
else
    skip cpu-features "no /proc/cpuinfo flags line"
fi

finish
