/* transform.c — crop + colour conversion + resize of a decoded frame into a
 * batch slice.
 *
 * 8-bit YUV 4:2:0 frames (what H.264, HEVC, VP9 and AV1 decode to: nearly
 * every frame a loader sees) take dojo's own path (yuv_rows.h): per output
 * row, the separable antialiased bilinear filter of dj_rs_axis_make on each
 * plane (vertical, then horizontal), the matrix, the flip and the
 * normalisation, in one pass, written straight into the batch. Its filter
 * is libswscale's SWS_BILINEAR in effect (outputs within 1 level, 0.01 on
 * average; tests), a crop at the output's size skips the filter, and it runs
 * 1.7x libswscale on 320x240 -> 112x112 and 2.2x on same-size crops (`dojo
 * bench transform`, one thread, AVX-512). A first hand-written attempt
 * (fused, gcc -O3, SSE2) had measured no faster than swscale: the gain came
 * from filtering vertically first (the horizontal taps then run on the
 * output rows only), permutes instead of gathers for the horizontal taps and
 * whole-vector byte loads (see yuv_rows_avx512.c).
 *
 * Every other format (NV12, 4:2:2, 4:4:4, 10-bit, RGB, gray), and filters
 * wider than DJ_YUV_MAX_TAPS, go through libswscale in one pass: it reads
 * the cropped planes in place (we only offset the plane pointers), converts
 * any matrix, range and bit depth, and writes planar GBRP, which maps
 * straight onto the channel-planar NCTHW layout, into a padded scratch (its
 * vector loops write past the end of narrow rows) that the copy or normalise
 * (+ flip) pass reads while it is in cache (asking swscale for GBRPF32
 * directly measured the same, 10.1k vs 9.9k frames/s, and would still need a
 * pass for the mean/std and the flip). */
#include "dojo/transform.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <libavutil/frame.h>
#include <libavutil/imgutils.h>
#include <libavutil/pixdesc.h>
#include <libavutil/pixfmt.h>
#include <libswscale/swscale.h>

#include "video/yuv_rows.h"

const dj_norm dj_norm_imagenet = {{0.485f, 0.456f, 0.406f}, {0.229f, 0.224f, 0.225f}};

enum { DJ_SWS_CACHE = 16, DJ_MAX_SIDE = 16384 };

typedef struct dj_sws_key {
    int src_w, src_h, src_fmt, dst_w, dst_h, range, colorspace;
} dj_sws_key;

typedef struct dj_sws_entry {
    dj_sws_key key;
    struct SwsContext *ctx;
    uint64_t last_used;
} dj_sws_entry;

struct dj_transformer {
    dj_sws_entry cache[DJ_SWS_CACHE];
    uint64_t tick;
    int64_t created;
    void *scratch; /* libswscale's GBRP output: 3 planes of H+1 rows of W rounded up to 64 bytes */
    size_t scratch_bytes;
    void *rows; /* the direct 4:2:0 paths' row work (floats) */
    size_t rows_bytes;
    void *turn; /* a turned frame's output in its stored orientation (dj_transform_rotated) */
    size_t turn_bytes;
    dj_yuv_kernels k;
    struct dj_rs_plan *plans[DJ_SWS_CACHE]; /* resize filters of the direct path, least recently used evicted */
};

/* ---- resize filters of the direct 4:2:0 path ------------------------------- */

/* One axis of a separable resize: for output i, `taps` weights from input
 * start[i]. */
typedef struct dj_rs_axis {
    int taps;
    int32_t *start;
    float *w;
    int span; /* the blocked copy of dj_yuv_taps */
    int32_t *base, *off;
    float *bw;
} dj_rs_axis;

/* The filters of one (crop size, output size): luma, and chroma for either
 * parity of the crop's offset (which chroma sample the crop starts in). */
typedef struct dj_rs_plan {
    int cw, ch, W, H;
    dj_rs_axis lh, lv, chh[2], chv[2];
    uint64_t last_used;
} dj_rs_plan;

static void dj_rs_axis_free(dj_rs_axis *a) {
    free(a->start);
    free(a->w);
    free(a->base);
    free(a->off);
    free(a->bw);
}

/* The blocks of 16 outputs of a made axis (see dj_yuv_taps). */
static int dj_rs_axis_block(dj_rs_axis *a, int n) {
    int nb = (n + 15) / 16, T = a->taps;
    a->base = malloc((size_t)nb * sizeof *a->base);
    a->off = malloc((size_t)nb * 16 * sizeof *a->off);
    a->bw = malloc((size_t)nb * 16 * T * sizeof *a->bw);
    if (!a->base || !a->off || !a->bw)
        return 0;
    a->span = 0;
    for (int b = 0; b < nb; b++) {
        a->base[b] = a->start[16 * b];
        for (int l = 0; l < 16; l++) {
            int i = 16 * b + l < n ? 16 * b + l : n - 1;
            a->off[16 * b + l] = a->start[i] - a->base[b];
            a->span = a->off[16 * b + l] + T > a->span ? a->off[16 * b + l] + T : a->span;
            for (int t = 0; t < T; t++)
                a->bw[((size_t)b * T + t) * 16 + l] = a->w[(size_t)i * T + t];
        }
    }
    return 1;
}

