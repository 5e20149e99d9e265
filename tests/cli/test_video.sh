# test_video.sh — `dojo probe`, `dojo frames` and `dojo index` on clips made
# here with the ffmpeg tool (skipped when it is missing).
. tests/cli/lib.sh

if ! ffmpeg -version >/dev/null 2>&1; then
    skip video-cli "the ffmpeg tool is not installed"
    finish; exit $?
fi
mk() { ffmpeg -nostdin -v error -y -f lavfi -i testsrc2=size=80x60:rate=25 -pix_fmt yuv420p "$@" </dev/null; }
mkdir -p "$TMP/data/alpha" "$TMP/data/beta"
mk -frames:v 40 -c:v libx264 -bf 2 -g 10 "$TMP/data/alpha/a.mp4" || { skip video-cli "cannot encode"; finish; exit $?; }
mk -frames:v 25 -c:v mpeg4 -g 5 "$TMP/data/beta/b.avi"
printf 'garbage' > "$TMP/data/beta/junk.mkv"
A="$TMP/data/alpha/a.mp4"

expect probe-text 0 "h264 \(High\).*80x60.*25\.000 fps.*40 frames.*4 keyframes" -- "$DOJO" probe "$A"
expect probe-json 0 '^\{"path":".*a\.mp4","container":"mov,mp4.*"codec":"h264".*"width":80,"height":60.*"fps":25,.*"frames":40,"keyframes":4' -- "$DOJO" probe --json "$A"
expect probe-bad-exit 1 "dojo: error: cannot open: .*junk\.mkv" -- "$DOJO" probe "$A" "$TMP/data/beta/junk.mkv" "$TMP/data/beta/b.avi"
"$DOJO" probe --json "$A" "$TMP/nope.mp4" "$TMP/data/beta/b.avi" >"$TMP/p.json" 2>/dev/null
check probe-json-lines [ "$(wc -l <"$TMP/p.json")" = 3 ]
check probe-json-error-line grep -q '^{"path":".*nope.mp4","error":"cannot open' "$TMP/p.json"
check probe-json-others-reported grep -q '"path":".*b.avi".*"codec":"mpeg4".*"frames":25' "$TMP/p.json"
expect probe-no-args 2 "usage|needs|argument" -- "$DOJO" probe

