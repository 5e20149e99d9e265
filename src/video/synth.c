/* synth.c — synthetic motion scenes: clips whose class only motion tells.
 *
 * A clip is a textured background seen through a jittering camera, one main
 * object and a few smaller distractors that move at random, plus pixel
 * noise. The class is the main object's motion: translation in one of four
 * directions, rotation either way, or zoom in or out, at a speed drawn per
 * clip. Appearance is drawn from its own random stream whatever the class,
 * and the motion never leaks into a single frame: the world wraps around (an
 * object leaving on the right comes back on the left) and the zoom cycles
 * steadily through the clip from a middle size drawn per clip, and the other
 * classes draw their fixed size from the same spread (dj_main_size), so at
 * every frame the main object's position, angle and size have the same
 * distribution in every class. (Scene version 2 cycled the size through a
 * range with two cross-fading copies to avoid a jump back; the fading copies
 * ran against the motion, and the network told zoom in from out for only
 * 13-73% of clips, against 100% for translations.)
 *
 * Everything is a pure function of (params, seed, class): rendering uses
 * only per-clip generators (dj_rng) and no global state. */
#include "dojo/synth.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dojo/rng.h"

#define DJ_PI 3.14159265358979323846

static const char *const dj_class_names[DJ_SYNTH_MAX_CLASSES] = {
    "translate_right", "translate_left", "translate_up", "translate_down",
    "rotate_cw",       "rotate_ccw",     "zoom_in",      "zoom_out",
};

const char *dj_synth_class_name(int cls) {
    return cls >= 0 && cls < DJ_SYNTH_MAX_CLASSES ? dj_class_names[cls] : NULL;
}

void dj_synth_params_default(dj_synth_params *p, int width, int height, int frames) {
    memset(p, 0, sizeof *p);
    p->width = width;
    p->height = height;
    p->frames = frames;
    p->distractors = 1;
    p->noise = 1.0f;   /* scene version 1: 4, 2: 2 */
    p->jitter = 0.1f;  /* 1: 1, 2: 0.25 */
    p->speed_min = 0.02f;
    p->speed_max = 0.045f;
    p->spin_min = 5.0f;  /* 1: 4 */
    p->spin_max = 10.0f; /* 1: 9 */
    p->zoom_min = 0.03f;  /* 1: 0.025, 2: 0.05 (a cycling size) */
    p->zoom_max = 0.045f; /* 1: 0.05, 2: 0.08; 32 frames span 1.4 at most */
}

uint64_t dj_synth_clip_seed(uint64_t seed, int split, int cls, int index) {
    return dj_hash_u64(seed, 0x6d6f74696f6eull + (uint64_t)split, ((uint64_t)cls << 32) | (uint32_t)index);
}

/* The main object's diameter is its base diameter times exp(mid + z(t)):
 * mid, the log size at the middle of the clip, uniform in +-DJ_MID_RANGE;
 * z(t) the zoom, at most +-DJ_ZOOM_SPAN/2 at the clip's ends (the rate is
 * capped so that long clips stay in range). */
#define DJ_MID_RANGE 0.2f
#define DJ_ZOOM_SPAN 1.0f
#define DJ_MAIN_DIAMETER 0.40f /* of min(width, height), at zoom 1 */
#define DJ_MAX_DISTRACTORS 2

/* A sprite: an RGBA texture of size x size, alpha 0..1, drawn inside the
 * inscribed disc so that any rotation stays within radius size/2. */
typedef struct dj_sprite {
    int size;
    float *rgba; /* [size][size][4] */
} dj_sprite;

/* One object's state in a frame: centre (world pixels), angle (radians,
 * clockwise on screen), diameter on screen (pixels), opacity (0..1). */
typedef struct dj_pose {
    float cx, cy, angle, diameter, alpha;
} dj_pose;

/* An object's motion over the clip: pose(t) = start + t * rate (the
 * position wraps around the world). */
typedef struct dj_object {
    dj_sprite sprite;
    dj_pose start;
    float vx, vy, spin; /* pixels and radians per frame */
    float log_d, log_rate; /* log of the diameter at t = 0, its change per frame */
} dj_object;

static float dj_uniform(dj_rng *r, float lo, float hi) { return lo + (hi - lo) * dj_rng_float(r); }

static void dj_random_colour(dj_rng *r, float c[3]) {
    for (int k = 0; k < 3; k++)
        c[k] = 255.0f * dj_rng_float(r);
}

