/* test_sampling.c — epoch orders, shards, clip frame indices, crop boxes and
 * batch plans: in range, deterministic, well spread, independent of ranks. */
#include <stdlib.h>
#include <string.h>

#include "dojo/sampling.h"
#include "support/test.h"

static dj_clip_spec clip(int T, int stride, dj_clip_mode mode) {
    return (dj_clip_spec){.num_frames = T, .stride = stride, .mode = mode};
}

/* ---- order and shards ---- */

static void test_epoch_order_is_a_permutation(void) {
    enum { N = 1000 };
    int64_t a[N], b[N], c[N];
    CHECK(dj_epoch_order(N, 7, 0, 1, a) == DJ_OK);
    CHECK(dj_epoch_order(N, 7, 0, 1, b) == DJ_OK);
    CHECK(dj_epoch_order(N, 7, 1, 1, c) == DJ_OK);
    int seen[N] = {0}, same_ab = 0, same_ac = 0, fixed = 0;
    for (int i = 0; i < N; i++) {
        CHECK(a[i] >= 0 && a[i] < N);
        if (a[i] >= 0 && a[i] < N)
            seen[a[i]]++;
        same_ab += a[i] == b[i];
        same_ac += a[i] == c[i];
        fixed += a[i] == i;
    }
    for (int i = 0; i < N; i++)
        CHECK(seen[i] == 1);
    CHECK_EQ_INT(same_ab, N);
    CHECK(same_ac < 20 && fixed < 20); /* ~1 expected by chance */
    CHECK(dj_epoch_order(N, 7, 0, 0, a) == DJ_OK);
    for (int i = 0; i < N; i++)
        CHECK(a[i] == i);
}

static void test_shards_disjoint_and_covering(void) {
    enum { N = 103 };
    for (int world = 1; world <= 8; world++) {
        int seen[N] = {0}, total = 0;
        for (int r = 0; r < world; r++) {
            dj_shard_options o = {.shuffle = 1, .rank = r, .world = world};
            int64_t cnt = dj_shard_count(N, &o);
            CHECK(cnt == N / world || cnt == N / world + 1);
            int64_t idx[N], pos[N];
            CHECK(dj_shard_indices(N, 3, 5, &o, idx, pos) == DJ_OK);
            for (int64_t i = 0; i < cnt; i++) {
                seen[idx[i]]++;
                CHECK(pos[i] % world == r);
            }
            total += (int)cnt;
        }
        CHECK_EQ_INT(total, N);
        for (int i = 0; i < N; i++)
            CHECK(seen[i] == 1);
        /* drop_last: equal counts, disjoint, N - N % world in all */
        int64_t first = -1;
        for (int r = 0; r < world; r++) {
            dj_shard_options o = {.shuffle = 1, .drop_last = 1, .rank = r, .world = world};
            int64_t cnt = dj_shard_count(N, &o);
            CHECK(first < 0 || cnt == first);
            first = cnt;
        }
        CHECK_EQ_INT(first * world, N - N % world);
    }
    dj_shard_options bad = {.rank = 4, .world = 4};
    CHECK(dj_shard_count(10, &bad) == -1);
    CHECK_STR_CONTAINS(dj_error_message(), "rank 4");
    int64_t out[10];
    CHECK(dj_shard_indices(10, 0, 0, &bad, out, NULL) == DJ_ERR_INVALID);
}

/* ---- clips ---- */

static void test_random_clip_in_range_and_deterministic(void) {
    dj_clip_spec s = clip(8, 4, DJ_CLIP_RANDOM);
    int64_t f[8], g[8];
    int starts_seen[64] = {0};
    for (uint64_t id = 0; id < 2000; id++) {
        CHECK(dj_clip_sample(&s, 60, -1, -1, 0, 11, 2, id, 0, f) == DJ_OK);
        CHECK(dj_clip_sample(&s, 60, -1, -1, 0, 11, 2, id, 0, g) == DJ_OK);
        CHECK(memcmp(f, g, sizeof f) == 0);
        for (int i = 0; i < 8; i++) {
            CHECK(f[i] >= 0 && f[i] < 60);
            CHECK(i == 0 || f[i] - f[i - 1] == 4);
        }
        if (f[0] >= 0 && f[0] < 64)
            starts_seen[f[0]]++;
    }
    /* span 29: starts 0..31, each ~62 times */
    for (int st = 0; st <= 31; st++)
        CHECK_MSG(starts_seen[st] > 25 && starts_seen[st] < 110, "start %d seen %d times", st, starts_seen[st]);
    for (int st = 32; st < 64; st++)
        CHECK(starts_seen[st] == 0);
    /* another epoch or seed moves the starts */
    int differ = 0;
    for (uint64_t id = 0; id < 100; id++) {
        CHECK(dj_clip_sample(&s, 60, -1, -1, 0, 11, 2, id, 0, f) == DJ_OK);
        CHECK(dj_clip_sample(&s, 60, -1, -1, 0, 11, 3, id, 0, g) == DJ_OK);
        differ += f[0] != g[0];
        CHECK(dj_clip_sample(&s, 60, -1, -1, 0, 12, 2, id, 0, g) == DJ_OK);
        differ += f[0] != g[0];
    }
    CHECK(differ > 150);
}

