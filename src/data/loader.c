/* loader.c — decode workers, the ring of ready batches, and the consumer's
 * side. One mutex guards the ring's bookkeeping; decoding and transforming
 * run outside it. */
#define _GNU_SOURCE
#include "dojo/loader.h"

#include <pthread.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dojo/log.h"

typedef struct dj_ring_slot {
    int64_t batch; /* plan batch held, -1 when empty */
    int ready;
    dj_loader_batch out;
    dj_tensor video, labels; /* full-size storage */
} dj_ring_slot;

typedef struct dj_worker_ctx {
    struct dj_loader *l;
    pthread_t thread;
    dj_transformer *tf;
    dj_video_reader *reader; /* reopened at each video: its decoder is kept while the streams are alike */
    int started;
} dj_worker_ctx;

struct dj_loader {
    const dj_index *index;
    const dj_batch_plan *plan;
    dj_loader_options opt;
    int ring_size;
    dj_ring_slot *ring;
    dj_worker_ctx *workers;
    pthread_mutex_t lock;
    pthread_cond_t space, ready;
    int64_t next_batch; /* next batch a worker claims */
    int64_t taken;      /* batches handed to the consumer */
    int stop;
    dj_status error;
    char error_text[1024];
    dj_loader_stats stats;
};

dj_loader_options dj_loader_defaults(void) {
    dj_loader_options o;
    memset(&o, 0, sizeof o);
    o.workers = 1;
    o.prefetch = 2;
    o.height = o.width = 112;
    o.dtype = DJ_DTYPE_F32;
    o.norm = dj_norm_imagenet;
    o.codec_threads = 1;
    o.nice = 19;
    return o;
}

dj_status dj_loader_plan_entries(const dj_index *index, dj_plan_entry *entries) {
    for (int64_t i = 0; i < dj_index_count(index); i++) {
        const dj_video_index *v = dj_index_video(index, i);
        dj_plan_entry *e = &entries[i];
        memset(e, 0, sizeof *e);
        e->frame_count = v->nframes;
        /* crops are drawn in the upright picture (dj_transform_frame turns
         * frames whose display matrix says so) */
        dj_upright_size(v->width, v->height, v->rotation, &e->width, &e->height);
        e->table = v->frames, e->tb_num = v->tb_num, e->tb_den = v->tb_den; /* data.fps samples by time */
        e->fps = v->nframes == 1 ? 1.0 : 0; /* one frame: every clip is that frame, at any rate */
        if (v->nframes > 1 && v->tb_den > 0) {
            double span = (double)(v->frames[v->nframes - 1].pts - v->frames[0].pts) * v->tb_num / v->tb_den;
            if (span > 0)
                e->fps = (double)(v->nframes - 1) / span;
        }
        e->start_frame = v->start_frame;
        e->end_frame = v->end_frame;
        if (e->start_frame <= 0 && e->end_frame >= v->nframes) {
            e->start_frame = -1;
            e->end_frame = -1;
        }
    }
    return DJ_OK;
}

/* ---- one batch ---- */

typedef struct dj_fill_ctx {
    dj_loader *l;
    dj_worker_ctx *w;
    dj_ring_slot *slot;
    int64_t video; /* plan video being decoded */
    int64_t first_slot;
    int n;
    int64_t delivered;
} dj_fill_ctx;

static dj_status dj_fill_frame(void *arg, const dj_frame *f) {
    dj_fill_ctx *c = arg;
    const dj_batch_plan *plan = c->l->plan;
    dj_frame_view view = dj_frame_view_of(f);
    for (int s = 0; s < c->n; s++) {
        const dj_plan_slot *ps = &plan->slots[c->first_slot + s];
        if (ps->video != c->video)
            continue;
        for (int t = 0; t < plan->frames_per_clip; t++) {
            if (ps->frame_pos[t] != f->slot)
                continue;
            DJ_TRY(dj_transform_frame(c->w->tf, &view, &ps->crop, ps->flip, &c->l->opt.norm, &c->slot->video, s, t));
            c->delivered++;
        }
    }
    return DJ_OK;
}

