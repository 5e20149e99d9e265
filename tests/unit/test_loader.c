/* test_loader.c — the loader executes a batch plan: batches are identical
 * whatever the number of workers, hold the planned frames with the right
 * labels, come out in order, and survive (or, strict, report) a video that
 * breaks after indexing. Uses a small synthetic data set made here. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <dirent.h>

#include "dojo/dojo.h"
#include "dojo/loader.h"
#include "dojo/synth.h"
#include "support/test.h"

#include <libavutil/log.h>

static char data_dir[512];
static dj_index *index_;

static int make_data(void) {
    if (index_)
        return 0;
    snprintf(data_dir, sizeof data_dir, "%s/motion", dj_test_tmpdir());
    dj_synth_motion_options o;
    dj_synth_motion_options_default(&o);
    o.out_dir = data_dir;
    o.classes = 3;
    o.per_class = 3;
    o.frames = 12;
    o.width = o.height = 48;
    o.seed = 5;
    o.threads = 1;
    if (dj_synth_motion_generate(&o) != DJ_OK) {
        dj_test_fail_at(__FILE__, __LINE__, "gen: %s", dj_error_message());
        return -1;
    }
    dj_index_build_options bo;
    memset(&bo, 0, sizeof bo);
    bo.quiet = 1;
    if (dj_index_build(data_dir, &bo, &index_, NULL) != DJ_OK) {
        dj_test_fail_at(__FILE__, __LINE__, "index: %s", dj_error_message());
        return -1;
    }
    return 0;
}

static dj_batch_plan *make_plan(uint64_t epoch, int batch) {
    int64_t n = dj_index_count(index_);
    dj_plan_entry *e = calloc((size_t)n, sizeof *e);
    dj_loader_plan_entries(index_, e);
    dj_plan_options po;
    memset(&po, 0, sizeof po);
    po.batch_size = batch;
    po.shard.shuffle = 1;
    po.clip.num_frames = 4;
    po.clip.stride = 2;
    po.clip.mode = DJ_CLIP_RANDOM;
    po.spatial.mode = DJ_SPATIAL_RESIZED_CROP;
    po.spatial.scale_min = 0.5f;
    po.spatial.scale_max = 1.0f;
    po.spatial.flip_prob = 0.5f;
    dj_batch_plan *plan = NULL;
    CHECK(dj_batch_plan_create(e, n, 11, epoch, &po, &plan) == DJ_OK);
    free(e);
    return plan;
}

/* Runs the whole plan and returns a malloc'ed copy of every batch's bytes. */
static unsigned char *run(dj_batch_plan *plan, int workers, int strict, size_t *total, dj_loader_stats *stats,
                          dj_status *status) {
    dj_loader_options lo = dj_loader_defaults();
    lo.workers = workers;
    lo.height = lo.width = 32;
    lo.strict = strict;
    dj_loader *l = NULL;
    *status = dj_loader_create(index_, plan, &lo, &l);
    if (*status != DJ_OK)
        return NULL;
    size_t cap = 1 << 20, used = 0;
    unsigned char *all = malloc(cap);
    const dj_loader_batch *b;
    int64_t expect = 0;
    while ((*status = dj_loader_next(l, &b)) == DJ_OK && b) {
        CHECK_EQ_INT(b->index, expect++);
        size_t vb = dj_tensor_nbytes(&b->video), lb = dj_tensor_nbytes(&b->labels);
        while (used + vb + lb > cap)
            all = realloc(all, cap *= 2);
        memcpy(all + used, b->video.data, vb);
        memcpy(all + used + vb, b->labels.data, lb);
        used += vb + lb;
        for (int i = 0; i < b->n; i++) {
            const dj_video_index *vi = dj_index_video(index_, b->slots[i].entry);
            if (!b->failed)
                CHECK_EQ_INT(((const int64_t *)b->labels.data)[i], vi->label);
        }
    }
    *stats = dj_loader_get_stats(l);
    dj_loader_free(l);
    *total = used;
    return all;
}

