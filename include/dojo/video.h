/* dojo/video.h — reading videos: probe, per-file frame index, exact-seek
 * reader, and the multi-file index of a data set.
 *
 * Frame numbering. Frame K of a video is the K-th frame, counting from 0, in
 * PRESENTATION order that sequential decoding of the video's best video stream
 * yields (the frame FFmpeg's `select=eq(n\,K)` picks). The frame index
 * (dj_video_index) is built at the packet level in one demux pass without
 * decoding; dj_video_index_verify() decodes everything once and corrects the
 * table where the decoder disagrees (edit lists, dropped frames, missing pts).
 *
 * Ownership. Every object made by a *_build/_open/_load function is owned by
 * the caller and released with the matching *_free function (NULL is
 * accepted). Indexes are read-only once built: one dj_video_index may be
 * shared by several readers, also across threads. A reader is used by one
 * thread at a time.
 *
 * Errors. Every function returns a dj_status; on failure the message
 * (dj_error_message()) names the file: "cannot open: No such file (a.mp4)". */
#ifndef DOJO_VIDEO_H
#define DOJO_VIDEO_H

#include <stddef.h>
#include <stdint.h>

#include "dojo/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Sanity limits: files beyond them are refused with DJ_ERR_FORMAT. */
enum {
    DJ_VIDEO_MAX_SIDE = 16384,              /* width and height */
    DJ_VIDEO_MAX_PIXELS = 8192 * 8192,      /* width * height */
    DJ_VIDEO_MAX_PACKETS = 1 << 24,         /* packets of the video stream */
};

/* ---------------------------------------------------------------- probe -- */

typedef struct dj_video_info {
    char container[64];   /* demuxer name, "mov,mp4,m4a,3gp,3g2,mj2" */
    char codec[32];       /* "h264" */
    char profile[48];     /* "High", or "" when unknown */
    char pix_fmt[32];     /* "yuv420p" */
    int width, height;    /* coded picture size, before rotation */
    int rotation;         /* display rotation, clockwise degrees: 0, 90, 180, 270 (or other) */
    double fps_avg;       /* mean frame rate of the frames' timestamps (one frame: the stream's avg_frame_rate) */
    double fps_real;      /* the stream's real base frame rate (r_frame_rate) */
    int vfr;              /* 1 when presentation timestamps are not evenly spaced */
    double duration_s;    /* stream duration in seconds, from the frames when the header contradicts them */
    int64_t frames;       /* exact frame count from the packet level (see top) */
    int64_t keyframes;    /* keyframe packets among them */
    double mean_gop;      /* frames / keyframes */
    int64_t bit_rate;     /* bits per second: the stream's header, else its packet bytes over duration_s */
    int stream_index;     /* the video stream used */
    int mirrored;         /* 1 when the display also mirrors the (rotated) picture left-right */
} dj_video_info;

/* Opens path, finds its best video stream and counts its packets (one demux
 * pass, no decoding). Fills *info. When packets cannot give the count the
 * decoder would (missing timestamps, a stream that does not start with a
 * keyframe), it decodes the stream once to count exactly. */
dj_status dj_video_probe(const char *path, dj_video_info *info);

/* ---------------------------------------------------------- frame index -- */

enum {
    DJ_PACKET_KEY = 1,     /* the demuxer marked the packet as a keyframe */
    DJ_PACKET_DISCARD = 2, /* decoded for reference but not shown (edit lists) */
    DJ_PACKET_HIDDEN = 4,  /* carries no shown picture (VP9 invisible frames) */
};

/* A packet of the video stream, in DECODE (file) order. */
typedef struct dj_packet_entry {
    int64_t pts, dts; /* stream time base; dts is the seek/lookup key */
    int64_t pos;      /* byte position in the file, -1 when unknown */
    int32_t size;     /* bytes */
    uint32_t flags;   /* DJ_PACKET_* */
} dj_packet_entry;

/* A frame in PRESENTATION order. */
typedef struct dj_frame_entry {
    int64_t pts;    /* presentation timestamp (best-effort semantics), strictly increasing */
    int32_t packet; /* index into packets[] of the packet carrying it, -1 if unknown */
    int32_t key;    /* 1 when that packet is a keyframe */
} dj_frame_entry;

enum {
    DJ_INDEX_VERIFIED = 1,   /* sequential decoding yields exactly frames[] */
    DJ_INDEX_CORRECTED = 2,  /* frames[] was rewritten from sequential decoding */
    DJ_INDEX_SEQUENTIAL = 4, /* timestamps cannot identify frames: readers decode from the start */
    DJ_INDEX_MIRRORED = 8,   /* the display matrix mirrors the picture left-right after its rotation */
};