static dj_status dj_decode_video(dj_loader *l, dj_fill_ctx *c, const dj_plan_video *pv, dj_video_stats *st) {
    const dj_video_index *vi = dj_index_video(l->index, pv->entry);
    if (!vi)
        return dj_error_set(DJ_ERR_INTERNAL, "loader", "plan entry %lld is not in the index", (long long)pv->entry);
    dj_worker_ctx *w = c->w;
    dj_video_stats before;
    memset(&before, 0, sizeof before);
    dj_status s;
    if (w->reader) {
        before = dj_video_reader_stats(w->reader);
        s = dj_video_reader_reopen(w->reader, vi->path, vi);
    } else {
        dj_video_reader_options ro = dj_video_reader_defaults();
        ro.threads = l->opt.codec_threads;
        s = dj_video_reader_open(vi->path, vi, &ro, &w->reader);
    }
    if (s == DJ_OK)
        s = dj_video_reader_read(w->reader, pv->frames, pv->num_frames, dj_fill_frame, c);
    if (w->reader) { /* this video's share of the running counters */
        dj_video_stats after = dj_video_reader_stats(w->reader);
        st->frames_decoded = after.frames_decoded - before.frames_decoded;
        st->seeks = after.seeks - before.seeks;
        st->bytes_read = after.bytes_read - before.bytes_read;
    }
    return s;
}

/* Copies clip `from` of the batch onto clip `to` (video and label). */
/* Temporal differences in place: frame t of each clip (video: [N][3][T][H][W],
 * the first n clips) becomes frame t+1 minus frame t, and the last frame 0.
 * What stays still, the clip's colours and textures, disappears; what moves
 * remains. */
static void dj_clips_difference(dj_tensor *video, int n) {
    int64_t T = video->shape[2], hw = video->shape[3] * video->shape[4];
    float *v = video->data;
    for (int64_t q = 0; q < (int64_t)n * 3; q++) {
        float *p = v + q * T * hw; /* [T][H][W] of one channel */
        for (int64_t t = 0; t + 1 < T; t++)
            for (int64_t k = 0; k < hw; k++)
                p[t * hw + k] = p[(t + 1) * hw + k] - p[t * hw + k];
        memset(p + (T - 1) * hw, 0, sizeof(float) * (size_t)hw);
    }
}

static void dj_copy_clip(dj_ring_slot *slot, int from, int to) {
    size_t clip = dj_tensor_nbytes(&slot->video) / (size_t)slot->video.shape[0];
    char *v = slot->video.data;
    memcpy(v + (size_t)to * clip, v + (size_t)from * clip, clip);
    int64_t *lab = slot->labels.data;
    lab[to] = lab[from];
}

static dj_status dj_fill_batch(dj_loader *l, dj_worker_ctx *w, dj_ring_slot *slot, int64_t b) {
    const dj_batch_plan *plan = l->plan;
    const dj_plan_batch *pb = &plan->batches[b];
    dj_fill_ctx c = {l, w, slot, 0, pb->first_slot, pb->num_slots, 0};
    int n = pb->num_slots;
    int bad[4096];
    int nbad = 0;
    int64_t *labels = slot->labels.data;
    for (int s = 0; s < n; s++) {
        const dj_video_index *vi = dj_index_video(l->index, plan->slots[pb->first_slot + s].entry);
        labels[s] = vi ? vi->label : -1;
    }
    int64_t decoded = 0, seeks = 0, bytes = 0, failed_videos = 0;
    for (int v = 0; v < pb->num_videos; v++) {
        c.video = pb->first_video + v;
        dj_video_stats st;
        memset(&st, 0, sizeof st);
        dj_status s = dj_decode_video(l, &c, &plan->videos[c.video], &st);
        decoded += st.frames_decoded;
        seeks += st.seeks;
        bytes += st.bytes_read;
        if (s == DJ_OK)
            continue;
        if (l->opt.strict)
            return s;
        failed_videos++;
        dj_log_warn("skipped a clip: %s", dj_error_message());
        for (int k = 0; k < n && nbad < (int)(sizeof bad / sizeof bad[0]); k++)
            if (plan->slots[pb->first_slot + k].video == c.video)
                bad[nbad++] = k;
    }
    int failed_clips = 0;
    if (l->opt.center_clips == 1 && l->opt.dtype == DJ_DTYPE_F32) {
        /* per-clip, per-channel mean removal: the clip's overall colour says
         * nothing about its motion and slows learning a great deal */
        int64_t plane = slot->video.shape[2] * slot->video.shape[3] * slot->video.shape[4];
        float *v = slot->video.data;
        for (int64_t q = 0; q < (int64_t)n * 3; q++) {
            float *p = v + q * plane;
            double sum = 0;
            for (int64_t k = 0; k < plane; k++)
                sum += p[k];
            float mean = (float)(sum / (double)plane);
            for (int64_t k = 0; k < plane; k++)
                p[k] -= mean;
        }
    } else if (l->opt.center_clips == 2 && l->opt.dtype == DJ_DTYPE_F32) {
        dj_clips_difference(&slot->video, n);
    }
    if (nbad) {
        char *is_bad = calloc((size_t)n, 1);
        if (!is_bad)
            return dj_error_set(DJ_ERR_NOMEM, "loader", "cannot allocate");
        for (int k = 0; k < nbad; k++)
            is_bad[bad[k]] = 1;
        for (int k = 0; k < n; k++) {
            if (!is_bad[k])
                continue;
            int from = -1;
            for (int d = 1; d < n && from < 0; d++)
                if (!is_bad[(k + d) % n])
                    from = (k + d) % n;
            if (from < 0) {
                free(is_bad);
                return dj_error_set(DJ_ERR_DECODE, "loader", "no video of batch %lld could be read", (long long)b);
            }
            dj_copy_clip(slot, from, k);
            failed_clips++;
        }
        free(is_bad);
    }
    slot->out.index = b;
    slot->out.n = n;
    slot->out.slots = &plan->slots[pb->first_slot];
    slot->out.failed = failed_clips;
    slot->out.video = slot->video;
    slot->out.video.shape[0] = n;
    slot->out.labels = slot->labels;
    slot->out.labels.shape[0] = n;
    pthread_mutex_lock(&l->lock);
    l->stats.frames_decoded += decoded;
    l->stats.frames_delivered += c.delivered;
    l->stats.seeks += seeks;
    l->stats.bytes_read += bytes;
    l->stats.videos_failed += failed_videos;
    pthread_mutex_unlock(&l->lock);
    return DJ_OK;
}