static void test_batches_do_not_depend_on_workers(void) {
    if (make_data())
        return;
    dj_batch_plan *plan = make_plan(0, 4);
    size_t n1 = 0, n3 = 0;
    dj_loader_stats s1, s3;
    dj_status st;
    unsigned char *a = run(plan, 1, 0, &n1, &s1, &st);
    CHECK(st == DJ_OK);
    unsigned char *b = run(plan, 4, 0, &n3, &s3, &st); /* 1 and 4 workers: the same bytes */
    CHECK(st == DJ_OK);
    CHECK(n1 > 0 && n1 == n3);
    CHECK(a && b && memcmp(a, b, n1) == 0);
    CHECK_EQ_INT(s1.batches, plan->num_batches);
    CHECK_EQ_INT(s1.clips, 9);
    CHECK_EQ_INT(s1.frames_delivered, 9 * 4);
    CHECK(s1.frames_decoded >= s1.frames_delivered / 2);
    CHECK_EQ_INT(s1.videos_failed, 0);
    /* not all zeros, values in the normalised range */
    const float *f = (const float *)a;
    double sum = 0;
    for (int i = 0; i < 1000; i++)
        sum += f[i] * f[i];
    CHECK(sum > 1.0);
    free(a);
    free(b);
    /* another epoch plans other clips */
    dj_batch_plan *plan2 = make_plan(1, 4);
    size_t n2;
    unsigned char *c = run(plan2, 2, 0, &n2, &s1, &st);
    a = run(plan, 2, 0, &n1, &s1, &st);
    CHECK(a && c && n1 == n2 && memcmp(a, c, n1) != 0);
    free(a);
    free(c);
    dj_batch_plan_free(plan2);
    dj_batch_plan_free(plan);
}

static void test_consumer_can_stop_early(void) {
    if (make_data())
        return;
    dj_batch_plan *plan = make_plan(0, 2);
    dj_loader_options lo = dj_loader_defaults();
    lo.workers = 2;
    lo.height = lo.width = 16;
    dj_loader *l;
    CHECK(dj_loader_create(index_, plan, &lo, &l) == DJ_OK);
    const dj_loader_batch *b;
    CHECK(dj_loader_next(l, &b) == DJ_OK && b);
    dj_loader_free(l); /* workers stop without deadlock */
    dj_batch_plan_free(plan);
}

static void test_broken_video_is_skipped_or_reported(void) {
    if (make_data())
        return;
    /* break one indexed video after indexing: truncate it to 100 bytes */
    const dj_video_index *v = dj_index_video(index_, 4);
    char victim[1024];
    snprintf(victim, sizeof victim, "%s", v->path);
    char backup[1100];
    snprintf(backup, sizeof backup, "%s.bak", victim);
    CHECK(rename(victim, backup) == 0);
    FILE *in = fopen(backup, "rb"), *out = fopen(victim, "wb");
    char buf[100];
    CHECK(in && out && fread(buf, 1, sizeof buf, in) == sizeof buf);
    if (out)
        fwrite(buf, 1, sizeof buf, out);
    if (in)
        fclose(in);
    if (out)
        fclose(out);
    dj_batch_plan *plan = make_plan(0, 4);
    size_t n;
    dj_loader_stats s;
    dj_status st;
    unsigned char *a = run(plan, 2, 0, &n, &s, &st);
    CHECK(st == DJ_OK);
    CHECK_EQ_INT(s.videos_failed, 1);
    CHECK_EQ_INT(s.clips, 9);
    free(a);
    a = run(plan, 2, 1, &n, &s, &st);
    CHECK(st != DJ_OK);
    CHECK_STR_CONTAINS(dj_error_message(), victim);
    free(a);
    /* a vanished file is reported the same way */
    CHECK(unlink(victim) == 0);
    a = run(plan, 1, 1, &n, &s, &st);
    CHECK(st != DJ_OK);
    CHECK_STR_CONTAINS(dj_error_message(), victim);
    free(a);
    CHECK(rename(backup, victim) == 0);
    dj_batch_plan_free(plan);
}