expect frames-write 0 "wrote 3 frames" -- "$DOJO" frames "$A" --index 39,0,17 --out "$TMP/fr"
check frames-files [ -s "$TMP/fr/frame_0.png" ] && [ -s "$TMP/fr/frame_17.png" ] && [ -s "$TMP/fr/frame_39.png" ]
check frames-png-magic sh -c "head -c 8 '$TMP/fr/frame_17.png' | od -c | grep -q 'P   N   G'"
# frame 17 equals what ffmpeg's select=eq(n\,17) picks (both RGB24 from the same decoder)
ffmpeg -nostdin -v error -y -i "$A" -vf 'select=eq(n\,17)' -frames:v 1 -pix_fmt rgb24 -f rawvideo "$TMP/ref17.rgb" </dev/null
ffmpeg -nostdin -v error -y -i "$TMP/fr/frame_17.png" -pix_fmt rgb24 -f rawvideo "$TMP/got17.rgb" </dev/null
check frames-match-ffmpeg-select-size [ "$(wc -c <"$TMP/got17.rgb")" = 14400 ]
ffmpeg -nostdin -v error -y -i "$A" -vf 'select=eq(n\,16)' -frames:v 1 -pix_fmt rgb24 -f rawvideo "$TMP/ref16.rgb" </dev/null
# colour conversion may differ in rounding from ffmpeg's; the right frame is
# much closer to select's frame 17 than to its neighbour 16
bigdiff() { # bytes differing by more than 8 between two raw files
    od -An -v -tu1 -w1 "$1" >"$TMP/d1"; od -An -v -tu1 -w1 "$2" >"$TMP/d2"
    paste "$TMP/d1" "$TMP/d2" | awk '{d=$1-$2; if (d<0) d=-d; if (d>8) n++} END {print n+0}'
}
close17=$(bigdiff "$TMP/ref17.rgb" "$TMP/got17.rgb")
close16=$(bigdiff "$TMP/ref16.rgb" "$TMP/got17.rgb")
echo "# frame 17 vs select 17: $close17 bytes differ by >8; vs select 16: $close16"
check frames-is-select-17 [ "$close17" -lt "$close16" ]
# a video displayed turned (tag rotate=270: a quarter turn clockwise, as
# phone cameras write it) comes out upright, as ffmpeg shows it; --size is
# then the upright size; --no-autorotate keeps the stored 80x60
ffmpeg -nostdin -v error -y -i "$A" -c copy -metadata:s:v:0 rotate=270 "$TMP/turned.mp4" </dev/null
expect frames-turned 0 "wrote 1 frame" -- "$DOJO" frames "$TMP/turned.mp4" --index 17 --out "$TMP/frt"
ffmpeg -nostdin -v error -y -i "$TMP/turned.mp4" -vf 'select=eq(n\,17)' -frames:v 1 -pix_fmt rgb24 -f rawvideo "$TMP/reft17.rgb" </dev/null
ffmpeg -nostdin -v error -y -i "$TMP/frt/frame_17.png" -pix_fmt rgb24 -f rawvideo "$TMP/gott17.rgb" </dev/null
check frames-turned-upright-size sh -c "ffprobe -v error -show_entries stream=width,height -of csv=p=0 '$TMP/frt/frame_17.png' | grep -qx '60,80'"
turned_far=$(bigdiff "$TMP/reft17.rgb" "$TMP/gott17.rgb")
echo "# turned frame 17 vs ffmpeg's upright one: $turned_far bytes differ by >8 (of 14400)"
check frames-turned-matches-ffmpeg [ "$turned_far" -lt 144 ]
expect frames-turned-size 0 "wrote 1 frame" -- "$DOJO" frames "$TMP/turned.mp4" --index 3 --out "$TMP/frt2" --size 30x40
check frames-turned-size-upright sh -c "ffprobe -v error -show_entries stream=width,height -of csv=p=0 '$TMP/frt2/frame_3.png' | grep -qx '30,40'"
expect frames-no-autorotate 0 "wrote 1 frame" -- "$DOJO" frames "$TMP/turned.mp4" --index 3 --out "$TMP/frt3" --no-autorotate
check frames-no-autorotate-stored sh -c "ffprobe -v error -show_entries stream=width,height -of csv=p=0 '$TMP/frt3/frame_3.png' | grep -qx '80,60'"
expect frames-size 0 "wrote 1 frame" -- "$DOJO" frames "$A" --index 5 --out "$TMP/fr2/a/b" --size 32x24
check frames-size-applied sh -c "file '$TMP/fr2/a/b/frame_5.png' 2>/dev/null | grep -q '32 x 24' || ! command -v file >/dev/null"
expect frames-out-of-range 1 "frame 40 out of range \(the video has 40 frames\).*a\.mp4" -- "$DOJO" frames "$A" --index 40 --out "$TMP/fr3"
expect frames-bad-list 2 "option '--index' expects frame numbers" -- "$DOJO" frames "$A" --index 1,x --out "$TMP/fr3"
expect frames-negative 2 "option '--index' expects frame numbers" -- "$DOJO" frames "$A" --index -3 --out "$TMP/fr3"
touch "$TMP/fr-file"
expect frames-out-is-file 1 "dojo: error: .*fr-file.*not a folder" -- "$DOJO" frames "$A" --index 1 --out "$TMP/fr-file"
expect frames-bad-size 2 "option '--size' expects WxH" -- "$DOJO" frames "$A" --index 1 --out "$TMP/fr3" --size 0x10
expect frames-no-out 2 "option '--out' is required" -- "$DOJO" frames "$A" --index 1
expect frames-missing-file 1 "cannot open.*nope\.mp4" -- "$DOJO" frames "$TMP/nope.mp4" --index 1 --out "$TMP/fr3"

expect index-folder 0 "indexed 2 videos \(2 scanned, 0 unchanged, 1 skipped, 0 corrected\), 65 frames, 2 classes" -- "$DOJO" index "$TMP/data" --out "$TMP/set.idx"
expect index-lists-skipped 0 "skipped: cannot open: .*junk\.mkv" -- "$DOJO" index "$TMP/data" --out "$TMP/set2.idx"
check index-file-magic sh -c "head -c 6 '$TMP/set.idx' | grep -q DJVIDX"
expect index-rerun-reuses 0 "\(0 scanned, 2 unchanged" -- "$DOJO" index "$TMP/data" --out "$TMP/set.idx"
touch -d '2001-01-01' "$TMP/data/beta/b.avi"
expect index-rescans-changed 0 "\(1 scanned, 1 unchanged" -- "$DOJO" index "$TMP/data" --out "$TMP/set.idx"
expect index-verify 0 "indexed 2 videos" -- "$DOJO" index "$TMP/data" --out "$TMP/set.idx" --verify
printf 'corrupt' > "$TMP/bad.idx"
expect index-corrupt-existing 0 "ignoring the existing index: .*bad magic" -- "$DOJO" index "$TMP/data" --out "$TMP/bad.idx"
printf 'alpha/a.mp4 0 0 20\nbeta/b.avi 1\n' > "$TMP/data/list.txt"
expect index-list 0 "indexed 2 videos .*65 frames, 2 classes" -- "$DOJO" index "$TMP/data/list.txt" --out "$TMP/list.idx"
printf 'alpha/a.mp4 zero\n' > "$TMP/data/list.txt"
expect index-list-bad-line 1 "label 'zero' is not an integer.*list\.txt:1" -- "$DOJO" index "$TMP/data/list.txt" --out "$TMP/list.idx"
mkdir -p "$TMP/empty"
expect index-nothing 1 "no video found.*empty" -- "$DOJO" index "$TMP/empty" --out "$TMP/e.idx"
expect index-no-out 2 "option '--out' is required" -- "$DOJO" index "$TMP/data"