static void test_uniform_views_evenly_spaced(void) {
    dj_clip_spec s = clip(4, 2, DJ_CLIP_UNIFORM);
    s.num_clips = 5;
    int64_t f[4];
    /* 107 frames, span 7: delta 100, starts 0, 25, 50, 75, 100 */
    for (int k = 0; k < 5; k++) {
        CHECK(dj_clip_sample(&s, 107, -1, -1, 0, 1, 0, 9, k, f) == DJ_OK);
        CHECK_EQ_INT(f[0], 25 * k);
        CHECK_EQ_INT(f[3], 25 * k + 6);
    }
    CHECK(dj_clip_sample(&s, 107, -1, -1, 0, 1, 0, 9, 5, f) == DJ_ERR_RANGE);
    s.num_clips = 1; /* one view: the centre */
    CHECK(dj_clip_sample(&s, 107, -1, -1, 0, 1, 0, 9, 0, f) == DJ_OK);
    CHECK_EQ_INT(f[0], 50);
    dj_clip_spec c = clip(4, 2, DJ_CLIP_CENTER);
    CHECK(dj_clip_sample(&c, 108, -1, -1, 0, 1, 0, 9, 0, f) == DJ_OK);
    CHECK_EQ_INT(f[0], 50);
    /* seed and epoch do not move test views */
    int64_t g[4];
    CHECK(dj_clip_sample(&c, 108, -1, -1, 0, 99, 7, 3, 0, g) == DJ_OK);
    CHECK(memcmp(f, g, sizeof f) == 0);
}

static void test_tsn_segments(void) {
    enum { T = 8 };
    dj_clip_spec tr = clip(T, 0, DJ_CLIP_TSN_TRAIN), te = clip(T, 0, DJ_CLIP_TSN_TEST);
    int64_t f[T];
    int64_t n = 100;
    int hits_low = 0, hits_high = 0;
    for (uint64_t id = 0; id < 500; id++) {
        CHECK(dj_clip_sample(&tr, n, -1, -1, 0, 5, 0, id, 0, f) == DJ_OK);
        for (int i = 0; i < T; i++) {
            int64_t a = n * i / T, b = n * (i + 1) / T;
            CHECK_MSG(f[i] >= a && f[i] < b, "segment %d: %lld not in [%lld, %lld)", i, (long long)f[i],
                      (long long)a, (long long)b);
        }
        hits_low += f[0] == 0;
        hits_high += f[0] == 11;
    }
    CHECK(hits_low > 10 && hits_high > 10); /* the whole first segment is reachable */
    CHECK(dj_clip_sample(&te, n, -1, -1, 0, 5, 0, 0, 0, f) == DJ_OK);
    for (int i = 0; i < T; i++) {
        int64_t a = n * i / T, b = n * (i + 1) / T;
        CHECK_EQ_INT(f[i], a + (b - a) / 2);
    }
    /* fewer frames than segments: in range, non-decreasing */
    CHECK(dj_clip_sample(&tr, 3, -1, -1, 0, 5, 0, 1, 0, f) == DJ_OK);
    for (int i = 0; i < T; i++)
        CHECK(f[i] >= 0 && f[i] < 3 && (i == 0 || f[i] >= f[i - 1]));
}

static void test_short_videos_pad(void) {
    int64_t f[8];
    dj_clip_spec loop = clip(8, 2, DJ_CLIP_RANDOM);
    CHECK(dj_clip_sample(&loop, 5, -1, -1, 0, 1, 0, 0, 0, f) == DJ_OK);
    int64_t want_loop[8] = {0, 2, 4, 1, 3, 0, 2, 4}; /* 0,2,..,14 mod 5 */
    CHECK(memcmp(f, want_loop, sizeof f) == 0);
    dj_clip_spec last = loop;
    last.pad = DJ_PAD_REPEAT_LAST;
    last.mode = DJ_CLIP_UNIFORM;
    last.num_clips = 3;
    for (int k = 0; k < 3; k++) {
        CHECK(dj_clip_sample(&last, 5, -1, -1, 0, 1, 0, 0, k, f) == DJ_OK);
        int64_t want_last[8] = {0, 2, 4, 4, 4, 4, 4, 4};
        CHECK(memcmp(f, want_last, sizeof f) == 0);
    }
    dj_clip_spec one = clip(4, 3, DJ_CLIP_RANDOM);
    CHECK(dj_clip_sample(&one, 1, -1, -1, 0, 1, 0, 0, 0, f) == DJ_OK);
    for (int i = 0; i < 4; i++)
        CHECK_EQ_INT(f[i], 0);
    CHECK(dj_clip_sample(&one, 0, -1, -1, 0, 1, 0, 0, 0, f) == DJ_ERR_RANGE);
    CHECK_STR_CONTAINS(dj_error_message(), "no frames");
}

