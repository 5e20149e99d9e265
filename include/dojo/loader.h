/* dojo/loader.h — the data loader: decode workers filling a bounded ring of
 * ready batches, ahead of the training step.
 *
 * The loader executes a batch plan (dojo/sampling.h) over a data-set index
 * (dojo/video.h): for each batch, each worker reopens its one reader at
 * each of the batch's videos (dj_video_reader_reopen: the decoder is kept
 * while the streams are alike), decodes the planned frames once (a frame shared by several views is
 * decoded once) and writes every view's crop straight into the batch tensor
 * (N,3,T,H,W), upright (videos displayed turned by their display matrix,
 * as phone cameras write them, are turned: dj_transform_frame). Which
 * worker decodes which batch depends on timing, but what
 * a batch holds depends only on the plan: the bytes of every batch are the
 * same for any number of workers. Batches come out in plan order.
 *
 * A video that cannot be read (vanished, truncated, corrupt) is counted and
 * its slots are filled with a copy of another slot of the same batch (the
 * next readable one), so a run goes on; with `strict` the loader stops and
 * dj_loader_next() returns the error, naming the file. */
#ifndef DOJO_LOADER_H
#define DOJO_LOADER_H

#include <stdint.h>

#include "dojo/error.h"
#include "dojo/sampling.h"
#include "dojo/tensor.h"
#include "dojo/transform.h"
#include "dojo/video.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dj_loader_options {
    int workers;       /* decode threads, >= 1 */
    int prefetch;      /* batches decoded ahead of the consumer, >= 1 */
    int height, width; /* output frame size */
    dj_dtype dtype;    /* DJ_DTYPE_F32 (normalised) or DJ_DTYPE_U8 */
    dj_norm norm;      /* for float32 output */
    int strict;        /* 1: an unreadable video stops the loader */
    int codec_threads; /* decoder threads per video, >= 1 */
    int center_clips;  /* 1: subtract each clip's per-channel mean (float32 output) */
    int nice;          /* the decode threads' nice value, 0..19 (Linux; lowering only) */
} dj_loader_options;

/* workers 1, prefetch 2, 112x112, float32, ImageNet statistics, not strict,
 * nice 19: decoding yields the cores to the compute threads and runs in
 * their gaps. The compute pool splits each loop evenly over its threads,
 * so a decode thread that takes a core from one of them makes the others
 * wait at the loop's end; measured on the demo (2 cores, 2 compute threads,
 * 1 decode worker, 8 pairs of 2-epoch runs): 82 clips/s median at nice 19,
 * 70.5 at nice 0, data wait 0-1% either way. */
dj_loader_options dj_loader_defaults(void);

typedef struct dj_loader_batch {
    int64_t index;       /* batch number in the plan */
    int n;               /* clips (views) in this batch; the last may be short */
    dj_tensor video;     /* (n,3,T,H,W) */
    dj_tensor labels;    /* (n) int64 */
    const dj_plan_slot *slots; /* [n]: which entry and view each clip is */
    int failed;          /* clips copied from another because their video failed */
} dj_loader_batch;

typedef struct dj_loader_stats {
    int64_t batches;          /* handed to the consumer */
    int64_t clips;            /* clips in them */
    int64_t frames_decoded;   /* by the decoders */
    int64_t frames_delivered; /* frames written into batches */
    int64_t seeks;
    int64_t bytes_read;
    int64_t videos_failed;    /* videos that could not be read */
    double wait_s;            /* time the consumer waited for a batch */
    int ready;                /* batches decoded and waiting now */
} dj_loader_stats;

typedef struct dj_loader dj_loader;

/* Starts the workers at once. The index and the plan are borrowed: they
 * must outlive the loader. */
dj_status dj_loader_create(const dj_index *index, const dj_batch_plan *plan, const dj_loader_options *options,
                           dj_loader **out);
/* The next batch in plan order, valid until the next call; *batch is NULL
 * after the last batch. In strict mode, the first unreadable video is
 * returned as an error naming it. */
dj_status dj_loader_next(dj_loader *l, const dj_loader_batch **batch);
dj_loader_stats dj_loader_get_stats(dj_loader *l);
/* Stops the workers (waiting for their current batch) and frees. */
void dj_loader_free(dj_loader *l);

/* The per-entry facts a batch plan needs, from a data-set index (sizes of
 * the upright picture: width and height swapped for videos displayed
 * turned by 90 or 270 degrees, which the loader delivers upright). */
dj_status dj_loader_plan_entries(const dj_index *index, dj_plan_entry *entries);

#ifdef __cplusplus
}
#endif
#endif