static void dj_rs_plan_free(dj_rs_plan *p) {
    if (!p)
        return;
    dj_rs_axis_free(&p->lh), dj_rs_axis_free(&p->lv);
    for (int i = 0; i < 2; i++)
        dj_rs_axis_free(&p->chh[i]), dj_rs_axis_free(&p->chv[i]);
    free(p);
}

/* The input samples [lo, hi] of [0, in) within `support` of centre c
 * (sample x is centred at x + 0.5). */
static void dj_rs_window(double c, double support, int in, int *lo, int *hi) {
    *lo = (int)ceil(c - support - 0.5), *hi = (int)floor(c + support - 0.5);
    *lo = *lo < 0 ? 0 : *lo, *hi = *hi > in - 1 ? in - 1 : *hi;
}

/* Chroma samples a crop of n luma samples starting at parity `par` (its
 * offset's lowest bit) covers in 4:2:0. */
static int dj_chroma_span(int par, int n) { return ((par + n - 1) >> 1) + 1; }

/* The antialiased bilinear filter (a triangle as wide as the scale when
 * downscaling, as libswscale's SWS_BILINEAR and torchvision's antialiased
 * Resize): output i of n is centred at phase + (i + 0.5) * scale input
 * samples (sample x centred at x + 0.5), takes the samples within `support`
 * of that centre, weighted 1 - distance / support, restricted to [0, in) and
 * normalised. Returns 0 when out of memory or wider than DJ_YUV_MAX_TAPS. */
static int dj_rs_axis_make(int in, int n, double scale, double phase, dj_rs_axis *a) {
    if (in <= 0 || n <= 0)
        return 0;
    double support = scale > 1 ? scale : 1;
    int taps = 1, lo, hi;
    for (int i = 0; i < n; i++) {
        dj_rs_window(phase + (i + 0.5) * scale, support, in, &lo, &hi);
        taps = hi - lo + 1 > taps ? hi - lo + 1 : taps;
    }
    if (taps > DJ_YUV_MAX_TAPS)
        return 0;
    a->taps = taps;
    a->start = malloc((size_t)n * sizeof *a->start);
    a->w = calloc((size_t)n * taps, sizeof *a->w);
    if (!a->start || !a->w)
        return 0;
    for (int i = 0; i < n; i++) {
        double c = phase + (i + 0.5) * scale, sum = 0, wt[DJ_YUV_MAX_TAPS];
        dj_rs_window(c, support, in, &lo, &hi);
        for (int x = lo; x <= hi; x++) {
            double d = fabs(x + 0.5 - c) / support;
            wt[x - lo] = d < 1 ? 1 - d : 0;
            sum += wt[x - lo];
        }
        int start = lo + taps > in ? in - taps : lo;
        a->start[i] = start;
        if (sum <= 0) { /* centred exactly between samples at the edge: the nearest one */
            int x = (int)floor(c);
            x = x < 0 ? 0 : x > in - 1 ? in - 1 : x;
            a->w[(size_t)i * taps + (x - start)] = 1;
            continue;
        }
        for (int x = lo; x <= hi; x++)
            a->w[(size_t)i * taps + (x - start)] = (float)(wt[x - lo] / sum);
    }
    return dj_rs_axis_block(a, n);
}

/* The plan of a crop cw x ch resized to W x H, from the cache or made. */
static dj_status dj_rs_get(dj_transformer *tf, int cw, int ch, int W, int H, dj_rs_plan **out) {
    *out = NULL;
    int victim = 0;
    tf->tick++;
    for (int i = 0; i < DJ_SWS_CACHE; i++) {
        dj_rs_plan *p = tf->plans[i];
        if (p && p->cw == cw && p->ch == ch && p->W == W && p->H == H) {
            p->last_used = tf->tick;
            *out = p;
            return DJ_OK;
        }
        if (!p || (tf->plans[victim] && p->last_used < tf->plans[victim]->last_used))
            victim = i;
    }
    dj_rs_plan *p = calloc(1, sizeof *p);
    int ok = p != NULL;
    if (ok) {
        *p = (dj_rs_plan){.cw = cw, .ch = ch, .W = W, .H = H, .last_used = tf->tick};
        double sx = (double)cw / W, sy = (double)ch / H;
        ok = dj_rs_axis_make(cw, W, sx, 0, &p->lh) && dj_rs_axis_make(ch, H, sy, 0, &p->lv);
        for (int par = 0; ok && par < 2; par++) /* chroma: half the scale, offset by half a sample on odd crops */
            ok = dj_rs_axis_make(dj_chroma_span(par, cw), W, sx / 2, par / 2.0, &p->chh[par]) &&
                 dj_rs_axis_make(dj_chroma_span(par, ch), H, sy / 2, par / 2.0, &p->chv[par]);
    }
    if (!ok) {
        dj_rs_plan_free(p);
        return DJ_ERR_UNSUPPORTED; /* not an error: the caller takes libswscale */
    }
    dj_rs_plan_free(tf->plans[victim]);
    tf->plans[victim] = p;
    tf->created++;
    *out = p;
    return DJ_OK;
}