static void test_frame_range_respected(void) {
    int64_t f[6];
    dj_clip_spec modes[] = {clip(6, 3, DJ_CLIP_RANDOM), clip(6, 3, DJ_CLIP_CENTER), clip(6, 0, DJ_CLIP_TSN_TRAIN),
                            clip(6, 0, DJ_CLIP_TSN_TEST), clip(6, 5, DJ_CLIP_RANDOM)};
    for (size_t m = 0; m < sizeof modes / sizeof modes[0]; m++)
        for (uint64_t id = 0; id < 200; id++) {
            CHECK(dj_clip_sample(&modes[m], 500, 120, 150, 0, 4, 1, id, 0, f) == DJ_OK);
            for (int i = 0; i < 6; i++)
                CHECK_MSG(f[i] >= 120 && f[i] < 150, "mode %zu frame %lld", m, (long long)f[i]);
        }
    /* a range past the end is cut to the video; an empty one fails */
    CHECK(dj_clip_sample(&modes[0], 130, 120, 150, 0, 4, 1, 0, 0, f) == DJ_OK);
    for (int i = 0; i < 6; i++)
        CHECK(f[i] >= 120 && f[i] < 130);
    CHECK(dj_clip_sample(&modes[0], 100, 120, 150, 0, 4, 1, 0, 0, f) == DJ_ERR_RANGE);
}

static void test_target_fps(void) {
    dj_clip_spec s = clip(5, 1, DJ_CLIP_CENTER);
    s.target_fps = 10;
    int64_t f[5];
    /* 30 fps source: every 3rd frame */
    CHECK(dj_clip_sample(&s, 1000, -1, -1, 30, 0, 0, 0, 0, f) == DJ_OK);
    for (int i = 1; i < 5; i++)
        CHECK_EQ_INT(f[i] - f[i - 1], 3);
    /* 25 fps source at 10 fps: times 0, .1, .2 ... -> frames 0, 2(.5), 5, 7(.5), 10 */
    CHECK(dj_clip_sample(&s, 11, -1, -1, 25, 0, 0, 0, 0, f) == DJ_OK);
    int64_t want[5] = {0, 2, 5, 7, 10};
    CHECK(memcmp(f, want, sizeof f) == 0);
    CHECK(dj_clip_sample(&s, 100, -1, -1, 0, 0, 0, 0, 0, f) == DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "source fps");
}

/* By timestamps: on constant-rate tables (any tick size, ranges, modes,
 * views, rates above and below the source's) the frames of
 * dj_clip_sample_timed are dj_clip_sample's; on a variable-rate one (30
 * fps, then 240 fps slow motion, then 30 again) each sample is the frame
 * shown at its time, where counting frames by the mean rate lands far off. */