expect bench-decode-json 0 '"clips":5,"frames":8,.*"clips_per_s":[0-9.]+,.*"decoded_per_delivered":[0-9.]+,"seeks_per_clip":[0-9.]+' -- "$DOJO" bench decode "$TMP/set.idx" --clips 5 --frames 8 --json --plan-out "$TMP/plan.json"
check bench-plan-written grep -q '"clips":\[{"path":"/.*","stream":0,"start":[0-9]*,"start_pts":' "$TMP/plan.json"
expect bench-decode-text 0 "decode: 3 clips x 4 frames" -- "$DOJO" bench decode "$TMP/data" --clips 3 --frames 4 --size 16
# grouping the clips of one video (sorted, one reader, clips of one GOP in one
# call) decodes fewer frames per delivered frame than independent clips
"$DOJO" bench decode "$TMP/set.idx" --clips 30 --frames 6 --json >"$TMP/bd-ind.json"
"$DOJO" bench decode "$TMP/set.idx" --clips 30 --frames 6 --json --order video --reuse --share \
    --plan-out "$TMP/plan-grouped.json" >"$TMP/bd-grp.json"
dpd() { sed 's/.*"decoded_per_delivered":\([0-9.]*\).*/\1/' "$1"; }
spc() { sed 's/.*"seeks_per_clip":\([0-9.]*\).*/\1/' "$1"; }
echo "# decoded per delivered: independent $(dpd "$TMP/bd-ind.json"), grouped $(dpd "$TMP/bd-grp.json")"
check bench-decode-grouped-fewer awk -v a="$(dpd "$TMP/bd-ind.json")" -v b="$(dpd "$TMP/bd-grp.json")" 'BEGIN { exit !(b < a) }'
check bench-decode-grouped-fewer-seeks awk -v a="$(spc "$TMP/bd-ind.json")" -v b="$(spc "$TMP/bd-grp.json")" 'BEGIN { exit !(b < a) }'
check bench-decode-grouped-json grep -q '"order":"video","reuse":1,"share":1,"skip_nonref":1' "$TMP/bd-grp.json"
check bench-plan-grouped grep -q '"reuse":true' "$TMP/plan-grouped.json"
"$DOJO" bench decode "$TMP/set.idx" --clips 10 --frames 6 --json --no-skip >"$TMP/bd-noskip.json"
check bench-decode-no-skip grep -q '"skip_nonref":0' "$TMP/bd-noskip.json"
check bench-decode-transform grep -q '"convert":"transform"' "$TMP/bd-noskip.json"
"$DOJO" bench decode "$TMP/set.idx" --clips 4 --frames 6 --size 24 --json --packed >"$TMP/bd-packed.json"
check bench-decode-packed grep -q '"size":24,.*"convert":"packed"' "$TMP/bd-packed.json"
# by default one reader is reopened from clip to clip (one decoder for like
# streams); --fresh opens a reader and a decoder per clip
"$DOJO" bench decode "$TMP/set.idx" --clips 10 --frames 6 --json --fresh >"$TMP/bd-fresh.json"
check bench-decode-fresh grep -q '"fresh":1,"decoders_opened":10,' "$TMP/bd-fresh.json"
check bench-decode-reopen sh -c "grep -q '\"fresh\":0,\"decoders_opened\":[1-9],' '$TMP/bd-noskip.json'"
"$DOJO" bench decode "$TMP/set.idx" --clips 4 --frames 5 --stride 3 --json --plan-out "$TMP/plan-strided.json" >"$TMP/bd-str.json"
check bench-decode-stride grep -q '"frames":5,"stride":3' "$TMP/bd-str.json"
check bench-plan-stride grep -q '"pts":\[[0-9]*,[0-9]*,[0-9]*,[0-9]*,[0-9]*\]' "$TMP/plan-strided.json"
expect bench-decode-stride-too-long 1 "no video has 41 frames" -- "$DOJO" bench decode "$TMP/set.idx" --frames 5 --stride 10
expect bench-decode-bad-order 2 "option '--order' expects random or video" -- "$DOJO" bench decode "$TMP/set.idx" --order sideways
expect bench-decode-too-long 1 "no video has 1000 frames" -- "$DOJO" bench decode "$TMP/set.idx" --clips 2 --frames 1000
PY=""
for p in python3 /usr/bin/python3; do
    if command -v "$p" >/dev/null 2>&1 && "$p" -c 'import av, numpy' >/dev/null 2>&1; then PY=$p; break; fi
done
if [ -n "$PY" ]; then
    expect bench-pyav-peer 0 '"clips": 5, .*"delivered": 40' -- "$PY" bench/peers/pyav_decode.py "$TMP/plan.json" --json
    expect bench-pyav-peer-strided 0 '"clips": 4, .*"delivered": 20' -- "$PY" bench/peers/pyav_decode.py "$TMP/plan-strided.json" --json
    expect bench-pyav-peer-grouped 0 '"clips": 30, .*"delivered": 180' -- "$PY" bench/peers/pyav_decode.py "$TMP/plan-grouped.json" --json
else
    skip bench-pyav-peer "PyAV is not installed"
fi

finish