static float dj_wrapf(float x, float period) {
    float m = fmodf(x, period);
    return m < 0 ? m + period : m;
}

/* Shape coverage at (x, y) in [-1, 1]^2 (the inscribed disc is radius 1). */
static int dj_shape_inside(int shape, float aspect, float x, float y) {
    switch (shape) {
    case 0: /* disc */
        return x * x + y * y <= 0.95f;
    case 1: /* square, its corners on the circle */
        return fabsf(x) <= 0.68f && fabsf(y) <= 0.68f;
    case 2: /* triangle pointing up */
        return y <= 0.5f && y >= -0.95f + 1.7f * fabsf(x) && x * x + y * y <= 0.95f;
    case 3: /* ellipse */
        return x * x + (y * y) / (aspect * aspect) <= 0.95f;
    default: /* plus sign */
        return (fabsf(x) <= 0.3f && fabsf(y) <= 0.9f) || (fabsf(y) <= 0.3f && fabsf(x) <= 0.9f);
    }
}

/* Texture value in 0..1 at (x, y) in [-1, 1]^2: stripes, a checker board or
 * off-centre rings, all without rotational symmetry. */
static float dj_texture(int kind, const float *t, float x, float y) {
    switch (kind) {
    case 0:
        return 0.5f + 0.5f * sinf(t[0] * (x * t[1] + y * t[2]) + t[3]);
    case 1:
        return (float)(((int)floorf((x + 2.0f) * t[0] * 0.5f) + (int)floorf((y + 2.0f) * t[0] * 0.5f)) & 1);
    default: {
        float dx = x - t[1] * 0.6f, dy = y - t[2] * 0.6f;
        return 0.5f + 0.5f * sinf(t[0] * sqrtf(dx * dx + dy * dy) + t[3]);
    }
    }
}

/* Draws a random textured shape (colours premultiplied by alpha); 2x2
 * supersampling smooths its edge. */
static dj_status dj_sprite_create(dj_sprite *s, int size, dj_rng *r) {
    s->size = size;
    s->rgba = malloc(sizeof(float) * 4 * (size_t)size * (size_t)size);
    if (!s->rgba)
        return dj_error_set(DJ_ERR_NOMEM, "synth", "out of memory for a %dx%d sprite", size, size);
    int shape = (int)dj_rng_below(r, 5), kind = (int)dj_rng_below(r, 3);
    float aspect = dj_uniform(r, 0.45f, 0.75f), a = dj_uniform(r, 0, 2 * (float)DJ_PI);
    float t[4] = {dj_uniform(r, 4.0f, 9.0f), cosf(a), sinf(a), dj_uniform(r, 0, 6.28f)};
    if (kind == 1)
        t[0] = (float)(2 + dj_rng_below(r, 4));
    float c1[3], c2[3], g[3];
    dj_random_colour(r, c1);
    /* the two colours differ clearly, so that the texture (and a rotation
     * of it) is always visible; the draw count depends only on the stream */
    for (int tries = 0; tries < 16; tries++) {
        dj_random_colour(r, c2);
        if (fabsf(c1[0] - c2[0]) + fabsf(c1[1] - c2[1]) + fabsf(c1[2] - c2[2]) >= 180.0f)
            break;
    }
    for (int k = 0; k < 3; k++)
        g[k] = dj_uniform(r, -40.0f, 40.0f); /* a gradient along x: one more asymmetry */
    for (int i = 0; i < size; i++) {
        for (int j = 0; j < size; j++) {
            float cover = 0;
            for (int q = 0; q < 4; q++) {
                float x = (2.0f * (j + 0.25f + 0.5f * (q & 1)) / size) - 1.0f;
                float y = (2.0f * (i + 0.25f + 0.5f * (q >> 1)) / size) - 1.0f;
                cover += 0.25f * (float)dj_shape_inside(shape, aspect, x, y);
            }
            float x = (2.0f * (j + 0.5f) / size) - 1.0f, y = (2.0f * (i + 0.5f) / size) - 1.0f;
            float v = dj_texture(kind, t, x, y);
            float *px = s->rgba + 4 * ((size_t)i * size + j);
            for (int k = 0; k < 3; k++) /* premultiplied by the coverage */
                px[k] = cover * (c1[k] * v + c2[k] * (1 - v) + g[k] * x);
            px[3] = cover;
        }
    }
    return DJ_OK;
}