static void test_target_fps_by_timestamps(void) {
    static dj_frame_entry table[2000];
    int64_t f[16], g[16];
    const dj_clip_mode modes[3] = {DJ_CLIP_RANDOM, DJ_CLIP_UNIFORM, DJ_CLIP_CENTER};
    const double rates[6] = {10, 12.5, 7.3, 30, 60, 1};
    const int ticks[4] = {1, 512, 1001, 3};
    int compared = 0;
    for (int trial = 0; trial < 600; trial++) {
        int fps = trial % 2 ? 30 : 25, d = ticks[trial % 4];
        int64_t n = 1 + (trial * 37) % 400;
        for (int64_t k = 0; k < n; k++)
            table[k].pts = 1000 * d + k * d; /* tb 1/(fps d): frame k at 1000/fps + k/fps s */
        dj_clip_spec s = clip(1 + trial % 16, 1, modes[trial % 3]);
        s.num_clips = s.mode == DJ_CLIP_UNIFORM ? 1 + trial % 4 : 0;
        s.target_fps = rates[trial % 6];
        int64_t lo = trial % 5 == 0 ? n / 4 : -1, hi = trial % 7 == 0 ? n - n / 5 : -1;
        int view = s.mode == DJ_CLIP_UNIFORM ? trial % s.num_clips : 0;
        dj_status a = dj_clip_sample(&s, n, lo, hi, fps, 9, 2, (uint64_t)trial, view, f);
        dj_status b = dj_clip_sample_timed(&s, table, 1, fps * d, n, lo, hi, fps, 9, 2, (uint64_t)trial, view, g);
        CHECK_EQ_INT(a, b);
        if (a == DJ_OK && b == DJ_OK) {
            CHECK_MSG(memcmp(f, g, sizeof f[0] * (size_t)s.num_frames) == 0,
                      "trial %d: %d frames of %lld at %g fps from %d fps differ", trial, s.num_frames, (long long)n,
                      s.target_fps, fps);
            compared++;
        }
        if (!memcmp(f, g, sizeof f[0] * (size_t)s.num_frames))
            continue;
        dj_test_fail_at(__FILE__, __LINE__, "stopping after trial %d", trial);
        break;
    }
    CHECK(compared > 500);
    /* variable rate, time base 1/7680 s: 2 s at 30 fps, 1 s at 240 fps, 2 s at 30 */
    int64_t n = 0, t = 0;
    for (; n < 60; n++, t += 256)
        table[n].pts = t;
    for (int i = 0; i < 240; i++, n++, t += 32)
        table[n].pts = t;
    for (int i = 0; i < 60; i++, n++, t += 256)
        table[n].pts = t;
    double mean_fps = (double)(n - 1) / ((double)table[n - 1].pts / 7680);
    dj_clip_spec s = clip(16, 1, DJ_CLIP_RANDOM);
    s.target_fps = 5;
    double worst_timed = 0, worst_counted = 0;
    for (uint64_t c = 0; c < 200; c++) {
        CHECK(dj_clip_sample_timed(&s, table, 1, 7680, n, -1, -1, mean_fps, 1, 0, c, 0, g) == DJ_OK);
        CHECK(dj_clip_sample(&s, n, -1, -1, mean_fps, 1, 0, c, 0, f) == DJ_OK);
        for (int i = 0; i < 16; i++) {
            double want = (double)table[g[0]].pts + i * 7680.0 / 5; /* the i-th sample's time */
            CHECK(g[i] >= 0 && g[i] < n && (double)table[g[i]].pts <= want + 1e-6);
            CHECK(g[i] == n - 1 || (double)table[g[i] + 1].pts > want + 1e-6); /* the frame shown then */
            double off = fabs((double)table[g[i]].pts - want) / 7680, offc;
            worst_timed = off > worst_timed ? off : worst_timed;
            offc = fabs((double)table[f[i]].pts - ((double)table[f[0]].pts + i * 7680.0 / 5)) / 7680;
            worst_counted = offc > worst_counted ? offc : worst_counted;
        }
    }
    CHECK_MSG(worst_timed < 1.0 / 30 + 1e-9, "a sample %.3f s from its time", worst_timed);
    CHECK_MSG(worst_counted > 0.2, "counting frames stayed within %.3f s: the table is not variable enough",
              worst_counted);
    /* a clip longer than the video is padded as by frame counts */
    s = clip(16, 1, DJ_CLIP_CENTER);
    s.target_fps = 1;
    CHECK(dj_clip_sample_timed(&s, table, 1, 7680, 20, -1, -1, 30, 1, 0, 0, 0, g) == DJ_OK);
    CHECK(dj_clip_sample(&s, 20, -1, -1, 30, 1, 0, 0, 0, f) == DJ_OK);
    CHECK(memcmp(f, g, sizeof f) == 0);
}

static void test_bad_clip_specs(void) {
    int64_t f[4];
    dj_clip_spec s = clip(0, 1, DJ_CLIP_RANDOM);
    CHECK(dj_clip_sample(&s, 100, -1, -1, 0, 0, 0, 0, 0, f) == DJ_ERR_INVALID);
    s = clip(4, -2, DJ_CLIP_RANDOM);
    CHECK(dj_clip_sample(&s, 100, -1, -1, 0, 0, 0, 0, 0, f) == DJ_ERR_INVALID);
    s = clip(4, 1, (dj_clip_mode)42);
    CHECK(dj_clip_sample(&s, 100, -1, -1, 0, 0, 0, 0, 0, f) == DJ_ERR_INVALID);
    s = clip(4, 1, DJ_CLIP_RANDOM);
    CHECK(dj_clip_sample(&s, 100, -1, -1, 0, 0, 0, 0, 0, NULL) == DJ_ERR_INVALID);
    CHECK(dj_clip_sample(NULL, 100, -1, -1, 0, 0, 0, 0, 0, f) == DJ_ERR_INVALID);
    s = clip(4, 1, DJ_CLIP_UNIFORM);
    s.num_clips = 5000;
    CHECK(dj_clip_sample(&s, 100, -1, -1, 0, 0, 0, 0, 0, f) == DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "number of clips");
    s = clip(4, 1, DJ_CLIP_RANDOM);
    s.target_fps = 0.01; /* 1000+ frames between samples */
    CHECK(dj_clip_sample(&s, 100, -1, -1, 30, 0, 0, 0, 0, f) == DJ_ERR_INVALID);
}

/* ---- crops ---- */