static void test_centered_clips_have_zero_mean(void) {
    if (make_data())
        return;
    dj_batch_plan *plan = make_plan(0, 4);
    dj_loader_options lo = dj_loader_defaults();
    lo.height = lo.width = 16;
    lo.center_clips = 1;
    dj_loader *l;
    CHECK(dj_loader_create(index_, plan, &lo, &l) == DJ_OK);
    const dj_loader_batch *b;
    CHECK(dj_loader_next(l, &b) == DJ_OK && b);
    int64_t plane = b->video.shape[2] * 16 * 16;
    double spread = 0;
    for (int q = 0; b && q < b->n * 3; q++) {
        const float *p = (const float *)b->video.data + (int64_t)q * plane;
        double sum = 0, sq = 0;
        for (int64_t k = 0; k < plane; k++) {
            sum += p[k];
            sq += (double)p[k] * p[k];
        }
        CHECK_CLOSE(sum / plane, 0.0, 0, 1e-5);
        spread += sq;
    }
    CHECK(spread > 0); /* the motion and texture are still there */
    dj_loader_free(l);
    dj_batch_plan_free(plan);
}

/* normalize: diff — frame t becomes frame t+1 minus frame t of the same
 * batch loaded plainly, and the last frame is zero. */
static void test_difference_clips(void) {
    if (make_data())
        return;
    dj_batch_plan *plan = make_plan(0, 4);
    dj_loader_options lo = dj_loader_defaults();
    lo.height = lo.width = 16;
    dj_loader *plain, *diff;
    CHECK(dj_loader_create(index_, plan, &lo, &plain) == DJ_OK);
    lo.center_clips = 2;
    CHECK(dj_loader_create(index_, plan, &lo, &diff) == DJ_OK);
    const dj_loader_batch *a = NULL, *b = NULL;
    CHECK(dj_loader_next(plain, &a) == DJ_OK && a);
    CHECK(dj_loader_next(diff, &b) == DJ_OK && b);
    if (a && b) {
        int64_t T = a->video.shape[2], hw = 16 * 16;
        double moved = 0, worst = 0, last = 0;
        for (int q = 0; q < a->n * 3; q++) {
            const float *x = (const float *)a->video.data + (int64_t)q * T * hw;
            const float *d = (const float *)b->video.data + (int64_t)q * T * hw;
            for (int64_t t = 0; t + 1 < T; t++)
                for (int64_t k = 0; k < hw; k++) {
                    double want = (double)x[(t + 1) * hw + k] - x[t * hw + k];
                    worst = fmax(worst, fabs(d[t * hw + k] - want));
                    moved += fabs(want);
                }
            for (int64_t k = 0; k < hw; k++)
                last = fmax(last, fabs(d[(T - 1) * hw + k]));
        }
        CHECK_CLOSE(worst, 0.0, 0, 1e-5);
        CHECK(last == 0);
        CHECK(moved > 0); /* the clips do move: the differences are not all zero */
    }
    dj_loader_free(plain);
    dj_loader_free(diff);
    dj_batch_plan_free(plan);
}

/* The batches of 8 epochs of a one-video data set in `dir` (u8, 24 x 24,
 * random resized crops with flips, seed fixed), concatenated. */