dj_frame_view dj_frame_view_of(const dj_frame *f) {
    const AVFrame *av = f->avframe;
    dj_frame_view v = {f->width, f->height, f->format, {f->data[0], f->data[1], f->data[2], f->data[3]},
                       {f->linesize[0], f->linesize[1], f->linesize[2], f->linesize[3]},
                       av ? av->color_range : 0, av ? av->colorspace : 0, f->rotation, f->mirrored != 0};
    return v;
}

int dj_rotation_normal(int degrees) {
    int r = degrees % 360;
    r = r < 0 ? r + 360 : r;
    return r == 90 || r == 180 || r == 270 ? r : 0;
}

void dj_upright_size(int width, int height, int rotation, int *upright_width, int *upright_height) {
    int turned = dj_rotation_normal(rotation) % 180 != 0;
    *upright_width = turned ? height : width;
    *upright_height = turned ? width : height;
}

void dj_frame_view_upright(const dj_frame_view *src, int *width, int *height) {
    dj_upright_size(src->width, src->height, src->rotation, width, height);
}

dj_status dj_transformer_create(dj_transformer **out) {
    if (!out)
        return dj_error_set(DJ_ERR_INVALID, "transformer", "out is NULL");
    *out = calloc(1, sizeof **out);
    if (!*out)
        return dj_error_set(DJ_ERR_NOMEM, "transformer", "out of memory");
    (*out)->k = dj_yuv_select();
    return DJ_OK;
}

void dj_transformer_free(dj_transformer *tf) {
    if (!tf)
        return;
    for (int i = 0; i < DJ_SWS_CACHE; i++)
        sws_freeContext(tf->cache[i].ctx);
    free(tf->scratch);
    free(tf->rows);
    free(tf->turn);
    for (int i = 0; i < DJ_SWS_CACHE; i++)
        dj_rs_plan_free(tf->plans[i]);
    free(tf);
}

int64_t dj_transformer_contexts_created(const dj_transformer *tf) { return tf ? tf->created : 0; }

/* ---- colour ------------------------------------------------------------- */

static int dj_is_yuv(const AVPixFmtDescriptor *d) {
    return !(d->flags & AV_PIX_FMT_FLAG_RGB) && d->nb_components >= 3;
}

/* Full range for YUVJ formats or frames saying so; limited for other YUV.
 * RGB and gray input are full range. */
static int dj_src_full_range(const dj_frame_view *f, const AVPixFmtDescriptor *d) {
    if (!dj_is_yuv(d))
        return 1;
    if (f->format == AV_PIX_FMT_YUVJ420P || f->format == AV_PIX_FMT_YUVJ422P || f->format == AV_PIX_FMT_YUVJ444P ||
        f->format == AV_PIX_FMT_YUVJ440P || f->format == AV_PIX_FMT_YUVJ411P)
        return 1;
    return f->color_range == AVCOL_RANGE_JPEG;
}

/* The YUVJ formats are their YUV twins in full range: swscale warns about
 * the deprecated names, so it gets the twin and the range separately. */
static int dj_sws_format(int fmt) {
    switch (fmt) {
    case AV_PIX_FMT_YUVJ420P: return AV_PIX_FMT_YUV420P;
    case AV_PIX_FMT_YUVJ422P: return AV_PIX_FMT_YUV422P;
    case AV_PIX_FMT_YUVJ444P: return AV_PIX_FMT_YUV444P;
    case AV_PIX_FMT_YUVJ440P: return AV_PIX_FMT_YUV440P;
    case AV_PIX_FMT_YUVJ411P: return AV_PIX_FMT_YUV411P;
    default: return fmt;
    }
}

static int dj_sws_colorspace(int spc) {
    switch (spc) {
    case AVCOL_SPC_BT709: return SWS_CS_ITU709;
    case AVCOL_SPC_FCC: return SWS_CS_FCC;
    case AVCOL_SPC_SMPTE240M: return SWS_CS_SMPTE240M;
    case AVCOL_SPC_BT2020_NCL:
    case AVCOL_SPC_BT2020_CL: return SWS_CS_BT2020;
    default: return SWS_CS_ITU601; /* unspecified, BT470BG, SMPTE170M */
    }
}

/* ---- the scaler cache ----------------------------------------------------- */