/* Bilinear sample of the sprite at (u, v) in sprite pixels, premultiplied
 * RGBA; all zero outside. */
static void dj_sprite_sample(const dj_sprite *s, float u, float v, float out[4]) {
    float fu = u - 0.5f, fv = v - 0.5f;
    int u0 = (int)floorf(fu), v0 = (int)floorf(fv);
    float au = fu - u0, av = fv - v0;
    memset(out, 0, 4 * sizeof(float));
    for (int q = 0; q < 4; q++) {
        int uu = u0 + (q & 1), vv = v0 + (q >> 1);
        if (uu < 0 || vv < 0 || uu >= s->size || vv >= s->size)
            continue;
        float w = ((q & 1) ? au : 1 - au) * ((q >> 1) ? av : 1 - av);
        const float *p = s->rgba + 4 * ((size_t)vv * s->size + uu);
        for (int k = 0; k < 4; k++)
            out[k] += w * p[k];
    }
}

static dj_pose dj_object_pose(const dj_object *o, int t, int width, int height) {
    dj_pose p = o->start;
    p.cx = dj_wrapf(p.cx + o->vx * (float)t, (float)width);
    p.cy = dj_wrapf(p.cy + o->vy * (float)t, (float)height);
    p.angle += o->spin * (float)t;
    p.diameter = expf(o->log_d + o->log_rate * (float)t);
    p.alpha = 1;
    return p;
}

/* Composites the object into img ([h][w][3] floats) with the camera at
 * (jx, jy); the world wraps around. cover (or NULL): [h][w], united with
 * the object's alpha (the main object's mask). */
static void dj_object_draw(const dj_object *o, dj_pose p, float jx, float jy, int w, int h, float *img,
                           float *cover) {
    float r = 0.5f * p.diameter + 1.0f;
    float scale = (float)o->sprite.size / p.diameter; /* sprite pixels per screen pixel */
    float c = cosf(p.angle), s = sinf(p.angle), half = 0.5f * (float)o->sprite.size;
    int x0 = (int)floorf(p.cx - jx - r), y0 = (int)floorf(p.cy - jy - r);
    int nx = (int)ceilf(2 * r) + 1, ny = nx;
    if (nx > w)
        nx = w;
    if (ny > h)
        ny = h;
    for (int yi = 0; yi < ny; yi++) {
        int y = y0 + yi;
        int py = (int)dj_wrapf((float)y, (float)h);
        float dy = (float)y + 0.5f + jy - p.cy;
        for (int xi = 0; xi < nx; xi++) {
            int x = x0 + xi;
            int px = (int)dj_wrapf((float)x, (float)w);
            float dx = (float)x + 0.5f + jx - p.cx;
            float u = (c * dx + s * dy) * scale + half, v = (-s * dx + c * dy) * scale + half;
            float smp[4];
            dj_sprite_sample(&o->sprite, u, v, smp);
            if (smp[3] <= 0)
                continue;
            float *dst = img + 3 * ((size_t)py * w + px), a = p.alpha * smp[3];
            for (int k = 0; k < 3; k++)
                dst[k] = dst[k] * (1 - a) + p.alpha * smp[k];
            if (cover) {
                float *cv = cover + (size_t)py * w + px;
                *cv += a * (1 - *cv);
            }
        }
    }
}

/* The background: a base colour, three oriented waves and a coarse value
 * noise, evaluated once on a canvas `pad` pixels larger than the frame on
 * every side so that the jittering camera can sample it. */
typedef struct dj_background {
    int w, h, pad;
    float *rgb; /* [h + 2 pad][w + 2 pad][3] */
} dj_background;