/* ---- workers ---- */

/* Lowers this thread's priority (Linux keeps a nice value per thread; the
 * decoder's own threads, started later, inherit it). Lowering needs no
 * privilege; where it fails the thread keeps running at its priority. */
static void dj_worker_set_nice(int nice) {
#if defined(__linux__)
    if (nice > 0 && setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), nice) != 0)
        dj_log_debug("loader: cannot lower the decode thread's priority to nice %d", nice);
#else
    (void)nice;
#endif
}

static void *dj_worker_main(void *arg) {
    dj_worker_ctx *w = arg;
    dj_loader *l = w->l;
    dj_worker_set_nice(l->opt.nice);
    for (;;) {
        pthread_mutex_lock(&l->lock);
        /* batch b goes to ring slot b % ring_size once the consumer released it */
        while (!l->stop && l->next_batch < l->plan->num_batches && l->ring[l->next_batch % l->ring_size].batch >= 0)
            pthread_cond_wait(&l->space, &l->lock);
        if (l->stop || l->next_batch >= l->plan->num_batches) {
            pthread_mutex_unlock(&l->lock);
            return NULL;
        }
        int64_t b = l->next_batch++;
        dj_ring_slot *slot = &l->ring[b % l->ring_size];
        slot->batch = b;
        slot->ready = 0;
        pthread_mutex_unlock(&l->lock);

        dj_status s = dj_fill_batch(l, w, slot, b);

        pthread_mutex_lock(&l->lock);
        if (s != DJ_OK && l->error == DJ_OK) {
            l->error = s;
            snprintf(l->error_text, sizeof l->error_text, "%s", dj_error_message());
        }
        slot->ready = 1;
        pthread_cond_broadcast(&l->ready);
        pthread_mutex_unlock(&l->lock);
    }
}

void dj_loader_free(dj_loader *l) {
    if (!l)
        return;
    pthread_mutex_lock(&l->lock);
    l->stop = 1;
    pthread_cond_broadcast(&l->space);
    pthread_mutex_unlock(&l->lock);
    for (int i = 0; l->workers && i < l->opt.workers; i++) {
        if (l->workers[i].started)
            pthread_join(l->workers[i].thread, NULL);
        dj_transformer_free(l->workers[i].tf);
        dj_video_reader_free(l->workers[i].reader);
    }
    for (int i = 0; l->ring && i < l->ring_size; i++) {
        dj_tensor_free(&l->ring[i].video);
        dj_tensor_free(&l->ring[i].labels);
    }
    free(l->ring);
    free(l->workers);
    pthread_mutex_destroy(&l->lock);
    pthread_cond_destroy(&l->space);
    pthread_cond_destroy(&l->ready);
    free(l);
}