static dj_status dj_sws_get(dj_transformer *tf, const dj_sws_key *k, struct SwsContext **out) {
    dj_sws_entry *victim = &tf->cache[0];
    tf->tick++;
    for (int i = 0; i < DJ_SWS_CACHE; i++) {
        dj_sws_entry *e = &tf->cache[i];
        if (e->ctx && memcmp(&e->key, k, sizeof *k) == 0) {
            e->last_used = tf->tick;
            *out = e->ctx;
            return DJ_OK;
        }
        if (!e->ctx || (victim->ctx && e->last_used < victim->last_used))
            victim = e;
    }
    struct SwsContext *c = sws_getContext(k->src_w, k->src_h, (enum AVPixelFormat)k->src_fmt, k->dst_w, k->dst_h,
                                          AV_PIX_FMT_GBRP, SWS_BILINEAR, NULL, NULL, NULL);
    if (!c)
        return dj_error_set(DJ_ERR_UNSUPPORTED, "transform", "libswscale cannot convert %s %dx%d to gbrp %dx%d",
                            av_get_pix_fmt_name((enum AVPixelFormat)k->src_fmt), k->src_w, k->src_h, k->dst_w,
                            k->dst_h);
    const int *coef = sws_getCoefficients(k->colorspace);
    sws_setColorspaceDetails(c, coef, k->range, coef, 1, 0, 1 << 16, 1 << 16);
    sws_freeContext(victim->ctx);
    *victim = (dj_sws_entry){*k, c, tf->tick};
    tf->created++;
    *out = c;
    return DJ_OK;
}

/* ---- checks ------------------------------------------------------------------ */

static dj_status dj_check_frame(const dj_frame_view *f, const AVPixFmtDescriptor **desc) {
    const char *w = "transform";
    if (!f)
        return dj_error_set(DJ_ERR_INVALID, w, "frame is NULL");
    if (f->width <= 0 || f->height <= 0 || f->width > DJ_MAX_SIDE || f->height > DJ_MAX_SIDE)
        return dj_error_set(DJ_ERR_INVALID, w, "frame size %dx%d not in [1, %d]", f->width, f->height, DJ_MAX_SIDE);
    const AVPixFmtDescriptor *d = av_pix_fmt_desc_get((enum AVPixelFormat)f->format);
    if (!d)
        return dj_error_set(DJ_ERR_UNSUPPORTED, w, "unknown pixel format %d", f->format);
    if ((d->flags & (AV_PIX_FMT_FLAG_HWACCEL | AV_PIX_FMT_FLAG_BITSTREAM | AV_PIX_FMT_FLAG_PAL)) ||
        !sws_isSupportedInput((enum AVPixelFormat)f->format))
        return dj_error_set(DJ_ERR_UNSUPPORTED, w, "pixel format %s is not supported", d->name);
    int planes = av_pix_fmt_count_planes((enum AVPixelFormat)f->format);
    for (int p = 0; p < planes; p++)
        if (!f->data[p] || f->linesize[p] <= 0)
            return dj_error_set(DJ_ERR_INVALID, w, "plane %d of the %s frame is missing", p, d->name);
    *desc = d;
    return DJ_OK;
}

static dj_status dj_check_batch(const dj_tensor *b, int n, int t) {
    const char *w = "transform";
    if (!b || !b->data || b->ndim != 5 || b->shape[1] != 3)
        return dj_error_set(DJ_ERR_INVALID, w, "batch must be an N x 3 x T x H x W tensor");
    if (b->dtype != DJ_DTYPE_F32 && b->dtype != DJ_DTYPE_U8)
        return dj_error_set(DJ_ERR_INVALID, w, "batch dtype %s: need f32 or u8", dj_dtype_name(b->dtype));
    if (b->shape[3] <= 0 || b->shape[4] <= 0 || b->shape[3] > DJ_MAX_SIDE || b->shape[4] > DJ_MAX_SIDE)
        return dj_error_set(DJ_ERR_INVALID, w, "output size %lldx%lld not in [1, %d]", (long long)b->shape[4],
                            (long long)b->shape[3], DJ_MAX_SIDE);
    if (n < 0 || n >= b->shape[0] || t < 0 || t >= b->shape[2])
        return dj_error_set(DJ_ERR_RANGE, w, "slot (n=%d, t=%d) outside batch %lldx3x%lld", n, t,
                            (long long)b->shape[0], (long long)b->shape[2]);
    return DJ_OK;
}

static dj_status dj_check_crop(const dj_frame_view *f, const dj_crop_box *c) {
    if (c->w <= 0 || c->h <= 0 || c->x < 0 || c->y < 0 || c->x > f->width - c->w || c->y > f->height - c->h)
        return dj_error_set(DJ_ERR_RANGE, "transform", "crop %dx%d at (%d, %d) is not inside the %dx%d frame", c->w,
                            c->h, c->x, c->y, f->width, f->height);
    return DJ_OK;
}

