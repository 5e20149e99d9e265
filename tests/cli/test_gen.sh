# test_gen.sh — `dojo gen`: bad command lines (exit 2 with a message), a tiny
# motion data set (layout, classes.txt, manifest, same seed = same bytes) and
# the test clips, checked with ffprobe where it is installed.
. tests/cli/lib.sh

# ---- command line ----
expect gen-help-lists-gen 0 "gen +generate synthetic videos" -- "$DOJO" --help
expect gen-no-kind 2 "missing KIND \(motion or testclips\)" -- "$DOJO" gen
expect gen-help 0 "^usage: dojo gen KIND" -- "$DOJO" gen --help
expect gen-unknown-kind 2 "^dojo: error: unknown kind 'bogus' \(motion or testclips\) \(dojo gen\)" -- "$DOJO" gen bogus
expect gen-motion-help 0 "^usage: dojo gen motion" -- "$DOJO" gen motion --help
expect gen-motion-help-classes 0 "translate_right, translate_left" -- "$DOJO" gen motion --help
expect gen-motion-no-out 2 "missing option '--out DIR' \(dojo gen motion\)" -- "$DOJO" gen motion
expect gen-motion-too-many-classes 2 "option '--classes' must be between 1 and 8, got 9 \(dojo gen motion\)" -- \
    "$DOJO" gen motion --out "$TMP/x" --classes 9
expect gen-motion-zero-classes 2 "option '--classes' must be between 1 and 8, got 0" -- \
    "$DOJO" gen motion --out "$TMP/x" --classes 0
expect gen-motion-bad-size 2 "option '--size' expects N or WxH \(1..4096\), got 'big'" -- \
    "$DOJO" gen motion --out "$TMP/x" --size big
expect gen-motion-bad-size-tail 2 "option '--size' expects N or WxH" -- "$DOJO" gen motion --out "$TMP/x" --size 64x
expect gen-motion-odd-size 2 "option '--size' must be even and at least 16, got 33x33" -- \
    "$DOJO" gen motion --out "$TMP/x" --size 33
expect gen-motion-tiny-size 2 "must be even and at least 16, got 8x8" -- "$DOJO" gen motion --out "$TMP/x" --size 8
expect gen-motion-one-frame 2 "option '--frames' must be between 2 and" -- "$DOJO" gen motion --out "$TMP/x" --frames 1
expect gen-motion-bad-per-class 2 "option '--per-class' expects a whole number, got 'many'" -- \
    "$DOJO" gen motion --out "$TMP/x" --per-class many
expect gen-motion-negative-seed 2 "option '--seed' must be between 0 and" -- "$DOJO" gen motion --out "$TMP/x" --seed -1
expect gen-motion-unknown-option 2 "unknown option '--colour' \(dojo gen motion\)" -- \
    "$DOJO" gen motion --out "$TMP/x" --colour red
expect gen-motion-spin-order 2 "option '--spin' expects MIN,MAX with 0 <= MIN <= MAX <= 90, got '9,3'" -- \
    "$DOJO" gen motion --out "$TMP/x" --spin 9,3
expect gen-motion-zoom-too-fast 2 "option '--zoom' expects MIN,MAX with 0 <= MIN <= MAX <= 0.5, got '0.6'" -- \
    "$DOJO" gen motion --out "$TMP/x" --zoom 0.6
expect gen-motion-speed-garbage 2 "option '--speed' expects MIN,MAX .*got '0.1,fast'" -- \
    "$DOJO" gen motion --out "$TMP/x" --speed 0.1,fast
expect gen-motion-speed-trailing 2 "option '--speed' expects MIN,MAX" -- "$DOJO" gen motion --out "$TMP/x" --speed 0.1,
expect gen-motion-noise-range 2 "option '--noise' must be between 0 and 100" -- \
    "$DOJO" gen motion --out "$TMP/x" --noise 101
expect gen-motion-distractors-range 2 "option '--distractors' must be between 0 and 1" -- \
    "$DOJO" gen motion --out "$TMP/x" --distractors 2
expect gen-motion-positional 2 "unexpected argument 'extra'" -- "$DOJO" gen motion --out "$TMP/x" extra
expect gen-motion-bad-codec 1 "^dojo: error: encoder 'nope' is not in this build of libavcodec \(--codec\)" -- \
    "$DOJO" gen motion --out "$TMP/x" --codec nope --classes 1 --per-class 1 --frames 2 --size 16
check gen-motion-bad-flags-write-nothing [ ! -e "$TMP/x" ]
: >"$TMP/afile"
expect gen-motion-out-is-file 1 "not a folder" -- \
    "$DOJO" gen motion --out "$TMP/afile" --classes 1 --per-class 1 --frames 2 --size 16
expect gen-testclips-no-out 2 "missing option '--out DIR' \(dojo gen testclips\)" -- "$DOJO" gen testclips
expect gen-testclips-bad-size 2 "option '--size' expects WxH, got '12y4'" -- "$DOJO" gen testclips --out "$TMP/t" --size 12y4
expect gen-testclips-small 2 "at least 64x48, got 32x32" -- "$DOJO" gen testclips --out "$TMP/t" --size 32
expect gen-testclips-frames 2 "option '--frames' must be between 1 and 256, got 300" -- \
    "$DOJO" gen testclips --out "$TMP/t" --frames 300