static void test_random_resized_crop(void) {
    dj_spatial_spec s = {.mode = DJ_SPATIAL_RESIZED_CROP, .scale_min = 0.25f, .scale_max = 1.0f};
    double area_sum = 0;
    int left = 0, right = 0;
    for (uint64_t k = 0; k < 3000; k++) {
        dj_crop_box c, d;
        CHECK(dj_crop_random_resized(320, 240, &s, k, &c) == DJ_OK);
        CHECK(dj_crop_random_resized(320, 240, &s, k, &d) == DJ_OK);
        CHECK(memcmp(&c, &d, sizeof c) == 0);
        CHECK(c.x >= 0 && c.y >= 0 && c.w > 0 && c.h > 0 && c.x + c.w <= 320 && c.y + c.h <= 240);
        double frac = (double)c.w * c.h / (320.0 * 240.0), ar = (double)c.w / c.h;
        CHECK_MSG(frac > 0.24 && frac <= 1.0, "area fraction %g", frac);
        CHECK_MSG(ar > 0.74 && ar < 1.35, "aspect %g", ar);
        area_sum += frac;
        left += c.x + c.w / 2 < 160;
        right += c.x + c.w / 2 > 160;
    }
    CHECK(area_sum / 3000 > 0.45 && area_sum / 3000 < 0.75);
    CHECK(left > 1000 && right > 1000);
    /* impossible aspects fall back to a centre crop of the clamped ratio */
    dj_spatial_spec wide = {.mode = DJ_SPATIAL_RESIZED_CROP, .scale_min = 0.99f, .scale_max = 1.0f,
                            .ratio_min = 3.0f, .ratio_max = 4.0f};
    dj_crop_box c;
    CHECK(dj_crop_random_resized(100, 100, &wide, 1, &c) == DJ_OK);
    CHECK(c.w == 100 && c.h == 33 && c.x == 0 && c.y == 33);
    dj_spatial_spec bad = {.mode = DJ_SPATIAL_RESIZED_CROP, .scale_min = 0.5f, .scale_max = 0.2f};
    CHECK(dj_crop_random_resized(100, 100, &bad, 1, &c) == DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "scale range");
    CHECK(dj_crop_random_resized(0, 100, &s, 1, &c) == DJ_ERR_INVALID);
}

/* ---- plans ---- */

static dj_plan_entry *make_videos(int n) {
    dj_plan_entry *v = calloc((size_t)n, sizeof *v);
    for (int i = 0; i < n; i++)
        v[i] = (dj_plan_entry){.frame_count = 20 + (i * 37) % 200, .width = 320 + (i % 3) * 16, .height = 240,
                               .fps = 30, .start_frame = -1, .end_frame = -1};
    return v;
}

static dj_plan_options train_options(int batch) {
    dj_plan_options o = {.batch_size = batch, .shard = {.shuffle = 1, .world = 1}, .clip = clip(8, 4, DJ_CLIP_RANDOM)};
    o.spatial = (dj_spatial_spec){.mode = DJ_SPATIAL_RESIZED_CROP, .flip_prob = 0.5f};
    return o;
}

static int slots_equal(const dj_batch_plan *p, int64_t i, const dj_batch_plan *q, int64_t j) {
    const dj_plan_slot *a = &p->slots[i], *b = &q->slots[j];
    return a->entry == b->entry && a->sample == b->sample && a->flip == b->flip &&
           memcmp(&a->crop, &b->crop, sizeof a->crop) == 0 &&
           memcmp(a->frames, b->frames, sizeof(int64_t) * (size_t)p->frames_per_clip) == 0;
}

static void test_plan_deterministic_and_varies(void) {
    int n = 50;
    dj_plan_entry *v = make_videos(n);
    dj_plan_options o = train_options(8);
    dj_batch_plan *a, *b, *c, *d;
    CHECK(dj_batch_plan_create(v, n, 1, 0, &o, &a) == DJ_OK);
    CHECK(dj_batch_plan_create(v, n, 1, 0, &o, &b) == DJ_OK);
    CHECK(dj_batch_plan_create(v, n, 1, 1, &o, &c) == DJ_OK);
    CHECK(dj_batch_plan_create(v, n, 2, 0, &o, &d) == DJ_OK);
    CHECK_EQ_INT(a->num_slots, 50);
    CHECK_EQ_INT(a->num_batches, 7);
    CHECK_EQ_INT(a->batches[6].num_slots, 2);
    int same_b = 0, same_c = 0, same_d = 0, flips = 0;
    for (int64_t i = 0; i < a->num_slots; i++) {
        same_b += slots_equal(a, i, b, i);
        same_c += slots_equal(a, i, c, i);
        same_d += slots_equal(a, i, d, i);
        flips += a->slots[i].flip;
        const dj_plan_slot *s = &a->slots[i];
        const dj_plan_entry *vi = &v[s->entry];
        CHECK(s->crop.x >= 0 && s->crop.x + s->crop.w <= vi->width && s->crop.y + s->crop.h <= vi->height);
        for (int t = 0; t < 8; t++)
            CHECK(s->frames[t] >= 0 && s->frames[t] < vi->frame_count);
    }
    CHECK_EQ_INT(same_b, 50);
    CHECK(same_c < 5 && same_d < 5);
    CHECK(flips > 10 && flips < 40);
    dj_batch_plan_free(a);
    dj_batch_plan_free(b);
    dj_batch_plan_free(c);
    dj_batch_plan_free(d);
    /* drop_last drops the partial batch */
    o.shard.drop_last = 1;
    CHECK(dj_batch_plan_create(v, n, 1, 0, &o, &a) == DJ_OK);
    CHECK_EQ_INT(a->num_batches, 6);
    CHECK_EQ_INT(a->num_slots, 48);
    dj_batch_plan_free(a);
    free(v);
}