/* The crop box in the upright picture (crop, or the whole picture), checked
 * against its size (*up: the frame's view at the upright size). */
static dj_status dj_upright_box(const dj_frame_view *src, const dj_crop_box *crop, dj_frame_view *up,
                                dj_crop_box *box) {
    *up = *src;
    dj_frame_view_upright(src, &up->width, &up->height);
    *box = crop ? *crop : (dj_crop_box){0, 0, up->width, up->height};
    return dj_check_crop(up, box);
}

/* ---- the passes --------------------------------------------------------------- */

/* Plane pointers of the crop: luma exact, chroma at the sample covering it. */
static void dj_crop_planes(const dj_frame_view *f, const AVPixFmtDescriptor *d, const dj_crop_box *c,
                           const uint8_t *data[4]) {
    int step[4], step_comp[4];
    av_image_fill_max_pixsteps(step, step_comp, d);
    int planes = av_pix_fmt_count_planes((enum AVPixelFormat)f->format);
    for (int p = 0; p < 4; p++) {
        data[p] = NULL;
        if (p >= planes)
            continue;
        int chroma = (p == 1 || p == 2) && dj_is_yuv(d);
        int sx = chroma ? d->log2_chroma_w : 0, sy = chroma ? d->log2_chroma_h : 0;
        data[p] = f->data[p] + (ptrdiff_t)(c->y >> sy) * f->linesize[p] + (ptrdiff_t)(c->x >> sx) * step[p];
    }
}

/* out[H*W] = in[H rows of `stride` bytes], columns reversed when flip. */
static void dj_copy_plane_u8(const uint8_t *in, size_t stride, uint8_t *out, int H, int W, int flip) {
    for (int y = 0; y < H; y++) {
        const uint8_t *r = in + (size_t)y * stride;
        uint8_t *o = out + (size_t)y * W;
        if (flip)
            for (int x = 0; x < W; x++)
                o[x] = r[W - 1 - x];
        else
            memcpy(o, r, (size_t)W);
    }
}

/* out[H*W] = in[H rows of `stride` bytes] * scale + bias, columns reversed
 * when flip. */
static void dj_normalise_plane(const uint8_t *in, size_t stride, float *out, int H, int W, float scale, float bias,
                               int flip) {
    for (int y = 0; y < H; y++) {
        const uint8_t *r = in + (size_t)y * stride;
        float *o = out + (size_t)y * W;
        if (flip)
            for (int x = 0; x < W; x++)
                o[x] = (float)r[W - 1 - x] * scale + bias;
        else
            for (int x = 0; x < W; x++)
                o[x] = (float)r[x] * scale + bias;
    }
}

/* Grows *buf (holding *have bytes) to at least `bytes`. */
static dj_status dj_buffer_reserve(void **buf, size_t *have, size_t bytes) {
    if (*have >= bytes)
        return DJ_OK;
    void *p = realloc(*buf, bytes);
    if (!p)
        return dj_error_set(DJ_ERR_NOMEM, "transform", "out of memory for %zu bytes of scratch", bytes);
    *buf = p;
    *have = bytes;
    return DJ_OK;
}

/* ---- the direct 4:2:0 path ------------------------------------------------------ */

/* Luma and blue-difference weights (Kr, Kb) of the matrices swscale is told
 * about in dj_sws_colorspace, so both paths convert alike. */
static void dj_yuv_weights(int spc, double *kr, double *kb) {
    switch (spc) {
    case AVCOL_SPC_BT709: *kr = 0.2126, *kb = 0.0722; break;
    case AVCOL_SPC_FCC: *kr = 0.30, *kb = 0.11; break;
    case AVCOL_SPC_SMPTE240M: *kr = 0.212, *kb = 0.087; break;
    case AVCOL_SPC_BT2020_NCL:
    case AVCOL_SPC_BT2020_CL: *kr = 0.2627, *kb = 0.0593; break;
    default: *kr = 0.299, *kb = 0.114; /* BT.601 */
    }
}

/* The 8-bit 4:2:0 path (see the top of the file). A crop at the output's
 * size (data stored at the training size: C3D-style 128x171 frames with a
 * 112 crop, eval crops of such data) needs no filter, only the chroma
 * interpolation and the matrix. */
static int dj_is_420_8bit(const dj_frame_view *f) {
    return f->format == AV_PIX_FMT_YUV420P || f->format == AV_PIX_FMT_YUVJ420P;
}