static unsigned char *batches_of(const char *dir, size_t *total, int *w, int *h) {
    dj_index *ix = NULL;
    dj_index_build_options bo;
    memset(&bo, 0, sizeof bo);
    bo.quiet = 1;
    if (dj_index_build(dir, &bo, &ix, NULL) != DJ_OK || dj_index_count(ix) != 1) {
        dj_test_fail_at(__FILE__, __LINE__, "index %s: %s", dir, dj_error_message());
        dj_index_free(ix);
        return NULL;
    }
    dj_plan_entry e;
    dj_loader_plan_entries(ix, &e);
    *w = e.width, *h = e.height;
    dj_plan_options po;
    memset(&po, 0, sizeof po);
    po.batch_size = 1;
    po.clip.num_frames = 3;
    po.clip.stride = 2;
    po.clip.mode = DJ_CLIP_RANDOM;
    po.spatial.mode = DJ_SPATIAL_RESIZED_CROP;
    po.spatial.scale_min = 0.3f;
    po.spatial.scale_max = 1.0f;
    po.spatial.flip_prob = 0.5f;
    unsigned char *all = NULL;
    size_t used = 0;
    dj_loader_options lo = dj_loader_defaults();
    lo.height = lo.width = 24;
    lo.dtype = DJ_DTYPE_U8;
    for (uint64_t epoch = 0; epoch < 8; epoch++) { /* a new crop, flip and clip each */
        dj_batch_plan *plan = NULL;
        dj_loader *l = NULL;
        if (dj_batch_plan_create(&e, 1, 3, epoch, &po, &plan) == DJ_OK &&
            dj_loader_create(ix, plan, &lo, &l) == DJ_OK) {
            const dj_loader_batch *b;
            while (dj_loader_next(l, &b) == DJ_OK && b) {
                size_t vb = dj_tensor_nbytes(&b->video);
                all = realloc(all, used + vb);
                memcpy(all + used, b->video.data, vb);
                used += vb;
            }
        } else {
            dj_test_fail_at(__FILE__, __LINE__, "plan or loader: %s", dj_error_message());
        }
        dj_loader_free(l);
        dj_batch_plan_free(plan);
    }
    dj_index_free(ix);
    *total = used;
    return all;
}

/* A video whose display matrix turns it a quarter turn (the phone camera's
 * way) loads as the same video stored upright: crops are drawn in the
 * upright picture (64 x 48 stored: 48 x 64), flips mirror it, and the
 * batches match within 1 level (the resize's two passes swap order). Both
 * files decode to the same pixels: the upright one is the lossless
 * transpose of the other's lossless frames, turned as the ffmpeg tool shows
 * the tagged file (its "rotate=90" tag is 90 degrees counter-clockwise, a
 * rotation of 270 here; "rotate=270" is 90). */
static void test_rotated_video_loads_upright(void) {
    if (system("ffmpeg -version >/dev/null 2>&1") != 0)
        SKIP("the ffmpeg tool is not installed");
    const struct {
        const char *tag, *transpose;
        int rotation;
    } turns[2] = {{"90", "cclock", 270}, {"270", "clock", 90}};
    for (int k = 0; k < 2; k++) {
        char root[600], cmd[4096];
        snprintf(root, sizeof root, "%s/rot%s", dj_test_tmpdir(), turns[k].tag);
        snprintf(cmd, sizeof cmd,
                 "mkdir -p '%s/stored/a' '%s/turned/a' '%s/upright/a' && cd '%s' && "
                 "ffmpeg -nostdin -v error -y -f lavfi -i testsrc2=size=64x48:rate=25 -frames:v 20 -pix_fmt yuv420p "
                 "-c:v libx264 -qp 0 stored/a/v.mp4 && "
                 "ffmpeg -nostdin -v error -y -i stored/a/v.mp4 -c copy -metadata:s:v:0 rotate=%s turned/a/v.mp4 && "
                 "ffmpeg -nostdin -v error -y -i stored/a/v.mp4 -vf transpose=%s -pix_fmt yuv420p -c:v libx264 "
                 "-qp 0 upright/a/v.mp4",
                 root, root, root, root, turns[k].tag, turns[k].transpose);
        if (system(cmd) != 0)
            SKIP("cannot make the clips (libx264 missing?)");
        char turned[700], upright[700], stored[700], file[800];
        snprintf(turned, sizeof turned, "%s/turned", root);
        snprintf(upright, sizeof upright, "%s/upright", root);
        snprintf(stored, sizeof stored, "%s/stored", root);
        snprintf(file, sizeof file, "%s/a/v.mp4", turned);
        dj_video_info in;
        CHECK(dj_video_probe(file, &in) == DJ_OK && in.rotation == turns[k].rotation);
        size_t nt = 0, nu = 0, ns = 0;
        int tw, th, uw, uh, sw, sh;
        unsigned char *t = batches_of(turned, &nt, &tw, &th), *u = batches_of(upright, &nu, &uw, &uh),
                      *st = batches_of(stored, &ns, &sw, &sh);
        CHECK(tw == 48 && th == 64 && uw == 48 && uh == 64 && sw == 64 && sh == 48);
        CHECK(t && u && nt == nu && nt > 0);
        int worst = 0;
        size_t off_by_one = 0, far_from_stored = 0;
        for (size_t i = 0; t && u && i < nt && i < nu; i++) {
            int d = abs((int)t[i] - (int)u[i]);
            worst = d > worst ? d : worst;
            off_by_one += d == 1;
            far_from_stored += st && i < ns && abs((int)t[i] - (int)st[i]) > 8;
        }
        CHECK_MSG(worst <= 1, "rotation %d: turned and upright batches differ by %d", turns[k].rotation, worst);
        CHECK_MSG(off_by_one * 50 < nt, "%zu of %zu bytes off by one", off_by_one, nt);
        CHECK_MSG(far_from_stored * 4 > nt, "the turned video loaded like the stored one (%zu of %zu bytes far)",
                  far_from_stored, nt);
        free(t), free(u), free(st);
    }
}