/* The ranks' plans together are the one-rank plan: same slots, same draws. */
static void test_plan_ranks_partition_the_single_plan(void) {
    int n = 37;
    dj_plan_entry *v = make_videos(n);
    dj_plan_options o = train_options(4);
    dj_batch_plan *whole;
    CHECK(dj_batch_plan_create(v, n, 9, 3, &o, &whole) == DJ_OK);
    int found[37] = {0};
    for (int r = 0; r < 3; r++) {
        o.shard.rank = r;
        o.shard.world = 3;
        dj_batch_plan *p;
        CHECK(dj_batch_plan_create(v, n, 9, 3, &o, &p) == DJ_OK);
        for (int64_t i = 0; i < p->num_slots; i++) {
            int64_t pos = p->slots[i].sample;
            CHECK(pos % 3 == r);
            CHECK(slots_equal(p, i, whole, pos));
            found[pos]++;
        }
        dj_batch_plan_free(p);
    }
    for (int i = 0; i < n; i++)
        CHECK(found[i] == 1);
    dj_batch_plan_free(whole);
    free(v);
}

/* Global batches dealt over ranks (8 over 3: 3/3/2): the ranks' k-th batches
 * are exactly the one-process k-th batch, same slots and draws; with and
 * without drop_last (a partial last global batch), and for every world. */
static void test_plan_global_batch_uneven(void) {
    CHECK_EQ_INT(dj_shard_batch_share(8, 0, 3), 3);
    CHECK_EQ_INT(dj_shard_batch_share(8, 1, 3), 3);
    CHECK_EQ_INT(dj_shard_batch_share(8, 2, 3), 2);
    CHECK_EQ_INT(dj_shard_batch_share(2, 2, 3), 0);
    const int n = 37, G = 8;
    dj_plan_entry *v = make_videos(n);
    for (int drop = 1; drop >= 0; drop--)
        for (int world = 1; world <= 5; world++) {
            dj_plan_options o = train_options(G);
            o.shard.drop_last = drop;
            dj_batch_plan *whole = NULL;
            CHECK(dj_batch_plan_create(v, n, 9, 3, &o, &whole) == DJ_OK);
            if (!whole)
                continue;
            CHECK_EQ_INT(whole->num_batches, drop ? 4 : 5);
            int found[37] = {0}, total = 0;
            for (int r = 0; r < world; r++) {
                o.batch_size = 0; /* the rank's share */
                o.shard.rank = r;
                o.shard.world = world;
                o.shard.global_batch = G;
                dj_batch_plan *p = NULL;
                CHECK(dj_batch_plan_create(v, n, 9, 3, &o, &p) == DJ_OK);
                if (!p)
                    continue;
                const int share = dj_shard_batch_share(G, r, world);
                for (int64_t b = 0; b < p->num_batches; b++) {
                    const dj_plan_batch *pb = &p->batches[b];
                    CHECK(b < 4 ? pb->num_slots == share : pb->num_slots <= share);
                    for (int i = 0; i < pb->num_slots; i++) {
                        int64_t pos = p->slots[pb->first_slot + i].sample;
                        CHECK(pos / G == b);        /* in the one-process batch b */
                        CHECK(pos % G % world == r); /* dealt j % world */
                        CHECK(slots_equal(p, pb->first_slot + i, whole, pos));
                        found[pos]++;
                        total++;
                    }
                }
                CHECK_EQ_INT(p->num_slots, dj_shard_count(n, &o.shard));
                dj_batch_plan_free(p);
            }
            CHECK_EQ_INT(total, drop ? 32 : 37);
            for (int i = 0; i < (drop ? 32 : 37); i++)
                CHECK(found[i] == 1);
            /* the even deal is the plain p % world deal: same plan as before */
            if (G % world == 0) {
                dj_plan_options e = train_options(G / world), g = e;
                e.shard.drop_last = g.shard.drop_last = drop;
                e.shard.world = g.shard.world = world;
                e.shard.rank = g.shard.rank = world - 1;
                g.shard.global_batch = G;
                dj_batch_plan *pe = NULL, *pg = NULL;
                CHECK(dj_batch_plan_create(v, n, 9, 3, &e, &pe) == DJ_OK);
                CHECK(dj_batch_plan_create(v, n, 9, 3, &g, &pg) == DJ_OK);
                if (pe && pg) {
                    CHECK_EQ_INT(pe->num_slots, pg->num_slots);
                    for (int64_t i = 0; i < pe->num_slots && i < pg->num_slots; i++)
                        CHECK(slots_equal(pe, i, pg, i) && pe->slots[i].sample == pg->slots[i].sample);
                }
                dj_batch_plan_free(pe);
                dj_batch_plan_free(pg);
            }
            dj_batch_plan_free(whole);
        }
    /* a batch size that is not the share, and a rank without any sample */
    dj_plan_options o = train_options(4);
    o.shard = (dj_shard_options){.shuffle = 1, .drop_last = 1, .rank = 2, .world = 3, .global_batch = 8};
    dj_batch_plan *p = NULL;
    CHECK(dj_batch_plan_create(v, n, 9, 3, &o, &p) == DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "not rank 2's share");
    o.batch_size = 2;
    CHECK(dj_batch_plan_create(v, n, 9, 3, &o, &p) == DJ_OK);
    CHECK(p && p->num_batches == 4 && p->batches[0].num_slots == 2);
    dj_batch_plan_free(p);
    p = NULL;
    o.shard.global_batch = 2;
    o.batch_size = 0;
    CHECK(dj_batch_plan_create(v, n, 9, 3, &o, &p) == DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "no sample for rank 2 of 3");
    o.shard.global_batch = -1;
    CHECK(dj_shard_count(10, &o.shard) == -1);
    free(v);
}