static dj_yuv_coef dj_yuv_coef_of(const dj_frame_view *f, int full, const dj_norm *nm) {
    double kr, kb;
    dj_yuv_weights(f->colorspace, &kr, &kb);
    double kg = 1 - kr - kb, cs = full ? 1.0 : 255.0 / 224.0;
    dj_yuv_coef k = {full ? 0.0f : 16.0f, full ? 1.0f : (float)(255.0 / 219.0), (float)(2 * (1 - kr) * cs),
                     (float)(2 * kb * (1 - kb) / kg * cs), (float)(2 * kr * (1 - kr) / kg * cs), (float)(2 * (1 - kb) * cs),
                     {0, 0, 0}, {0, 0, 0}};
    for (int c = 0; c < 3; c++) {
        k.scale[c] = 1.0f / (255.0f * nm->std[c]);
        k.bias[c] = -nm->mean[c] / nm->std[c];
    }
    return k;
}

/* The resize source of a frame: input widths and horizontal filters, the
 * same for every output row. */
static void dj_rs_src_frame(const dj_rs_plan *p, const dj_crop_box *box, dj_yuv_resize_src *s) {
    const dj_rs_axis *h[3] = {&p->lh, &p->chh[box->x & 1], &p->chh[box->x & 1]};
    for (int q = 0; q < 3; q++) {
        s->in_w[q] = q ? dj_chroma_span(box->x & 1, box->w) : box->w;
        s->h[q] = (dj_yuv_taps){h[q]->taps, h[q]->start, h[q]->w, h[q]->span, h[q]->base, h[q]->off, h[q]->bw};
    }
}

/* The vertical taps of output row i: row pointers at the crop's first
 * column (chroma: its chroma column) and their weights. */
static void dj_rs_src_row(const dj_rs_plan *p, const dj_frame_view *f, const dj_crop_box *box, int i,
                          dj_yuv_resize_src *s) {
    const dj_rs_axis *v[3] = {&p->lv, &p->chv[box->y & 1], &p->chv[box->y & 1]};
    for (int q = 0; q < 3; q++) {
        s->vtaps[q] = v[q]->taps;
        int first = (q ? box->y >> 1 : box->y) + v[q]->start[i];
        const uint8_t *base = f->data[q] + (q ? box->x >> 1 : box->x);
        for (int t = 0; t < v[q]->taps; t++) {
            s->rows[q][t] = base + (ptrdiff_t)(first + t) * f->linesize[q];
            s->vw[q][t] = v[q]->w[(size_t)i * v[q]->taps + t];
        }
    }
}

/* DJ_ERR_UNSUPPORTED (no message) when the filter is too wide: the caller
 * takes libswscale. */
static dj_status dj_transform_420(dj_transformer *tf, const dj_frame_view *f, const dj_crop_box *box, int flip,
                                  const dj_norm *nm, dj_tensor *batch, size_t first, size_t cstride, int full) {
    int W = (int)batch->shape[4], H = (int)batch->shape[3], same = box->w == W && box->h == H;
    dj_rs_plan *plan = NULL;
    if (!same && dj_rs_get(tf, box->w, box->h, W, H, &plan) != DJ_OK)
        return DJ_ERR_UNSUPPORTED;
    size_t work = (size_t)(same ? dj_yuv_row_work(W) : dj_yuv_resize_work(box->w, W)) * sizeof(float);
    DJ_TRY(dj_buffer_reserve(&tf->rows, &tf->rows_bytes, work));
    dj_yuv_coef k = dj_yuv_coef_of(f, full, nm);
    int cw = (f->width + 1) >> 1, ch = (f->height + 1) >> 1, u8 = batch->dtype == DJ_DTYPE_U8;
    dj_yuv_resize_src s;
    if (!same)
        dj_rs_src_frame(plan, box, &s);
    for (int i = 0; i < H; i++) {
        uint8_t *o8[3] = {NULL, NULL, NULL};
        float *o32[3] = {NULL, NULL, NULL};
        for (int c = 0; c < 3; c++) {
            size_t at = first + c * cstride + (size_t)i * W;
            if (u8)
                o8[c] = (uint8_t *)batch->data + at;
            else
                o32[c] = (float *)batch->data + at;
        }
        if (!same) {
            dj_rs_src_row(plan, f, box, i, &s);
            tf->k.resize(&k, &s, W, flip, u8 ? o8 : NULL, o32, tf->rows);
            continue;
        }
        int Y = box->y + i, m = Y >> 1, far = Y & 1 ? (m + 1 < ch ? m + 1 : ch - 1) : (m > 0 ? m - 1 : 0);
        const uint8_t *chroma[4] = {f->data[1] + (ptrdiff_t)m * f->linesize[1],
                                    f->data[1] + (ptrdiff_t)far * f->linesize[1],
                                    f->data[2] + (ptrdiff_t)m * f->linesize[2],
                                    f->data[2] + (ptrdiff_t)far * f->linesize[2]};
        tf->k.row(&k, f->data[0] + (ptrdiff_t)Y * f->linesize[0] + box->x, chroma, cw, box->x, W, flip,
                  u8 ? o8 : NULL, o32, tf->rows);
    }
    return DJ_OK;
}

static dj_status dj_transform_rotated(dj_transformer *tf, const dj_frame_view *src, int rot, const dj_crop_box *crop,
                                      int flip, const dj_norm *norm, dj_tensor *batch, int n, int t);