/* The frame index of one video file. Transparent and read-only for users. */
typedef struct dj_video_index {
    char *path;
    int64_t file_size;     /* bytes, when indexed */
    int64_t file_mtime_ns; /* modification time, when indexed */
    int32_t label;         /* class id, -1 when none */
    int64_t start_frame, end_frame; /* usable range [start, end), from a list file; 0, nframes otherwise */
    int32_t stream_index;  /* the video stream within the file */
    int32_t codec_id;      /* AVCodecID */
    int32_t width, height;
    int32_t pix_fmt;       /* AVPixelFormat */
    int32_t rotation;      /* clockwise degrees */
    int32_t tb_num, tb_den; /* stream time base */
    uint32_t flags;        /* DJ_INDEX_* */
    int64_t npackets;
    dj_packet_entry *packets; /* [npackets], decode order */
    int64_t nframes;
    dj_frame_entry *frames;   /* [nframes], presentation order */
} dj_video_index;

/* Scans path once (demux only) and builds its frame index. When packets lack
 * presentation timestamps (e.g. packed B-frames in AVI) or the stream does not
 * start with a keyframe, the frame table would be a guess: then it also
 * verifies (decodes) the file. */
dj_status dj_video_index_build(const char *path, dj_video_index **out);

/* Decodes the whole video sequentially and compares with the index. When they
 * differ, frames[] is rewritten from what the decoder yielded and
 * DJ_INDEX_CORRECTED is set; *mismatches (may be NULL) receives the number of
 * differing frames (0 when the index was right). Sets DJ_INDEX_VERIFIED. */
dj_status dj_video_index_verify(dj_video_index *index, int64_t *mismatches);

/* A deep copy (paths and tables). */
dj_status dj_video_index_clone(const dj_video_index *index, dj_video_index **out);

void dj_video_index_free(dj_video_index *index);

/* dj_video_probe() of a file held in memory (data[0..size-1]); name is used
 * in messages only (may be NULL). Read through a custom AVIOContext. */
dj_status dj_video_probe_memory(const void *data, size_t size, const char *name, dj_video_info *info);

/* --------------------------------------------------------------- reader -- */

typedef struct dj_video_reader_options {
    int threads;         /* decoder threads; 0 or 1: one (default) */
    int skip_nonref;     /* 1 (default): let the decoder skip non-reference frames nobody asked for */
    double time_limit_s; /* budget of one open or read call in seconds; 0: 60 s */
    int drain_at_end;    /* 1 (default): once the packets of all wanted frames are in, drain the
                            decoder instead of decoding further packets (saves the reorder delay;
                            a later read then seeks again). 0 suits reading a video in consecutive
                            chunks with one reader. */
} dj_video_reader_options;

/* The defaults: threads 1, skip_nonref 1, time_limit_s 60, drain_at_end 1. */
dj_video_reader_options dj_video_reader_defaults(void);

/* A decoded frame handed to a read callback. The planes are the decoder's:
 * valid only during the callback (copy or convert what you need). */
typedef struct dj_frame {
    int width, height;
    int format;          /* AVPixelFormat of the planes (no conversion is done) */
    uint8_t *data[4];
    int linesize[4];     /* bytes per row of each plane */
    int64_t index;       /* frame number K (presentation order) */
    int64_t pts;         /* its timestamp in the stream time base */
    int slot;            /* position in the frames[] list of the read call */
    const void *avframe; /* the underlying AVFrame, for advanced users */
    int rotation;        /* the index's display rotation (clockwise degrees); the planes are as stored */
    int mirrored;        /* 1: the display then mirrors the turned picture left-right (DJ_INDEX_MIRRORED) */
} dj_frame;

/* Called once per requested entry, in the order of the list. Returning
 * anything but DJ_OK stops the read, which then returns that status. */
typedef dj_status (*dj_frame_callback)(void *arg, const dj_frame *frame);

typedef struct dj_video_reader dj_video_reader;

typedef struct dj_video_stats {
    int64_t frames_decoded;   /* frames the decoder produced */
    int64_t frames_delivered; /* callback calls */
    int64_t seeks;            /* demuxer seeks (the first positioning of a reader counts) */
    int64_t packets_read;     /* packets of the video stream read */
    int64_t packets_sent;     /* packets given to the decoder (the rest were skipped after a seek) */
    int64_t bytes_read;       /* bytes of those packets */
    int64_t decoders_opened;  /* decoder contexts opened (a reopen onto a like stream keeps its decoder) */
} dj_video_stats;

/* Opens path for reading. index may be NULL (then one is built, a demux pass)
 * or an index of this same file, which the reader borrows: it must outlive the
 * reader. options may be NULL (defaults). */
dj_status dj_video_reader_open(const char *path, const dj_video_index *index,
                               const dj_video_reader_options *options, dj_video_reader **out);

/* A reader of a file held in memory (builds its own index). data must stay
 * valid and unchanged until dj_video_reader_free(). */
dj_status dj_video_reader_open_memory(const void *data, size_t size, const char *name,
                                      const dj_video_reader_options *options, dj_video_reader **out);

