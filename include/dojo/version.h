/* dojo/version.h — the library's version and how it was built. */
#ifndef DOJO_VERSION_H
#define DOJO_VERSION_H

#ifdef __cplusplus
extern "C" {
#endif

#define DJ_VERSION_MAJOR 0
#define DJ_VERSION_MINOR 1
#define DJ_VERSION_PATCH 0
#define DJ_VERSION_STRING "0.1.0"

typedef struct dj_build_info {
    const char *version;    /* "0.1.0" */
    const char *build_type; /* "release", "asan" or "debug" */
    const char *compiler;   /* "gcc 12.2.0" */
    const char *target;     /* "x86_64", "aarch64", ... */
    int has_cuda;           /* CUDA backend compiled in */
    int has_mpi;            /* MPI communicator compiled in */
} dj_build_info;

const dj_build_info *dj_build(void);

/* Versions of the FFmpeg libraries dojo runs with ("libavformat 59.27.100
 * libavcodec ..."), written into buf; returns buf. */
char *dj_ffmpeg_versions(char *buf, int size);

#ifdef __cplusplus
}
#endif
#endif
