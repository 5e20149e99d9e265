/* video_internal.h — what the files of src/video share: opening a video
 * under a time budget, and timestamp lookups in a frame index. */
#ifndef DJ_VIDEO_INTERNAL_H
#define DJ_VIDEO_INTERNAL_H

#include <string.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>

#include "dojo/video.h"

/* A deadline checked by FFmpeg's interrupt callback: a hostile file cannot
 * keep a demuxer busy for longer than the budget. */
typedef struct dj_deadline {
    double until; /* dj_time_now() value; 0 = none */
} dj_deadline;

void dj_deadline_start(dj_deadline *d, double seconds);
int dj_deadline_passed(const dj_deadline *d);

/* Where a video comes from: a file (data NULL) or a caller's buffer, read
 * through a custom AVIOContext (path is then only the name in messages). */
typedef struct dj_video_src {
    const char *path;
    const uint8_t *data;
    size_t size;
    const AVInputFormat *demuxer; /* tried first when not NULL (probing if it fails); NULL: probe */
} dj_video_src;

/* Demuxer families by libavformat's names ("mov,mp4,m4a,3gp,3g2,mj2",
 * "matroska,webm"): both describe their streams fully in the header and
 * check it, so a wrong guess fails. */
static inline int dj_demuxer_is_mov(const AVInputFormat *f) { return f && strncmp(f->name, "mov,", 4) == 0; }
static inline int dj_demuxer_is_matroska(const AVInputFormat *f) { return f && strncmp(f->name, "matroska", 8) == 0; }

/* Opens src, reads the stream info, picks the best video stream and checks
 * its parameters against the limits. When *stream >= 0 on entry (known from
 * an index) and the container header describes it fully, the stream-info
 * pass is skipped. *fmt must be closed with
 * avformat_close_input. `deadline` must outlive *fmt's use. */
dj_status dj_video_open_input(const dj_video_src *src, dj_deadline *deadline, AVFormatContext **fmt, int *stream);

/* Closes what dj_video_open_input opened (and its custom I/O); NULL is fine. */
void dj_video_close_input(AVFormatContext **fmt);

/* dj_video_index_verify() reading from src. */
dj_status dj_video_index_verify_src(dj_video_index *index, const dj_video_src *src, int64_t *mismatches);

/* A decoder for fmt's stream, opened with `threads` threads. */
dj_status dj_video_open_decoder(const char *path, AVFormatContext *fmt, int stream, int threads,
                                AVCodecContext **dec);

/* "message" of an FFmpeg error code. */
const char *dj_av_err(int err, char *buf, size_t size);

/* The frame whose pts is `pts` (binary search), or -1. */
int64_t dj_index_find_pts(const dj_video_index *index, int64_t pts);
/* The packet whose dts is `dts` (binary search), or -1. */
int64_t dj_index_find_dts(const dj_video_index *index, int64_t dts);

/* Scans fmt's stream (already open) into a new index of path. */
dj_status dj_video_index_scan(const char *path, AVFormatContext *fmt, int stream,
                              const dj_deadline *deadline, dj_video_index **out);

/* 1 when packet timestamps cannot be trusted to name frames (missing pts):
 * dj_video_index_build() then verifies by decoding. */
int dj_video_index_needs_verify(const dj_video_index *index);

/* The display orientation of a stream (probe.c): clockwise rotation in
 * degrees, and whether the turned picture is then mirrored left-right. */
void dj_display_orientation(const AVStream *st, int *rotation, int *mirrored);

#endif