static dj_status dj_background_create(dj_background *b, int w, int h, int pad, dj_rng *r) {
    int cw = w + 2 * pad, ch = h + 2 * pad;
    b->w = w;
    b->h = h;
    b->pad = pad;
    b->rgb = malloc(sizeof(float) * 3 * (size_t)cw * (size_t)ch);
    int cell = 6 + (int)dj_rng_below(r, 7);
    int gw = cw / cell + 2, gh = ch / cell + 2;
    float *grid = malloc(sizeof(float) * 3 * (size_t)gw * (size_t)gh);
    if (!b->rgb || !grid) {
        free(grid);
        return dj_error_set(DJ_ERR_NOMEM, "synth", "out of memory for a %dx%d background", cw, ch);
    }
    float base[3], amp[3][3], fx[3], fy[3], ph[3];
    dj_random_colour(r, base);
    for (int k = 0; k < 3; k++) {
        float a = dj_uniform(r, 0, 2 * (float)DJ_PI), f = dj_uniform(r, 0.01f, 0.05f);
        fx[k] = 2 * (float)DJ_PI * f * cosf(a);
        fy[k] = 2 * (float)DJ_PI * f * sinf(a);
        ph[k] = dj_uniform(r, 0, 2 * (float)DJ_PI);
        for (int c = 0; c < 3; c++)
            amp[k][c] = dj_uniform(r, -45.0f, 45.0f);
    }
    for (size_t i = 0; i < 3 * (size_t)gw * gh; i++)
        grid[i] = dj_uniform(r, -25.0f, 25.0f);
    for (int y = 0; y < ch; y++) {
        for (int x = 0; x < cw; x++) {
            float gx = (float)x / cell, gy = (float)y / cell;
            int ix = (int)gx, iy = (int)gy;
            float ax = gx - ix, ay = gy - iy;
            float *px = b->rgb + 3 * ((size_t)y * cw + x);
            for (int c = 0; c < 3; c++) {
                const float *g0 = grid + 3 * ((size_t)iy * gw + ix) + c, *g1 = g0 + 3 * (size_t)gw;
                float v = (g0[0] * (1 - ax) + g0[3] * ax) * (1 - ay) + (g1[0] * (1 - ax) + g1[3] * ax) * ay;
                for (int k = 0; k < 3; k++)
                    v += amp[k][c] * sinf(fx[k] * x + fy[k] * y + ph[k]);
                px[c] = base[c] + v;
            }
        }
    }
    free(grid);
    return DJ_OK;
}

/* Fills img ([h][w][3]) with the background seen from camera offset (jx, jy),
 * |jx|, |jy| < pad - 1 (bilinear). */
static void dj_background_view(const dj_background *b, float jx, float jy, float *img) {
    int cw = b->w + 2 * b->pad;
    float ox = b->pad + jx, oy = b->pad + jy;
    int ix = (int)floorf(ox), iy = (int)floorf(oy);
    float ax = ox - ix, ay = oy - iy;
    for (int y = 0; y < b->h; y++) {
        const float *r0 = b->rgb + 3 * ((size_t)(y + iy) * cw + ix), *r1 = r0 + 3 * (size_t)cw;
        float *dst = img + 3 * (size_t)y * b->w;
        for (int x = 0; x < 3 * b->w; x++)
            dst[x] = (r0[x] * (1 - ax) + r0[x + 3] * ax) * (1 - ay) + (r1[x] * (1 - ax) + r1[x + 3] * ax) * ay;
    }
}

static dj_status dj_check_params(const dj_synth_params *p, int cls) {
    if (!p)
        return dj_error_set(DJ_ERR_INVALID, "synth", "no parameters given");
    if (p->width < 8 || p->height < 8 || p->width > 4096 || p->height > 4096)
        return dj_error_set(DJ_ERR_INVALID, "synth", "frame size %dx%d is out of range (8..4096)", p->width,
                            p->height);
    if (p->frames < 1 || p->frames > 100000)
        return dj_error_set(DJ_ERR_INVALID, "synth", "frame count %d is out of range (1..100000)", p->frames);
    if (cls < 0 || cls >= DJ_SYNTH_MAX_CLASSES)
        return dj_error_set(DJ_ERR_INVALID, "synth", "class %d is out of range (0..%d)", cls,
                            DJ_SYNTH_MAX_CLASSES - 1);
    if (!(p->noise >= 0 && p->noise <= 100) || !(p->jitter >= 0 && p->jitter <= 16))
        return dj_error_set(DJ_ERR_INVALID, "synth", "noise %g (0..100) or jitter %g (0..16) is out of range",
                            p->noise, p->jitter);
    if (!(p->speed_min >= 0 && p->speed_min <= p->speed_max && p->speed_max <= 0.5f) ||
        !(p->spin_min >= 0 && p->spin_min <= p->spin_max && p->spin_max <= 90) ||
        !(p->zoom_min >= 0 && p->zoom_min <= p->zoom_max && p->zoom_max <= DJ_SYNTH_MAX_ZOOM))
        return dj_error_set(DJ_ERR_INVALID, "synth", "a motion range is out of order or too large");
    return DJ_OK;
}