/* data.fps on a variable-frame-rate video (15 frames at 25 fps, then 15 at
 * 12.5): the loader's plan entries carry the frame table, so a clip at 25
 * fps takes, at every sample time, the frame shown then (repeating frames
 * in the slow part), not the frame a count at the mean rate gives. */
static void test_target_fps_on_variable_rate_video(void) {
    if (system("ffmpeg -version >/dev/null 2>&1") != 0)
        SKIP("the ffmpeg tool is not installed");
    char root[600], cmd[2048];
    snprintf(root, sizeof root, "%s/vfr", dj_test_tmpdir());
    snprintf(cmd, sizeof cmd,
             "mkdir -p '%s/a' && ffmpeg -nostdin -v error -y -f lavfi -i testsrc2=size=32x24:rate=25 -frames:v 30 "
             "-pix_fmt yuv420p -vf \"setpts='if(lt(N,15),N,2*N-15)/25/TB'\" -fps_mode passthrough -c:v libx264 "
             "'%s/a/v.mkv'",
             root, root);
    if (system(cmd) != 0)
        SKIP("cannot make a variable-frame-rate clip");
    dj_index *ix = NULL;
    dj_index_build_options bo;
    memset(&bo, 0, sizeof bo);
    bo.quiet = 1;
    CHECK(dj_index_build(root, &bo, &ix, NULL) == DJ_OK && dj_index_count(ix) == 1);
    if (!ix)
        return;
    const dj_video_index *v = dj_index_video(ix, 0);
    dj_plan_entry e;
    dj_loader_plan_entries(ix, &e);
    CHECK(e.table == v->frames && e.tb_num == v->tb_num && e.tb_den == v->tb_den && e.frame_count == 30);
    dj_plan_options po;
    memset(&po, 0, sizeof po);
    po.batch_size = 1;
    po.clip.num_frames = 6;
    po.clip.target_fps = 25;
    po.clip.mode = DJ_CLIP_RANDOM;
    po.spatial.mode = DJ_SPATIAL_RESIZED_CROP;
    int repeats = 0;
    for (uint64_t epoch = 0; epoch < 20; epoch++) {
        dj_batch_plan *plan = NULL;
        CHECK(dj_batch_plan_create(&e, 1, 5, epoch, &po, &plan) == DJ_OK);
        for (int64_t sl = 0; plan && sl < plan->num_slots; sl++) {
            const int64_t *f = plan->slots[sl].frames;
            double tick = (double)v->tb_num / v->tb_den, t0 = (double)v->frames[f[0]].pts * tick;
            for (int i = 0; i < 6; i++) {
                double t = t0 + i / 25.0, at = (double)v->frames[f[i]].pts * tick;
                CHECK_MSG(at <= t + 1e-9 && (f[i] == 29 || (double)v->frames[f[i] + 1].pts * tick > t + 1e-9),
                          "epoch %llu: sample %d at %.3f s took frame %lld shown at %.3f s", (unsigned long long)epoch,
                          i, t, (long long)f[i], at);
                repeats += i > 0 && f[i] == f[i - 1];
            }
        }
        dj_batch_plan_free(plan);
    }
    CHECK_MSG(repeats > 0, "no clip reached the slow part");
    dj_index_free(ix);
}

