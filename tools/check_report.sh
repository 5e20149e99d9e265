#!/bin/sh
# check_report.sh — renders a run's report in headless Chromium for a person
# to look at: writes RUNDIR/report.html (dojo report), a full-page screenshot
# and the counts of plots and lines found in the rendered DOM.
#   tools/check_report.sh RUNDIR [SHOT.png]     (DOJO=path/to/dojo, default build/dojo)
set -eu
[ $# -ge 1 ] || { echo "usage: tools/check_report.sh RUNDIR [SHOT.png]" >&2; exit 2; }
run=$1
shot=${2:-$run/report.png}
DOJO=${DOJO:-build/dojo}
CHROMIUM=$(command -v chromium || command -v chromium-browser || true)
[ -n "$CHROMIUM" ] || { echo "check_report: chromium not installed (apt-get install -y chromium)" >&2; exit 1; }
"$DOJO" report "$run"
html=$(cd "$run" && pwd)/report.html
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
flags="--headless --no-sandbox --disable-gpu --hide-scrollbars --user-data-dir=$profile"
# shellcheck disable=SC2086
"$CHROMIUM" $flags --dump-dom "file://$html" 2>/dev/null >"$profile/dom.html"
# shellcheck disable=SC2086
"$CHROMIUM" $flags --screenshot="$shot" --window-size=1300,2800 "file://$html" >/dev/null 2>&1
echo "rendered: $(grep -o '<svg ' "$profile/dom.html" | wc -l) svg, $(grep -o '<polyline ' "$profile/dom.html" | wc -l) lines," \
     "$(grep -o 'no data logged' "$profile/dom.html" | wc -l) empty plots; screenshot $shot"