static void test_plan_multiview_dedup(void) {
    int n = 5;
    dj_plan_entry *v = make_videos(n);
    v[0].frame_count = 40;
    dj_plan_options o = {.batch_size = 12, .shard = {.world = 1}};
    o.clip = clip(8, 2, DJ_CLIP_UNIFORM);
    o.clip.num_clips = 4; /* 40 frames, span 15: starts 0, 8, 17, 25: views overlap */
    o.spatial = (dj_spatial_spec){.mode = DJ_SPATIAL_SHORT_SIDE, .short_side = 128, .crop_size = 112, .num_crops = 3};
    dj_batch_plan *p;
    CHECK(dj_batch_plan_create(v, n, 0, 0, &o, &p) == DJ_OK);
    CHECK_EQ_INT(p->views_per_sample, 12);
    CHECK_EQ_INT(p->num_slots, 60);
    CHECK_EQ_INT(p->num_batches, 5);
    /* batch 0: the 12 views of entry 0 (unshuffled), one decode list */
    CHECK_EQ_INT(p->batches[0].num_videos, 1);
    const dj_plan_video *vid = &p->videos[p->batches[0].first_video];
    CHECK_EQ_INT(vid->entry, 0);
    for (int j = 1; j < vid->num_frames; j++)
        CHECK(vid->frames[j] > vid->frames[j - 1]);
    /* distinct frames of 4 clips of 8 with stride 2 over 40 frames */
    int distinct[40] = {0}, nd = 0;
    for (int s = 0; s < 12; s++) {
        const dj_plan_slot *sl = &p->slots[s];
        CHECK(sl->temporal_view == s / 3 && sl->spatial_view == s % 3);
        for (int t = 0; t < 8; t++) {
            CHECK_EQ_INT(vid->frames[sl->frame_pos[t]], sl->frames[t]);
            if (!distinct[sl->frames[t]]++)
                nd++;
        }
    }
    CHECK_EQ_INT(vid->num_frames, nd);
    CHECK(nd < 32); /* overlap was shared */
    /* the three spatial crops of one clip: left, centre, right */
    CHECK(p->slots[0].crop.x < p->slots[1].crop.x && p->slots[1].crop.x < p->slots[2].crop.x);
    CHECK(p->slots[0].crop.y == p->slots[1].crop.y);
    CHECK(p->slots[0].flip == 0);
    dj_batch_plan_free(p);

    /* a batch that splits a video's views gets one list per batch */
    o.batch_size = 5;
    CHECK(dj_batch_plan_create(v, n, 0, 0, &o, &p) == DJ_OK);
    CHECK_EQ_INT(p->batches[2].num_videos, 2); /* slots 10..14: entry 0 views 10-11, entry 1 views 0-2 */
    for (int64_t b = 0; b < p->num_batches; b++)
        for (int i = 0; i < p->batches[b].num_slots; i++) {
            const dj_plan_slot *sl = &p->slots[p->batches[b].first_slot + i];
            CHECK(sl->video >= p->batches[b].first_video &&
                  sl->video < p->batches[b].first_video + p->batches[b].num_videos);
            CHECK_EQ_INT(p->videos[sl->video].entry, sl->entry);
        }
    dj_batch_plan_free(p);
    free(v);
}

