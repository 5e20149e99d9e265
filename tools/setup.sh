#!/bin/sh
# setup.sh — installs the Debian packages dojo needs, only when missing.
# Idempotent and fast when everything is present: `apt-get update` runs only
# when something must be installed. Run as root (or through sudo).
set -eu

PACKAGES="
build-essential
pkg-config
libavformat-dev
libavcodec-dev
libavutil-dev
libswscale-dev
ffmpeg
libcjson-dev
libyaml-dev
clang
libclang-rt-14-dev
libopenmpi-dev
openmpi-bin
chromium
"

missing=""
for p in $PACKAGES; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done

if [ -z "$missing" ]; then
    echo "setup: all packages present"
    exit 0
fi

echo "setup: installing:$missing"
SUDO=""
if [ "$(id -u)" != "0" ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
        echo "setup: error: need root (or sudo) to install:$missing" >&2
        exit 1
    fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# shellcheck disable=SC2086
$SUDO apt-get install -y -q --no-install-recommends $missing