# ---- a tiny motion data set: 2 classes x 2 clips x 8 frames at 32x32, 1 val clip per class ----
gen_tiny() {
    "$DOJO" --quiet gen motion --out "$1" --classes 2 --per-class 2 --val-per-class 1 --frames 8 --size 32 --seed "$2"
}
expect gen-motion-tiny 0 "" -- gen_tiny "$TMP/m1" 5
expect gen-motion-tiny-again 0 "" -- gen_tiny "$TMP/m2" 5
expect gen-motion-tiny-other-seed 0 "" -- gen_tiny "$TMP/m3" 6
expect gen-motion-reports-time 0 "gen motion: 2 clips of 2 frames at 16x16 .* in [0-9.]+ s" -- \
    "$DOJO" gen motion --out "$TMP/m4" --classes 1 --per-class 2 --frames 2 --size 16
check gen-motion-classes-txt [ "$(cat "$TMP/m1/classes.txt")" = "$(printf 'translate_right\ntranslate_left')" ]
check gen-motion-classes-txt-train cmp -s "$TMP/m1/classes.txt" "$TMP/m1/train/classes.txt"
check gen-motion-classes-txt-val cmp -s "$TMP/m1/classes.txt" "$TMP/m1/val/classes.txt"
check gen-motion-manifest grep -q '"val_per_class":[[:space:]]*1' "$TMP/m1/manifest.json"
check gen-motion-manifest-version grep -q '"scene_version":[[:space:]]*3' "$TMP/m1/manifest.json"
# the scene flags reach the clips and the manifest
expect gen-motion-scene-flags 0 "" -- "$DOJO" --quiet gen motion --out "$TMP/m5" --classes 2 --per-class 2 \
    --val-per-class 1 --frames 8 --size 32 --seed 5 --spin 3,4 --zoom 0.01,0.02 --speed 0.05 --noise 0 --jitter 0 \
    --distractors 0
check gen-motion-scene-spin grep -q '"spin_deg_max":[[:space:]]*4' "$TMP/m5/manifest.json"
check gen-motion-scene-speed grep -q '"speed_min":[[:space:]]*0.05' "$TMP/m5/manifest.json"
check gen-motion-scene-calm grep -q '"distractors":[[:space:]]*false' "$TMP/m5/manifest.json"
check gen-motion-scene-changes-bytes \
    sh -c "! cmp -s '$TMP/m1/train/translate_right/translate_right_0000.mp4' '$TMP/m5/train/translate_right/translate_right_0000.mp4'"
count=$(find "$TMP/m1" -name '*.mp4' | wc -l)
check gen-motion-file-count [ "$count" = 6 ]
check gen-motion-train-file [ -s "$TMP/m1/train/translate_left/translate_left_0001.mp4" ]
check gen-motion-val-file [ -s "$TMP/m1/val/translate_right/translate_right_0000.mp4" ]
check gen-motion-no-third-class [ ! -e "$TMP/m1/train/translate_up" ]
check gen-motion-no-partial-files [ -z "$(find "$TMP/m1" -name '*.part')" ]
same=1
for f in $(cd "$TMP/m1" && find . -type f | sort); do
    cmp -s "$TMP/m1/$f" "$TMP/m2/$f" || same=0
done
check gen-motion-same-seed-same-bytes [ "$same" = 1 ]
check gen-motion-other-seed-other-bytes \
    sh -c "! cmp -s '$TMP/m1/train/translate_right/translate_right_0000.mp4' '$TMP/m3/train/translate_right/translate_right_0000.mp4'"

if command -v ffprobe >/dev/null 2>&1; then
    probe() { ffprobe -v error -count_frames -select_streams v:0 \
        -show_entries stream=codec_name,width,height,nb_read_frames -of csv=p=0 "$1"; }
    expect gen-motion-ffprobe 0 "^(h264|mpeg4),32,32,8$" -- probe "$TMP/m1/train/translate_left/translate_left_0000.mp4"
else
    skip gen-motion-ffprobe "ffprobe is not installed (tools/setup.sh installs ffmpeg)"
fi

# ---- test clips ----
expect gen-testclips 0 "gen testclips: [0-9]+ clips of 12 frames at 64x48" -- \
    "$DOJO" gen testclips --out "$TMP/tc" --frames 12 --size 64x48
check gen-testclips-manifest grep -q '"file":[[:space:]]*"ffv1.mkv"' "$TMP/tc/manifest.json"
if command -v ffprobe >/dev/null 2>&1; then
    for f in "$TMP"/tc/*.mp4 "$TMP"/tc/*.mkv "$TMP"/tc/*.webm "$TMP"/tc/*.avi; do
        [ -e "$f" ] || continue
        clip=$(basename "$f")
        expect "gen-testclips-ffprobe-$clip" 0 "^[a-z0-9]+,64,48,12$" -- probe "$f"
        check "gen-testclips-in-manifest-$clip" grep -q "\"file\":[[:space:]]*\"$clip\"" "$TMP/tc/manifest.json"
    done
else
    skip gen-testclips-ffprobe "ffprobe is not installed (tools/setup.sh installs ffmpeg)"
fi

finish