static void test_plan_scale_jitter_and_batch_size_independence(void) {
    int n = 30;
    dj_plan_entry *v = make_videos(n);
    dj_plan_options o = train_options(4);
    o.spatial = (dj_spatial_spec){.mode = DJ_SPATIAL_SCALE_JITTER, .jitter_min = 128, .jitter_max = 160,
                                  .crop_size = 112, .flip_prob = 0.5f};
    dj_batch_plan *a, *b;
    CHECK(dj_batch_plan_create(v, n, 4, 2, &o, &a) == DJ_OK);
    o.batch_size = 7;
    CHECK(dj_batch_plan_create(v, n, 4, 2, &o, &b) == DJ_OK);
    CHECK_EQ_INT(a->num_slots, b->num_slots);
    int sides[2] = {1 << 30, 0};
    for (int64_t i = 0; i < a->num_slots; i++) {
        CHECK(slots_equal(a, i, b, i)); /* the draws do not depend on the batch size */
        const dj_plan_slot *s = &a->slots[i];
        const dj_plan_entry *vi = &v[s->entry];
        CHECK(s->crop.w == s->crop.h);
        /* short side 240 scaled to S in [128, 160]: crop 112 covers 112*240/S source pixels */
        CHECK(s->crop.w >= 167 && s->crop.w <= 211);
        CHECK(s->crop.x >= 0 && s->crop.y >= 0 && s->crop.x + s->crop.w <= vi->width &&
              s->crop.y + s->crop.h <= vi->height);
        sides[0] = s->crop.w < sides[0] ? s->crop.w : sides[0];
        sides[1] = s->crop.w > sides[1] ? s->crop.w : sides[1];
    }
    CHECK(sides[1] - sides[0] > 15); /* the scale does vary */
    dj_batch_plan_free(a);
    dj_batch_plan_free(b);
    o.spatial.jitter_min = 100; /* crop larger than the smallest short side */
    CHECK(dj_batch_plan_create(v, n, 4, 2, &o, &a) == DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "scale jitter");
    free(v);
}

static void test_plan_bad_inputs(void) {
    dj_plan_entry *v = make_videos(4);
    dj_plan_options o = train_options(2);
    dj_batch_plan *p = (dj_batch_plan *)1;
    o.batch_size = 0;
    CHECK(dj_batch_plan_create(v, 4, 0, 0, &o, &p) == DJ_ERR_INVALID);
    CHECK(p == NULL);
    o = train_options(2);
    v[2].width = 0;
    CHECK(dj_batch_plan_create(v, 4, 0, 0, &o, &p) == DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "entry 2");
    v[2].width = 320;
    o.shard.rank = 2;
    o.shard.world = 2;
    CHECK(dj_batch_plan_create(v, 4, 0, 0, &o, &p) == DJ_ERR_INVALID);
    o = train_options(2);
    v[1].start_frame = 500, v[1].end_frame = 600; /* beyond the video */
    CHECK(dj_batch_plan_create(v, 4, 0, 0, &o, &p) == DJ_ERR_RANGE);
    CHECK_STR_CONTAINS(dj_error_message(), "entry 1");
    v[1].start_frame = v[1].end_frame = -1;
    o.clip.target_fps = 15;
    v[3].fps = 0;
    CHECK(dj_batch_plan_create(v, 4, 0, 0, &o, &p) == DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "fps");
    /* an empty dataset is an empty plan */
    o = train_options(2);
    CHECK(dj_batch_plan_create(v, 0, 0, 0, &o, &p) == DJ_OK);
    CHECK_EQ_INT(p->num_batches, 0);
    dj_batch_plan_free(p);
    free(v);
}

int main(void) {
    DJ_RUN(test_epoch_order_is_a_permutation);
    DJ_RUN(test_shards_disjoint_and_covering);
    DJ_RUN(test_random_clip_in_range_and_deterministic);
    DJ_RUN(test_uniform_views_evenly_spaced);
    DJ_RUN(test_tsn_segments);
    DJ_RUN(test_short_videos_pad);
    DJ_RUN(test_frame_range_respected);
    DJ_RUN(test_target_fps);
    DJ_RUN(test_target_fps_by_timestamps);
    DJ_RUN(test_bad_clip_specs);
    DJ_RUN(test_random_resized_crop);
    DJ_RUN(test_plan_deterministic_and_varies);
    DJ_RUN(test_plan_ranks_partition_the_single_plan);
    DJ_RUN(test_plan_global_batch_uneven);
    DJ_RUN(test_plan_multiview_dedup);
    DJ_RUN(test_plan_scale_jitter_and_batch_size_independence);
    DJ_RUN(test_plan_bad_inputs);
    return dj_test_finish();
}