dj_status dj_loader_create(const dj_index *index, const dj_batch_plan *plan, const dj_loader_options *o,
                           dj_loader **out) {
    *out = NULL;
    if (o->workers < 1 || o->workers > 256 || o->prefetch < 1 || o->prefetch > 64 || o->height < 1 ||
        o->width < 1 || o->codec_threads < 1 || (o->dtype != DJ_DTYPE_F32 && o->dtype != DJ_DTYPE_U8) ||
        o->nice < 0 || o->nice > 19)
        return dj_error_set(DJ_ERR_INVALID, "loader",
                            "workers 1-256, prefetch 1-64, a positive frame size, float32 or uint8 output, nice 0-19");
    int max_n = 0;
    for (int64_t b = 0; b < plan->num_batches; b++)
        if (plan->batches[b].num_slots > max_n)
            max_n = plan->batches[b].num_slots;
    if (max_n > 4096)
        return dj_error_set(DJ_ERR_INVALID, "loader", "batch of %d clips, at most 4096", max_n);
    dj_loader *l = calloc(1, sizeof *l);
    if (!l)
        return dj_error_set(DJ_ERR_NOMEM, "loader", "cannot allocate");
    l->index = index;
    l->plan = plan;
    l->opt = *o;
    l->ring_size = o->prefetch + 1; /* + the batch the consumer holds */
    pthread_mutex_init(&l->lock, NULL);
    pthread_cond_init(&l->space, NULL);
    pthread_cond_init(&l->ready, NULL);
    l->ring = calloc((size_t)l->ring_size, sizeof *l->ring);
    l->workers = calloc((size_t)o->workers, sizeof *l->workers);
    if (!l->ring || !l->workers) {
        dj_loader_free(l);
        return dj_error_set(DJ_ERR_NOMEM, "loader", "cannot allocate");
    }
    int64_t vshape[5] = {max_n > 0 ? max_n : 1, 3, plan->frames_per_clip, o->height, o->width};
    int64_t lshape[1] = {vshape[0]};
    for (int i = 0; i < l->ring_size; i++) {
        l->ring[i].batch = -1;
        dj_status s = dj_tensor_create(o->dtype, 5, vshape, &l->ring[i].video);
        if (s == DJ_OK)
            s = dj_tensor_create(DJ_DTYPE_I64, 1, lshape, &l->ring[i].labels);
        if (s != DJ_OK) {
            dj_loader_free(l);
            return s;
        }
    }
    for (int i = 0; i < o->workers; i++) {
        l->workers[i].l = l;
        dj_status s = dj_transformer_create(&l->workers[i].tf);
        if (s != DJ_OK) {
            dj_loader_free(l);
            return s;
        }
    }
    for (int i = 0; i < o->workers; i++) {
        if (pthread_create(&l->workers[i].thread, NULL, dj_worker_main, &l->workers[i]) != 0) {
            dj_loader_free(l);
            return dj_error_set(DJ_ERR_NOMEM, "loader", "cannot start decode worker %d", i);
        }
        l->workers[i].started = 1;
    }
    *out = l;
    return DJ_OK;
}

dj_status dj_loader_next(dj_loader *l, const dj_loader_batch **batch) {
    *batch = NULL;
    pthread_mutex_lock(&l->lock);
    /* the batch handed out last time is released now */
    if (l->taken > 0) {
        dj_ring_slot *prev = &l->ring[(l->taken - 1) % l->ring_size];
        prev->batch = -1;
        prev->ready = 0;
        pthread_cond_broadcast(&l->space);
    }
    if (l->taken >= l->plan->num_batches) {
        pthread_mutex_unlock(&l->lock);
        return DJ_OK;
    }
    dj_ring_slot *slot = &l->ring[l->taken % l->ring_size];
    double t0 = dj_time_now();
    while (l->error == DJ_OK && !(slot->batch == l->taken && slot->ready))
        pthread_cond_wait(&l->ready, &l->lock);
    l->stats.wait_s += dj_time_now() - t0;
    if (l->error != DJ_OK) {
        dj_status s = l->error;
        char text[1024];
        snprintf(text, sizeof text, "%s", l->error_text);
        pthread_mutex_unlock(&l->lock);
        return dj_error_set(s, NULL, "%s", text);
    }
    l->taken++;
    l->stats.batches++;
    l->stats.clips += slot->out.n;
    *batch = &slot->out;
    pthread_mutex_unlock(&l->lock);
    return DJ_OK;
}

dj_loader_stats dj_loader_get_stats(dj_loader *l) {
    pthread_mutex_lock(&l->lock);
    dj_loader_stats s = l->stats;
    int ready = 0;
    for (int i = 0; i < l->ring_size; i++)
        ready += l->ring[i].batch >= l->taken && l->ring[i].ready;
    s.ready = ready;
    pthread_mutex_unlock(&l->lock);
    return s;
}