dj_status dj_transform_frame(dj_transformer *tf, const dj_frame_view *src, const dj_crop_box *crop, int flip,
                             const dj_norm *norm, dj_tensor *batch, int n, int t) {
    const AVPixFmtDescriptor *desc = NULL;
    if (!tf)
        return dj_error_set(DJ_ERR_INVALID, "transform", "transformer is NULL");
    DJ_TRY(dj_check_frame(src, &desc));
    if (src->mirrored) { /* the upright picture is the turned one mirrored: so are its crop and flip */
        dj_frame_view up, turned = *src;
        dj_crop_box b;
        DJ_TRY(dj_upright_box(src, crop, &up, &b));
        b.x = up.width - b.x - b.w;
        turned.mirrored = 0;
        return dj_transform_frame(tf, &turned, &b, !flip, norm, batch, n, t);
    }
    int rot = dj_rotation_normal(src->rotation);
    if (rot)
        return dj_transform_rotated(tf, src, rot, crop, flip, norm, batch, n, t);
    DJ_TRY(dj_check_batch(batch, n, t));
    dj_norm nm = norm ? *norm : (dj_norm){{0, 0, 0}, {1, 1, 1}};
    for (int c = 0; c < 3 && batch->dtype == DJ_DTYPE_F32; c++)
        if (!(nm.std[c] > 0) || !isfinite(nm.mean[c]))
            return dj_error_set(DJ_ERR_INVALID, "transform", "normalisation std[%d] = %g must be > 0 (mean %g)", c,
                                nm.std[c], nm.mean[c]);
    dj_frame_view up;
    dj_crop_box box;
    DJ_TRY(dj_upright_box(src, crop, &up, &box)); /* (upright: no turn here) */
    int T = (int)batch->shape[2], H = (int)batch->shape[3], W = (int)batch->shape[4];
    size_t plane = (size_t)H * W;
    /* channel c of slot (n, t) starts at ((n*3 + c)*T + t) * H*W */
    size_t first = ((size_t)n * 3 * T + (size_t)t) * plane, cstride = (size_t)T * plane;
    if (dj_is_420_8bit(src)) {
        dj_status st = dj_transform_420(tf, src, &box, flip, &nm, batch, first, cstride, dj_src_full_range(src, desc));
        if (st != DJ_ERR_UNSUPPORTED)
            return st;
    }
    dj_sws_key key = {box.w, box.h, dj_sws_format(src->format), W, H, dj_src_full_range(src, desc),
                      dj_sws_colorspace(src->colorspace)};
    struct SwsContext *ctx = NULL;
    DJ_TRY(dj_sws_get(tf, &key, &ctx));

    const uint8_t *in[4];
    dj_crop_planes(src, desc, &box, in);
    /* libswscale writes into the scratch, never straight into the batch: its
     * vector loops write past the end of narrow rows (2 and fewer pixels
     * wrote into the neighbouring slots, measured), so the scratch rows are
     * 64-byte multiples with a spare row per plane. */
    size_t S = ((size_t)W + 63) & ~(size_t)63, pstride = S * (size_t)(H + 1);
    DJ_TRY(dj_buffer_reserve(&tf->scratch, &tf->scratch_bytes, 3 * pstride + 64));
    uint8_t *rgb[3]; /* R, G, B planes */
    for (int c = 0; c < 3; c++)
        rgb[c] = (uint8_t *)tf->scratch + c * pstride;
    uint8_t *dst[4] = {rgb[1], rgb[2], rgb[0], NULL}; /* GBRP plane order */
    int dst_stride[4] = {(int)S, (int)S, (int)S, 0};
    int in_stride[4] = {src->linesize[0], src->linesize[1], src->linesize[2], src->linesize[3]};
    if (sws_scale(ctx, in, in_stride, 0, box.h, dst, dst_stride) != H)
        return dj_error_set(DJ_ERR_INTERNAL, "transform", "libswscale wrote fewer than %d rows", H);
    for (int c = 0; c < 3; c++) {
        if (batch->dtype == DJ_DTYPE_U8) {
            dj_copy_plane_u8(rgb[c], S, (uint8_t *)batch->data + first + c * cstride, H, W, flip);
            continue;
        }
        float scale = 1.0f / (255.0f * nm.std[c]), bias = -nm.mean[c] / nm.std[c];
        dj_normalise_plane(rgb[c], S, (float *)batch->data + first + c * cstride, H, W, scale, bias, flip);
    }
    return DJ_OK;
}

/* ---- rotation ---------------------------------------------------------------------- */

/* A frame displayed turned by rot (clockwise): the crop box, given in the
 * upright picture, is taken from the stored planes and transformed in their
 * orientation into tf->turn (3 planes, H x W swapped at 90 and 270, the
 * batch's dtype, normalised), then each upright output pixel (x, y) is read
 * from the stored-orientation output O (w_s columns, h_s rows):
 *    90: O[W-1-x][y]     180: O[H-1-y][W-1-x]     270: O[x][H-1-y]
 * (x first mirrored when flip). */