/* Delivers frames[0..n-1] (ascending; repeats allowed, each repeat gets its own
 * callback with the same picture, decoded once) to callback. Seeks to the
 * keyframe at or before the first frame (chosen in decode order, so open-GOP
 * leading frames start from the previous GOP), decodes forward, never seeks
 * backwards within one call (except to recover when a decoder did not produce
 * a frame where the index said: then it retries from an earlier keyframe and
 * finally fails with DJ_ERR_DECODE), continues without seeking while the next
 * wanted frame's keyframe has already been passed, lets the decoder skip
 * non-reference frames nobody asked for, and does no colour conversion.
 * Frames must be in [0, nframes): DJ_ERR_RANGE otherwise. A later call may
 * ask for earlier frames (it seeks). Each call has the time budget of the
 * options; a corrupt packet is skipped as sequential decoding would. */
dj_status dj_video_reader_read(dj_video_reader *reader, const int64_t *frames, int64_t n,
                               dj_frame_callback callback, void *arg);

/* Points the reader at another file (path and index as in
 * dj_video_reader_open; a file reader only), as a loader's worker does from
 * one video to the next. The demuxer, index and tables are the new file's;
 * the decoder is kept, flushed, when the new stream has the same codec,
 * coding parameters, colour description and extradata as the one it was
 * opened for (the frames are those a fresh decoder gives: tested), which
 * saves its set-up and its picture pools; otherwise a new one is opened.
 * Counters keep running. On failure the reader holds no video: reading
 * fails until a reopen succeeds, and dj_video_reader_free() is valid. */
dj_status dj_video_reader_reopen(dj_video_reader *reader, const char *path, const dj_video_index *index);

/* The reader's index (its own or the borrowed one; NULL after a failed reopen). */
const dj_video_index *dj_video_reader_index(const dj_video_reader *reader);

/* Counters since open. */
dj_video_stats dj_video_reader_stats(const dj_video_reader *reader);

void dj_video_reader_free(dj_video_reader *reader);

/* ------------------------------------------------------------ picture IO -- */

/* Converts frame to RGB24 (resized to out_w x out_h; 0 keeps the native size)
 * and writes it as a PNG file, turned upright when frame->rotation is a
 * quarter turn (as the ffmpeg tool shows it; out_w x out_h is then the
 * upright size; set rotation to 0 for the stored orientation). */
dj_status dj_frame_write_png(const dj_frame *frame, int out_w, int out_h, const char *path);

/* -------------------------------------------------------- data-set index -- */

/* The index of a data set: many videos, their labels and the class names.
 * File format (little endian), see src/video/indexfile.c:
 *   header  "DJVIDX\r\n", u32 version (1), u32 nclasses, u64 nvideos
 *   classes u32 length + bytes, each
 *   videos  per video: u32 length + path; i64 size, mtime_ns; i32 label;
 *           i64 start, end; i32 stream, codec, width, height, pix_fmt,
 *           rotation, tb_num, tb_den; u32 flags; i64 npackets, nframes;
 *           packets (pts, dts, pos: i64; size: i32; flags: u32);
 *           frames (pts: i64; packet: i32; key: i32)
 *   trailer u32 CRC-32 (IEEE) of everything before it. */
typedef struct dj_index dj_index;

typedef struct dj_index_build_options {
    int verify;             /* decode every video (dj_video_index_verify) */
    const dj_index *previous; /* reuse entries whose size and mtime did not change; may be NULL */
    int quiet;              /* no progress/skip messages on stderr */
} dj_index_build_options;

typedef struct dj_index_report {
    int64_t scanned, reused, skipped, corrected;
} dj_index_report;

/* Builds the index of `data`, whose videos the data-set layer enumerates
 * (dojo/dataset.h): a folder of class folders (root/<class>/..., searched
 * recursively; labels are ids of the class names sorted by name), a folder of
 * unlabelled videos (no sub-folders; labels -1, no classes), a list file
 * "path label [start end]" (paths relative to the list's folder; classes
 * "0".."max") or a Kinetics CSV. Videos that cannot be used are left out;
 * their path and reason are printed on stderr ("dojo: warning: skipped
 * PATH: WHY") unless quiet. Fails when no video is usable. report may be NULL. */
dj_status dj_index_build(const char *data, const dj_index_build_options *options,
                         dj_index **out, dj_index_report *report);

/* Writes index to path atomically (temporary file, fsync, rename). */
dj_status dj_index_save(const dj_index *index, const char *path);

/* Reads an index file (checks magic, version, sizes and checksum). */
dj_status dj_index_load(const char *path, dj_index **out);

int64_t dj_index_count(const dj_index *index);
const dj_video_index *dj_index_video(const dj_index *index, int64_t i); /* NULL when out of range */
int dj_index_class_count(const dj_index *index);
const char *dj_index_class_name(const dj_index *index, int id); /* NULL when out of range */

void dj_index_free(dj_index *index);

#ifdef __cplusplus
}
#endif
#endif
