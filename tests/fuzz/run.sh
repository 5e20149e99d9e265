#!/bin/sh
# run.sh — builds a libFuzzer target with clang (ASan+UBSan+fuzzer) and runs
# it: FUZZ_TARGET=video (default; probe + decode from memory, on seed clips
# made with the ffmpeg tool), safetensors (the .safetensors reader, on the
# operator fixtures) or config (YAML/JSON recipes and model files, on
# configs/).
#   sh tests/fuzz/run.sh [SECONDS] [libFuzzer options...]   (default 10 s; 0 = unlimited)
set -eu
cd "$(dirname "$0")/../.."
SECS=${1:-10}
[ $# -gt 0 ] && shift
command -v clang >/dev/null 2>&1 || { echo "fuzz: clang not installed (apt-get install clang)" >&2; exit 77; }
OUT=build/fuzz
mkdir -p "$OUT"
PKGS="libavformat libavcodec libavutil libswscale libcjson yaml-0.1"
CC_FUZZ="clang -std=gnu11 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -Iinclude"
TIME=""
[ "$SECS" != 0 ] && TIME="-max_total_time=$SECS"

# fuzz BINARY MAX_LEN ARTIFACT_PREFIX CORPUS [libFuzzer options...]
fuzz() {
    bin=$1 len=$2 prefix=$3 corpus=$4
    shift 4
    exec "$bin" $TIME -timeout=30 -rss_limit_mb=2048 -max_len="$len" -artifact_prefix="$prefix" "$@" "$corpus"
}

# The video and config targets build their own files with the fuzzer's
# instrumentation; the rest of dojo they call (the data-set layer for CSV
# indexes; the layers and kernels of the model builders) comes from the
# release library, so build it first (make).
LIB=${DOJO_LIB:-build/libdojo.a}
need_lib() { [ -f "$LIB" ] || { echo "fuzz: $LIB not found: run make first" >&2; exit 1; }; }

case "${FUZZ_TARGET:-video}" in
safetensors)
    # shellcheck disable=SC2046
    $CC_FUZZ $(pkg-config --cflags libcjson) \
        tests/fuzz/fuzz_safetensors.c src/train/safetensors.c src/core/error.c src/core/tensor.c src/core/fs.c \
        -o "$OUT/fuzz_safetensors" $(pkg-config --libs libcjson) -lm
    mkdir -p "$OUT/st_corpus"
    [ -n "$(ls "$OUT/st_corpus")" ] || cp tests/fixtures/ops/[a-z]*.safetensors "$OUT/st_corpus/"
    fuzz "$OUT/fuzz_safetensors" 4096 "$OUT/st_" "$OUT/st_corpus" "$@"
    ;;
config)
    need_lib
    # shellcheck disable=SC2046
    $CC_FUZZ -Isrc $(pkg-config --cflags $PKGS) -DDJ_BUILD_TYPE='"fuzz"' \
        tests/fuzz/fuzz_config.c src/core/config.c src/train/recipe.c src/nn/models.c src/core/error.c \
        -o "$OUT/fuzz_config" "$LIB" $(pkg-config --libs $PKGS) -lm -pthread
    mkdir -p "$OUT/cfg_corpus"
    [ -n "$(ls "$OUT/cfg_corpus")" ] || cp configs/models/*.yaml configs/recipes/*.yaml "$OUT/cfg_corpus/"
    fuzz "$OUT/fuzz_config" 4096 "$OUT/cfg_" "$OUT/cfg_corpus" "$@"
    ;;
video)
    need_lib
    # shellcheck disable=SC2046
    $CC_FUZZ -Isrc $(pkg-config --cflags $PKGS) -DDJ_BUILD_TYPE='"fuzz"' \
        tests/fuzz/fuzz_video.c src/video/probe.c src/video/index.c src/video/decode.c src/video/indexfile.c \
        src/video/png.c src/core/error.c src/core/log.c \
        -o "$OUT/fuzz_video" "$LIB" $(pkg-config --libs $PKGS) -lm -pthread
    mkdir -p "$OUT/corpus"
    if [ -z "$(ls "$OUT/corpus")" ] && command -v ffmpeg >/dev/null 2>&1; then
        src="-f lavfi -i testsrc2=size=32x24:rate=10 -frames:v 12 -pix_fmt yuv420p"
        ffmpeg -nostdin -v error -y $src -c:v libx264 -bf 2 -g 4 "$OUT/corpus/a.mp4" </dev/null || true
        ffmpeg -nostdin -v error -y $src -c:v libx264 -g 5 "$OUT/corpus/b.mkv" </dev/null || true
        ffmpeg -nostdin -v error -y $src -c:v mpeg4 -g 3 "$OUT/corpus/c.avi" </dev/null || true
        ffmpeg -nostdin -v error -y $src -c:v libvpx-vp9 -deadline realtime -g 4 "$OUT/corpus/d.webm" </dev/null || true
    fi
    fuzz "$OUT/fuzz_video" 65536 "$OUT/" "$OUT/corpus" "$@"
    ;;
*)
    echo "fuzz: unknown FUZZ_TARGET '$FUZZ_TARGET' (video, safetensors or config)" >&2
    exit 2
    ;;
esac