static dj_status dj_transform_rotated(dj_transformer *tf, const dj_frame_view *src, int rot, const dj_crop_box *crop,
                                      int flip, const dj_norm *norm, dj_tensor *batch, int n, int t) {
    DJ_TRY(dj_check_batch(batch, n, t));
    dj_frame_view up, stored = *src;
    dj_crop_box b, s;
    DJ_TRY(dj_upright_box(src, crop, &up, &b));
    stored.rotation = 0;
    int Ws = src->width, Hs = src->height;
    if (rot == 90)
        s = (dj_crop_box){b.y, Hs - b.x - b.w, b.h, b.w};
    else if (rot == 180)
        s = (dj_crop_box){Ws - b.x - b.w, Hs - b.y - b.h, b.w, b.h};
    else
        s = (dj_crop_box){Ws - b.y - b.h, b.x, b.h, b.w};
    int T = (int)batch->shape[2], H = (int)batch->shape[3], W = (int)batch->shape[4];
    int w_s = rot == 180 ? W : H, h_s = rot == 180 ? H : W;
    size_t esize = dj_dtype_size(batch->dtype), plane = (size_t)H * W;
    DJ_TRY(dj_buffer_reserve(&tf->turn, &tf->turn_bytes, 3 * plane * esize));
    dj_tensor o;
    DJ_TRY(dj_tensor_view(batch->dtype, 5, (int64_t[]){1, 3, 1, h_s, w_s}, tf->turn, &o));
    DJ_TRY(dj_transform_frame(tf, &stored, &s, 0, norm, &o, 0, 0));
    size_t first = ((size_t)n * 3 * T + (size_t)t) * plane, cstride = (size_t)T * plane;
    /* upright (x, y) reads O at start + x * dx + y * dy */
    ptrdiff_t dx, dy, start;
    if (rot == 90)
        dx = -(ptrdiff_t)w_s, dy = 1, start = (ptrdiff_t)(W - 1) * w_s;
    else if (rot == 180)
        dx = -1, dy = -(ptrdiff_t)w_s, start = (ptrdiff_t)(H - 1) * w_s + (W - 1);
    else
        dx = (ptrdiff_t)w_s, dy = -1, start = H - 1;
    if (flip)
        start += (ptrdiff_t)(W - 1) * dx, dx = -dx;
    for (int c = 0; c < 3; c++) {
        size_t in = c * plane, out = first + c * cstride;
        if (batch->dtype == DJ_DTYPE_U8) {
            const uint8_t *o = (const uint8_t *)tf->turn + in;
            uint8_t *d = (uint8_t *)batch->data + out;
            for (int y = 0; y < H; y++)
                for (int x = 0; x < W; x++)
                    d[(size_t)y * W + x] = o[start + x * dx + y * dy];
        } else {
            const float *o = (const float *)tf->turn + in;
            float *d = (float *)batch->data + out;
            for (int y = 0; y < H; y++)
                for (int x = 0; x < W; x++)
                    d[(size_t)y * W + x] = o[start + x * dx + y * dy];
        }
    }
    return DJ_OK;
}

/* ---- eval geometry --------------------------------------------------------------- */

dj_status dj_crop_short_side(int width, int height, int short_side, int crop_size, int position, dj_crop_box *out) {
    if (!out || width <= 0 || height <= 0 || short_side <= 0 || crop_size <= 0 || crop_size > short_side ||
        position < 0 || position > 2)
        return dj_error_set(DJ_ERR_INVALID, "short-side crop",
                            "need frame > 0, 0 < crop %d <= short side %d, position in 0..2 (got %dx%d, %d)", crop_size,
                            short_side, width, height, position);
    int tall = height > width;
    int s = tall ? width : height, l = tall ? height : width;
    double inv = (double)s / short_side; /* source pixels per resized pixel */
    int long_r = (int)(l / inv + 0.5);
    int off_long = position == 0 ? 0 : position == 1 ? (long_r - crop_size) / 2 : long_r - crop_size;
    if (off_long < 0)
        off_long = 0;
    int off_short = (short_side - crop_size) / 2;
    int side = (int)(crop_size * inv + 0.5);
    side = side < 1 ? 1 : side;
    int side_l = side < l ? side : l, side_s = side < s ? side : s;
    int pl = (int)(off_long * inv + 0.5), ps = (int)(off_short * inv + 0.5);
    pl = pl + side_l <= l ? pl : l - side_l;
    ps = ps + side_s <= s ? ps : s - side_s;
    *out = tall ? (dj_crop_box){ps, pl, side_s, side_l} : (dj_crop_box){pl, ps, side_l, side_s};
    return DJ_OK;
}
