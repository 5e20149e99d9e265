# test_report.sh — `dojo report RUNDIR`: bad command lines (exit 2), missing
# or broken runs (exit 1 naming the file), a fake run of 600 steps over 6
# epochs written here (report with every plot, the heat map, escaped hostile
# names), and, where Debian's chromium is installed, the page rendered
# headless: every <svg> and its lines in the DOM, no injected elements, a
# non-blank screenshot.
. tests/cli/lib.sh

# ---- command line ----
expect report-in-help 0 "report +write a run's HTML report" -- "$DOJO" --help
expect report-help 0 "^usage: dojo report RUNDIR \[--out FILE.html\]" -- "$DOJO" report --help
expect report-no-rundir 2 "dojo: error: .*(missing|expects).*(dojo report)" -- "$DOJO" report
expect report-two-rundirs 2 "unexpected argument 'b'" -- "$DOJO" report a b
expect report-bad-flag 2 "unknown option '--colour' \(dojo report\)" -- "$DOJO" report "$TMP" --colour red
expect report-out-no-value 2 "'--out'" -- "$DOJO" report "$TMP" --out

# ---- missing and broken runs ----
expect report-missing-rundir 1 "^dojo: error: run folder not found \(.*/nope\)" -- "$DOJO" report "$TMP/nope"
mkdir -p "$TMP/bare"
expect report-no-metrics 1 "no metrics.jsonl in the run folder \(.*/bare\)" -- "$DOJO" report "$TMP/bare"
mkdir -p "$TMP/garbage"
printf '{"split":"train","step":1,"loss":1}\nGARBAGE\n' >"$TMP/garbage/metrics.jsonl"
expect report-garbage 1 "not a JSON object: 'GARBAGE' \(.*/garbage/metrics.jsonl:2\)" -- "$DOJO" report "$TMP/garbage"
check report-garbage-no-page test ! -e "$TMP/garbage/report.html"
mkdir -p "$TMP/empty"
: >"$TMP/empty/metrics.jsonl"
expect report-empty 0 "wrote .*/empty/report.html" -- "$DOJO" report "$TMP/empty"
check report-empty-message grep -q "This run has no metrics yet" "$TMP/empty/report.html"

# ---- a fake run: 600 steps, 6 epochs, validation and confusion per epoch ----
RUN="$TMP/run"
mkdir -p "$RUN"
awk 'BEGIN {
    split("walk run jump </script><b>evil</b> sit", cls, " ");
    for (s = 1; s <= 600; s++) {
        e = int((s - 1) / 100);
        printf "{\"split\":\"train\",\"epoch\":%d,\"step\":%d,\"wall_s\":%.2f,\"loss\":%.5f,\"lr\":%.6f,\"top1\":%.4f,\"clips_per_s\":%.1f,\"data_wait\":%.3f}\n",
            e, s, s * 0.4, 2 * exp(-s / 200) + 0.1 + 0.05 * sin(s), 0.1 * (1 - s / 600), s / 700, 80 + 5 * sin(s / 7), 0.1 + 0.03 * cos(s / 3);
        if (s % 100 == 0) {
            printf "{\"split\":\"val\",\"epoch\":%d,\"step\":%d,\"wall_s\":%.1f,\"top1\":%.3f,\"top5\":%.3f,\"loss\":%.3f}\n",
                e, s, s * 0.4, 0.2 + s / 1000, 0.5 + s / 1500, 2 * exp(-s / 250) + 0.3;
            printf "{\"split\":\"val\",\"epoch\":%d,\"step\":%d,\"confusion\":[", e, s;
            for (i = 0; i < 4; i++) {
                printf "%s[", i ? "," : "";
                for (j = 0; j < 4; j++) printf "%s%d", j ? "," : "", i == j ? 20 : (i + j + s / 100) % 4;
                printf "]";
            }
            printf "],\"classes\":[\"%s\",\"%s\",\"%s\",\"%s\"]}\n", cls[1], cls[2], cls[3] " " cls[4], cls[5];
        }
    }
}' >"$RUN/metrics.jsonl"
printf '{"model":"r3d_mini","note":"</script><b>bold</b>","optim":{"lr":0.1,"momentum":0.9}}\n' >"$RUN/config.json"
printf '{"val_top1":0.8,"val_top5":0.9,"epochs":6,"steps":600,"wall_s":240,"clips_per_s":80,"checkpoint":"ckpt/last.safetensors"}\n' >"$RUN/summary.json"
expect report-run 0 "wrote .*/run/report.html" -- "$DOJO" report "$RUN"
html="$RUN/report.html"
check report-six-svgs test "$(grep -c '<svg ' "$html")" = 6
check report-eight-lines test "$(grep -c '<polyline' "$html")" = 8
for s in train/loss val/top1 val/top5 train/lr train/clips_per_s train/data_wait; do
    check "report-series-$s" grep -q "data-series=\"$s\"" "$html"
done
check report-heatmap grep -q 'class="heatmap"' "$html"
check report-class-escaped grep -q 'predicted jump &lt;/script&gt;&lt;b&gt;evil&lt;/b&gt;:' "$html"
check report-config-escaped grep -q '&quot;note&quot;:.*&lt;/script&gt;&lt;b&gt;bold&lt;/b&gt;' "$html"
check report-no-script sh -c "! grep -qi '<script' '$html'"
check report-no-b sh -c "! grep -q '<b>' '$html'"
expect report-out 0 "wrote $TMP/other.html" -- "$DOJO" report "$RUN" --out "$TMP/other.html"
check report-out-same cmp -s "$html" "$TMP/other.html"

# ---- rendered by a browser ----
CHROMIUM=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$CHROMIUM" ]; then
    skip report-chromium "chromium not installed (apt-get install -y chromium)"
else
    chrome() { "$CHROMIUM" --headless --no-sandbox --disable-gpu --hide-scrollbars --user-data-dir="$TMP/profile" "$@" 2>/dev/null; }
    chrome --dump-dom "file://$html" >"$TMP/dom.html"
    check report-dom-svgs test "$(grep -o '<svg ' "$TMP/dom.html" | wc -l)" = 6
    check report-dom-polylines test "$(grep -o '<polyline ' "$TMP/dom.html" | wc -l)" = 8
    check report-dom-heatmap-cells test "$(grep -o '<rect x="[0-9]*" y="[0-9]*" width="[0-9]*" height="[0-9]*" fill="rgb' "$TMP/dom.html" | wc -l)" = 16
    check report-dom-no-injected-b sh -c "! grep -q '<b>' '$TMP/dom.html'"
    check report-dom-no-script sh -c "! grep -qi '<script' '$TMP/dom.html'"
    check report-dom-class-text grep -q 'predicted jump &lt;/script&gt;&lt;b&gt;evil&lt;/b&gt;:' "$TMP/dom.html"
    chrome --screenshot="$TMP/shot.png" --window-size=1300,2400 "file://$html" >/dev/null
    check report-screenshot-png sh -c "head -c 8 '$TMP/shot.png' | od -An -tx1 | grep -q '89 50 4e 47'"
    # a blank page compresses to a few kB; five plots and a heat map do not
    check report-screenshot-not-blank test "$(wc -c <"$TMP/shot.png")" -gt 60000
    chrome --screenshot="$TMP/empty.png" --window-size=1300,1200 "file://$TMP/empty/report.html" >/dev/null
    check report-screenshot-empty-run test -s "$TMP/empty.png"
fi
finish