/* The clip's zoom rate (log size per frame) for uniform draw u: in
 * [zoom_min, zoom_max], capped so that the whole clip spans at most
 * DJ_ZOOM_SPAN (long clips zoom more slowly). */
static float dj_main_zoom(const dj_synth_params *p, float u) {
    float zoom = p->zoom_min + u * (p->zoom_max - p->zoom_min);
    float cap = p->frames > 1 ? DJ_ZOOM_SPAN / (float)(p->frames - 1) : zoom;
    return zoom < cap ? zoom : cap;
}

/* The main object: appearance from `look`, motion from `move`; both streams
 * are drawn the same way for every class, only their use differs. */
static dj_status dj_main_object(const dj_synth_params *p, int cls, dj_rng *look, dj_rng *move, dj_object *o) {
    float m = (float)(p->width < p->height ? p->width : p->height);
    float base = DJ_MAIN_DIAMETER * m;
    int size = (int)ceilf(base * expf(DJ_MID_RANGE + 0.5f * DJ_ZOOM_SPAN));
    DJ_TRY(dj_sprite_create(&o->sprite, size < 8 ? 8 : size, look));
    float su = dj_rng_float(move), wu = dj_rng_float(move), zu = dj_rng_float(move);
    o->start.cx = dj_uniform(move, 0, (float)p->width);
    o->start.cy = dj_uniform(move, 0, (float)p->height);
    o->start.angle = dj_uniform(move, 0, 2 * (float)DJ_PI);
    float speed = m * (p->speed_min + su * (p->speed_max - p->speed_min));
    float spin = (p->spin_min + wu * (p->spin_max - p->spin_min)) * (float)DJ_PI / 180.0f;
    float zoom = dj_main_zoom(p, zu);
    /* the log size: mid at the clip's middle; a fixed size is drawn from
     * where a zoom passes, so that no single frame tells a zoom */
    float mid = logf(base) + dj_uniform(move, -DJ_MID_RANGE, DJ_MID_RANGE);
    float half = 0.5f * zoom * (float)(p->frames - 1), at = dj_uniform(move, -half, half);
    o->log_d = mid + at;
    static const int dir[4][2] = {{1, 0}, {-1, 0}, {0, -1}, {0, 1}};
    if (cls <= DJ_SYNTH_TRANSLATE_DOWN) {
        o->vx = speed * (float)dir[cls][0];
        o->vy = speed * (float)dir[cls][1];
    } else if (cls <= DJ_SYNTH_ROTATE_CCW) {
        o->spin = cls == DJ_SYNTH_ROTATE_CW ? spin : -spin;
    } else {
        o->log_rate = cls == DJ_SYNTH_ZOOM_IN ? zoom : -zoom;
        o->log_d = mid - o->log_rate * 0.5f * (float)(p->frames - 1);
    }
    return DJ_OK;
}

/* A distractor: smaller than the main object (0.08-0.16 of the short
 * side against 0.20-0.81), sliding in any direction at most half as fast,
 * never turning, always behind the main object. (Scene version 2's larger
 * distractors, half of them in front, cut the main object's turn: trained
 * with them the demo told clockwise from anticlockwise for 33-53% of clips,
 * without them for 93-100%.) */
static dj_status dj_distractor(const dj_synth_params *p, dj_rng *r, dj_object *o) {
    float m = (float)(p->width < p->height ? p->width : p->height);
    float d = dj_uniform(r, 0.08f, 0.16f) * m;
    DJ_TRY(dj_sprite_create(&o->sprite, (int)ceilf(d) < 6 ? 6 : (int)ceilf(d), r));
    float a = dj_uniform(r, 0, 2 * (float)DJ_PI), speed = dj_uniform(r, 0, 0.02f) * m;
    o->start.cx = dj_uniform(r, 0, (float)p->width);
    o->start.cy = dj_uniform(r, 0, (float)p->height);
    o->start.angle = dj_uniform(r, 0, 2 * (float)DJ_PI);
    o->vx = speed * cosf(a);
    o->vy = speed * sinf(a);
    o->spin = 0; /* they slide without turning: a turn is always the main object's */
    o->log_d = logf(d);
    return DJ_OK;
}

