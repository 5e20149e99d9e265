/* version.c — build information and the FFmpeg versions linked at run time. */
#include "dojo/version.h"

#include <stdio.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/avutil.h>
#include <libswscale/swscale.h>

#ifndef DJ_BUILD_TYPE
#define DJ_BUILD_TYPE "unknown"
#endif

#if defined(__clang__)
#define DJ_COMPILER "clang " __clang_version__
#elif defined(__GNUC__)
#define DJ_COMPILER "gcc " __VERSION__
#else
#define DJ_COMPILER "unknown"
#endif

#if defined(__x86_64__)
#define DJ_TARGET "x86_64"
#elif defined(__aarch64__)
#define DJ_TARGET "aarch64"
#else
#define DJ_TARGET "other"
#endif

#ifdef DJ_HAVE_CUDA
#define DJ_HAS_CUDA 1
#else
#define DJ_HAS_CUDA 0
#endif
#ifdef DJ_HAVE_MPI
#define DJ_HAS_MPI 1
#else
#define DJ_HAS_MPI 0
#endif

static const dj_build_info dj_build_info_value = {
    DJ_VERSION_STRING, DJ_BUILD_TYPE, DJ_COMPILER, DJ_TARGET, DJ_HAS_CUDA, DJ_HAS_MPI,
};

const dj_build_info *dj_build(void) { return &dj_build_info_value; }

static void dj_version_triplet(unsigned v, char *out, int size) {
    snprintf(out, (size_t)size, "%u.%u.%u", AV_VERSION_MAJOR(v), AV_VERSION_MINOR(v), AV_VERSION_MICRO(v));
}

char *dj_ffmpeg_versions(char *buf, int size) {
    char f[32], c[32], u[32], s[32];
    dj_version_triplet(avformat_version(), f, sizeof f);
    dj_version_triplet(avcodec_version(), c, sizeof c);
    dj_version_triplet(avutil_version(), u, sizeof u);
    dj_version_triplet(swscale_version(), s, sizeof s);
    snprintf(buf, (size_t)size, "libavformat %s, libavcodec %s, libavutil %s, libswscale %s", f, c, u, s);
    return buf;
}