static void test_bad_options(void) {
    if (make_data())
        return;
    dj_batch_plan *plan = make_plan(0, 2);
    dj_loader_options lo = dj_loader_defaults();
    lo.workers = 0;
    dj_loader *l = NULL;
    CHECK(dj_loader_create(index_, plan, &lo, &l) == DJ_ERR_INVALID);
    CHECK(l == NULL);
    lo = dj_loader_defaults();
    lo.dtype = DJ_DTYPE_F64;
    CHECK(dj_loader_create(index_, plan, &lo, &l) == DJ_ERR_INVALID);
    lo = dj_loader_defaults();
    lo.nice = 20;
    CHECK(dj_loader_create(index_, plan, &lo, &l) == DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "nice 0-19");
    dj_batch_plan_free(plan);
}

/* The nice value of the thread tid (field 19 of /proc/self/task/tid/stat),
 * or -100 when it cannot be read. */
static int thread_nice(const char *tid) {
    char path[256], buf[1024];
    snprintf(path, sizeof path, "/proc/self/task/%s/stat", tid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -100;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    const char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    int field = 2, nice = -100;
    for (; p && *p; p++)
        if (*p == ' ' && ++field == 19) {
            nice = atoi(p + 1);
            break;
        }
    return nice;
}

/* Decode threads run at the nice value asked for (19 by default: they
 * yield the cores to the compute threads); the caller's stays as it was. */
static void test_workers_run_at_their_nice_value(void) {
#if defined(__linux__)
    if (make_data())
        return;
    dj_batch_plan *plan = make_plan(0, 2);
    dj_loader_options lo = dj_loader_defaults();
    CHECK_EQ_INT(lo.nice, 19);
    lo.workers = 2;
    lo.height = lo.width = 16;
    dj_loader *l = NULL;
    CHECK(dj_loader_create(index_, plan, &lo, &l) == DJ_OK);
    const dj_loader_batch *b;
    CHECK(dj_loader_next(l, &b) == DJ_OK && b); /* both workers have started by now or soon */
    int at19 = 0;
    char me[32];
    snprintf(me, sizeof me, "%ld", (long)getpid());
    for (int tries = 0; tries < 200 && at19 < 1; tries++) {
        at19 = 0;
        char dir[64];
        snprintf(dir, sizeof dir, "/proc/%ld/task", (long)getpid());
        DIR *d = opendir(dir);
        struct dirent *e;
        while (d && (e = readdir(d)))
            if (e->d_name[0] != '.' && strcmp(e->d_name, me) != 0 && thread_nice(e->d_name) == 19)
                at19++;
        if (d)
            closedir(d);
        if (at19 < 1)
            usleep(10000);
    }
    CHECK_MSG(at19 >= 1, "no decode thread runs at nice 19");
    CHECK_EQ_INT(thread_nice(me), 0); /* the calling (compute) thread keeps its priority */
    dj_loader_free(l);
    dj_batch_plan_free(plan);
#else
    SKIP("thread priorities are read from Linux's /proc");
#endif
}

int main(void) {
    av_log_set_level(AV_LOG_ERROR); /* the encoders' statistics are noise here */
    DJ_RUN(test_batches_do_not_depend_on_workers);
    DJ_RUN(test_consumer_can_stop_early);
    DJ_RUN(test_broken_video_is_skipped_or_reported);
    DJ_RUN(test_centered_clips_have_zero_mean);
    DJ_RUN(test_difference_clips);
    DJ_RUN(test_rotated_video_loads_upright);
    DJ_RUN(test_target_fps_on_variable_rate_video);
    DJ_RUN(test_bad_options);
    DJ_RUN(test_workers_run_at_their_nice_value);
    dj_index_free(index_);
    return dj_test_finish();
}