/* Rounds img to bytes with triangular noise of standard deviation sigma. */
static void dj_quantize(const float *img, size_t n, float sigma, dj_rng *r, uint8_t *out) {
    const float k = sigma * 2.449489743f / 65536.0f; /* (a + b) / 65536 - 1 has variance 1/6 */
    for (size_t i = 0; i < n; i += 2) {
        uint64_t bits = dj_rng_u64(r);
        for (size_t j = i; j < i + 2 && j < n; j++, bits >>= 32) {
            float e = k * ((float)(bits & 0xffff) + (float)((bits >> 16) & 0xffff) - 65535.0f);
            float v = img[j] + e + 0.5f;
            out[j] = (uint8_t)(v <= 0 ? 0 : v >= 255 ? 255 : v);
        }
    }
}

typedef struct dj_scene {
    dj_background bg;
    dj_object obj[1 + DJ_MAX_DISTRACTORS]; /* [0] is the main object */
    int nobj;
    float *img;   /* [h][w][3] */
    float *cover; /* [h][w] */
} dj_scene;

static void dj_scene_free(dj_scene *s) {
    free(s->bg.rgb);
    for (int i = 0; i < 1 + DJ_MAX_DISTRACTORS; i++)
        free(s->obj[i].sprite.rgba);
    free(s->img);
    free(s->cover);
}

static dj_status dj_scene_create(const dj_synth_params *p, uint64_t seed, int cls, dj_scene *s) {
    dj_rng look, move, extra;
    dj_rng_seed(&look, seed, 1);
    dj_rng_seed(&move, seed, 2);
    dj_rng_seed(&extra, seed, 4);
    size_t n = (size_t)p->width * (size_t)p->height;
    s->img = malloc(sizeof(float) * 3 * n);
    s->cover = malloc(sizeof(float) * n);
    if (!s->img || !s->cover)
        return dj_error_set(DJ_ERR_NOMEM, "synth", "out of memory for a %dx%d frame", p->width, p->height);
    DJ_TRY(dj_background_create(&s->bg, p->width, p->height, (int)ceilf(p->jitter) + 2, &look));
    DJ_TRY(dj_main_object(p, cls, &look, &move, &s->obj[0]));
    s->nobj = 1;
    int nd = 1 + (int)dj_rng_below(&extra, DJ_MAX_DISTRACTORS);
    for (int i = 0; p->distractors && i < nd; i++, s->nobj++)
        DJ_TRY(dj_distractor(p, &extra, &s->obj[1 + i]));
    return DJ_OK;
}

static void dj_scene_frame(const dj_synth_params *p, dj_scene *s, int t, float jx, float jy) {
    int w = p->width, h = p->height;
    dj_background_view(&s->bg, jx, jy, s->img);
    memset(s->cover, 0, sizeof(float) * (size_t)w * h);
    for (int i = 1; i < s->nobj; i++) /* distractors first: behind the main object */
        dj_object_draw(&s->obj[i], dj_object_pose(&s->obj[i], t, w, h), jx, jy, w, h, s->img, NULL);
    dj_object_draw(&s->obj[0], dj_object_pose(&s->obj[0], t, w, h), jx, jy, w, h, s->img, s->cover);
}

dj_status dj_synth_render_clip(const dj_synth_params *p, uint64_t seed, int cls, uint8_t *frames, uint8_t *mask) {
    DJ_TRY(dj_check_params(p, cls));
    if (!frames)
        return dj_error_set(DJ_ERR_INVALID, "synth", "no frame buffer given");
    dj_scene s;
    memset(&s, 0, sizeof s);
    dj_status st = dj_scene_create(p, seed, cls, &s);
    dj_rng cam, noise;
    dj_rng_seed(&cam, seed, 3);
    dj_rng_seed(&noise, seed, 5);
    size_t n = (size_t)p->width * (size_t)p->height;
    for (int t = 0; st == DJ_OK && t < p->frames; t++) {
        float jx = dj_uniform(&cam, -p->jitter, p->jitter), jy = dj_uniform(&cam, -p->jitter, p->jitter);
        dj_scene_frame(p, &s, t, jx, jy);
        dj_quantize(s.img, 3 * n, p->noise, &noise, frames + 3 * n * (size_t)t);
        for (size_t i = 0; mask && i < n; i++)
            mask[n * (size_t)t + i] = s.cover[i] > 0.5f;
    }
    dj_scene_free(&s);
    return st;
}
