/* indexfile.c — the data-set index: many videos with labels and class names,
 * built from what the data-set layer enumerates, saved atomically in a compact binary
 * file and loaded back with every field checked. Format: see dojo/video.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libavutil/crc.h>

#include "dojo/fs.h"
#include "dojo/dataset.h"

#include "dojo/log.h"
#include "video_internal.h"

#define DJ_INDEX_MAGIC "DJVIDX\r\n"
enum { DJ_INDEX_VERSION = 1, DJ_INDEX_MAX_PATH = 4096, DJ_INDEX_MAX_CLASSES = 1 << 20 };

struct dj_index {
    int nclasses;
    char **classes;           /* [nclasses] */
    int64_t n, cap;
    dj_video_index **videos;  /* [n] */
};

/* ------------------------------------------------------------ accessors -- */

int64_t dj_index_count(const dj_index *ix) { return ix ? ix->n : 0; }

const dj_video_index *dj_index_video(const dj_index *ix, int64_t i) {
    return ix && i >= 0 && i < ix->n ? ix->videos[i] : NULL;
}

int dj_index_class_count(const dj_index *ix) { return ix ? ix->nclasses : 0; }

const char *dj_index_class_name(const dj_index *ix, int id) {
    return ix && id >= 0 && id < ix->nclasses ? ix->classes[id] : NULL;
}

void dj_index_free(dj_index *ix) {
    if (!ix)
        return;
    for (int i = 0; i < ix->nclasses; i++)
        free(ix->classes[i]);
    free(ix->classes);
    for (int64_t i = 0; i < ix->n; i++)
        dj_video_index_free(ix->videos[i]);
    free(ix->videos);
    free(ix);
}

static dj_status dj_index_add(dj_index *ix, dj_video_index *v) {
    if (ix->n == ix->cap) {
        int64_t ncap = ix->cap ? ix->cap * 2 : 64;
        dj_video_index **p = realloc(ix->videos, (size_t)ncap * sizeof *p);
        if (!p) {
            dj_video_index_free(v);
            return dj_error_set(DJ_ERR_NOMEM, v->path, "cannot grow the index");
        }
        ix->videos = p;
        ix->cap = ncap;
    }
    ix->videos[ix->n++] = v;
    return DJ_OK;
}

static dj_status dj_index_add_class(dj_index *ix, const char *name) {
    char **p = realloc(ix->classes, (size_t)(ix->nclasses + 1) * sizeof *p);
    if (!p)
        return dj_error_set(DJ_ERR_NOMEM, name, "cannot grow the class list");
    ix->classes = p;
    if (!(ix->classes[ix->nclasses] = strdup(name)))
        return dj_error_set(DJ_ERR_NOMEM, name, "cannot grow the class list");
    ix->nclasses++;
    return DJ_OK;
}

/* ---------------------------------------------------------- serializing -- */

typedef struct dj_buf {
    uint8_t *p;
    size_t n, cap;
    int failed;
} dj_buf;

static void dj_buf_put(dj_buf *b, const void *data, size_t size) {
    if (b->failed)
        return;
    if (b->n + size > b->cap) {
        size_t ncap = b->cap ? b->cap : 4096;
        while (ncap < b->n + size)
            ncap *= 2;
        uint8_t *q = realloc(b->p, ncap);
        if (!q) {
            b->failed = 1;
            return;
        }
        b->p = q;
        b->cap = ncap;
    }
    memcpy(b->p + b->n, data, size);
    b->n += size;
}

/* Little-endian integers (every supported target is little endian; the
 * format says so, so a big-endian port must swap here). */
static void dj_put_u32(dj_buf *b, uint32_t v) { dj_buf_put(b, &v, 4); }
static void dj_put_i32(dj_buf *b, int32_t v) { dj_buf_put(b, &v, 4); }
static void dj_put_i64(dj_buf *b, int64_t v) { dj_buf_put(b, &v, 8); }
static void dj_put_str(dj_buf *b, const char *s) {
    uint32_t n = (uint32_t)strlen(s);
    dj_put_u32(b, n);
    dj_buf_put(b, s, n);
}

static void dj_put_video(dj_buf *b, const dj_video_index *v) {
    dj_put_str(b, v->path);
    dj_put_i64(b, v->file_size);
    dj_put_i64(b, v->file_mtime_ns);
    dj_put_i32(b, v->label);
    dj_put_i64(b, v->start_frame);
    dj_put_i64(b, v->end_frame);
    int32_t params[] = {v->stream_index, v->codec_id, v->width, v->height, v->pix_fmt, v->rotation, v->tb_num, v->tb_den};
    for (size_t i = 0; i < sizeof params / sizeof params[0]; i++)
        dj_put_i32(b, params[i]);
    dj_put_u32(b, v->flags);
    dj_put_i64(b, v->npackets);
    dj_put_i64(b, v->nframes);
    for (int64_t i = 0; i < v->npackets; i++) {
        const dj_packet_entry *p = &v->packets[i];
        dj_put_i64(b, p->pts);
        dj_put_i64(b, p->dts);
        dj_put_i64(b, p->pos);
        dj_put_i32(b, p->size);
        dj_put_u32(b, p->flags);
    }
    for (int64_t i = 0; i < v->nframes; i++) {
        dj_put_i64(b, v->frames[i].pts);
        dj_put_i32(b, v->frames[i].packet);
        dj_put_i32(b, v->frames[i].key);
    }
}

static uint32_t dj_crc32(const uint8_t *p, size_t n) {
    return av_crc(av_crc_get_table(AV_CRC_32_IEEE_LE), 0xffffffffu, p, n) ^ 0xffffffffu;
}

static dj_status dj_write_all(int fd, const uint8_t *p, size_t n, const char *path) {
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return dj_error_set(DJ_ERR_IO, path, "cannot write: %s", strerror(errno));
        p += w;
        n -= (size_t)w;
    }
    return DJ_OK;
}

dj_status dj_index_save(const dj_index *ix, const char *path) {
    if (!ix || !path)
        return dj_error_set(DJ_ERR_INVALID, "dj_index_save", "index and path are required");
    dj_buf b = {0};
    dj_buf_put(&b, DJ_INDEX_MAGIC, 8);
    dj_put_u32(&b, DJ_INDEX_VERSION);
    dj_put_u32(&b, (uint32_t)ix->nclasses);
    dj_put_i64(&b, ix->n);
    for (int i = 0; i < ix->nclasses; i++)
        dj_put_str(&b, ix->classes[i]);
    for (int64_t i = 0; i < ix->n; i++)
        dj_put_video(&b, ix->videos[i]);
    if (!b.failed)
        dj_put_u32(&b, dj_crc32(b.p, b.n));
    if (b.failed) {
        free(b.p);
        return dj_error_set(DJ_ERR_NOMEM, path, "cannot serialize the index");
    }
    char tmp[DJ_INDEX_MAX_PATH + 16];
    snprintf(tmp, sizeof tmp, "%s.tmpXXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        free(b.p);
        return dj_error_set(DJ_ERR_IO, path, "cannot create a temporary file: %s", strerror(errno));
    }
    dj_status st = fchmod(fd, 0644) == 0 ? DJ_OK : dj_error_set(DJ_ERR_IO, path, "cannot chmod: %s", strerror(errno));
    if (st == DJ_OK)
        st = dj_write_all(fd, b.p, b.n, path);
    free(b.p);
    if (st == DJ_OK && fsync(fd) != 0)
        st = dj_error_set(DJ_ERR_IO, path, "cannot sync: %s", strerror(errno));
    if (close(fd) != 0 && st == DJ_OK)
        st = dj_error_set(DJ_ERR_IO, path, "cannot close: %s", strerror(errno));
    if (st == DJ_OK && rename(tmp, path) != 0)
        st = dj_error_set(DJ_ERR_IO, path, "cannot rename the temporary file: %s", strerror(errno));
    if (st != DJ_OK)
        unlink(tmp);
    else
        st = dj_fs_sync_folder(path); /* the rename itself survives a power cut */
    return st;
}

/* ------------------------------------------------------------- loading -- */

typedef struct dj_reader_buf {
    const uint8_t *p;
    size_t n, off;
    int bad;
} dj_rbuf;

static void dj_get(dj_rbuf *r, void *out, size_t size) {
    if (r->bad || r->n - r->off < size) {
        r->bad = 1;
        memset(out, 0, size);
        return;
    }
    memcpy(out, r->p + r->off, size);
    r->off += size;
}
static uint32_t dj_get_u32(dj_rbuf *r) { uint32_t v; dj_get(r, &v, 4); return v; }
static int32_t dj_get_i32(dj_rbuf *r) { int32_t v; dj_get(r, &v, 4); return v; }
static int64_t dj_get_i64(dj_rbuf *r) { int64_t v; dj_get(r, &v, 8); return v; }
static char *dj_get_str(dj_rbuf *r) {
    uint32_t n = dj_get_u32(r);
    if (r->bad || n > DJ_INDEX_MAX_PATH || r->n - r->off < n) {
        r->bad = 1;
        return NULL;
    }
    char *s = malloc(n + 1);
    if (!s) {
        r->bad = 1;
        return NULL;
    }
    memcpy(s, r->p + r->off, n);
    s[n] = '\0';
    r->off += n;
    return s;
}

/* Structural checks a reader relies on. */
static int dj_video_index_sane(const dj_video_index *v) {
    if (v->npackets <= 0 || v->nframes <= 0 || v->npackets > DJ_VIDEO_MAX_PACKETS || v->nframes > DJ_VIDEO_MAX_PACKETS)
        return 0;
    if (v->width <= 0 || v->height <= 0 || v->width > DJ_VIDEO_MAX_SIDE || v->height > DJ_VIDEO_MAX_SIDE ||
        v->tb_num <= 0 || v->tb_den <= 0 || v->stream_index < 0)
        return 0;
    if (v->start_frame < 0 || v->start_frame > v->end_frame || v->end_frame > v->nframes)
        return 0;
    for (int64_t i = 0; i < v->nframes; i++) {
        if (v->frames[i].packet < -1 || v->frames[i].packet >= v->npackets)
            return 0;
        if (i > 0 && v->frames[i].pts <= v->frames[i - 1].pts)
            return 0;
    }
    return 1;
}

static dj_video_index *dj_get_video(dj_rbuf *r) {
    dj_video_index *v = calloc(1, sizeof *v);
    if (!v) {
        r->bad = 1;
        return NULL;
    }
    v->path = dj_get_str(r);
    v->file_size = dj_get_i64(r);
    v->file_mtime_ns = dj_get_i64(r);
    v->label = dj_get_i32(r);
    v->start_frame = dj_get_i64(r);
    v->end_frame = dj_get_i64(r);
    int32_t *params[] = {&v->stream_index, &v->codec_id, &v->width, &v->height,
                         &v->pix_fmt, &v->rotation, &v->tb_num, &v->tb_den};
    for (size_t i = 0; i < sizeof params / sizeof params[0]; i++)
        *params[i] = dj_get_i32(r);
    v->flags = dj_get_u32(r);
    v->npackets = dj_get_i64(r);
    v->nframes = dj_get_i64(r);
    size_t left = r->n - r->off;
    if (r->bad || v->npackets <= 0 || v->nframes <= 0 || (uint64_t)v->npackets > left / 32 ||
        (uint64_t)v->nframes > left / 16) {
        r->bad = 1;
        dj_video_index_free(v);
        return NULL;
    }
    v->packets = malloc((size_t)v->npackets * sizeof *v->packets);
    v->frames = malloc((size_t)v->nframes * sizeof *v->frames);
    if (!v->packets || !v->frames) {
        r->bad = 1;
        dj_video_index_free(v);
        return NULL;
    }
    for (int64_t i = 0; i < v->npackets; i++) {
        dj_packet_entry *p = &v->packets[i];
        p->pts = dj_get_i64(r);
        p->dts = dj_get_i64(r);
        p->pos = dj_get_i64(r);
        p->size = dj_get_i32(r);
        p->flags = dj_get_u32(r);
    }
    for (int64_t i = 0; i < v->nframes; i++) {
        v->frames[i].pts = dj_get_i64(r);
        v->frames[i].packet = dj_get_i32(r);
        v->frames[i].key = dj_get_i32(r);
    }
    if (r->bad || !v->path || !dj_video_index_sane(v)) {
        r->bad = 1;
        dj_video_index_free(v);
        return NULL;
    }
    return v;
}

static dj_status dj_read_whole(const char *path, uint8_t **out, size_t *size) {
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return dj_error_set(errno == ENOENT ? DJ_ERR_NOT_FOUND : DJ_ERR_IO, path, "cannot open: %s", strerror(errno));
    struct stat sb;
    if (fstat(fileno(fp), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fclose(fp);
        return dj_error_set(DJ_ERR_IO, path, "not a regular file");
    }
    size_t n = (size_t)sb.st_size;
    uint8_t *p = malloc(n ? n : 1);
    if (!p) {
        fclose(fp);
        return dj_error_set(DJ_ERR_NOMEM, path, "cannot allocate %zu bytes", n);
    }
    size_t got = fread(p, 1, n, fp);
    fclose(fp);
    if (got != n) {
        free(p);
        return dj_error_set(DJ_ERR_IO, path, "short read");
    }
    *out = p;
    *size = n;
    return DJ_OK;
}

static dj_status dj_index_parse(dj_rbuf *r, dj_index *ix, const char *path) {
    char magic[8];
    dj_get(r, magic, 8);
    if (r->bad || memcmp(magic, DJ_INDEX_MAGIC, 8) != 0)
        return dj_error_set(DJ_ERR_FORMAT, path, "not a dojo index file (bad magic)");
    uint32_t version = dj_get_u32(r);
    if (version != DJ_INDEX_VERSION)
        return dj_error_set(DJ_ERR_UNSUPPORTED, path, "index version %u, this build reads version %d", version,
                            DJ_INDEX_VERSION);
    uint32_t stored = 0;
    if (r->n >= 4)
        memcpy(&stored, r->p + r->n - 4, 4);
    if (r->n < 4 || dj_crc32(r->p, r->n - 4) != stored)
        return dj_error_set(DJ_ERR_FORMAT, path, "index file is corrupt (checksum mismatch)");
    r->n -= 4;
    uint32_t nclasses = dj_get_u32(r);
    int64_t nvideos = dj_get_i64(r);
    if (r->bad || nclasses > DJ_INDEX_MAX_CLASSES || nvideos < 0 || (uint64_t)nvideos > r->n)
        return dj_error_set(DJ_ERR_FORMAT, path, "index header is corrupt");
    for (uint32_t i = 0; i < nclasses; i++) {
        char *name = dj_get_str(r);
        if (!name)
            return dj_error_set(DJ_ERR_FORMAT, path, "class table is corrupt");
        dj_status st = dj_index_add_class(ix, name);
        free(name);
        DJ_TRY(st);
    }
    for (int64_t i = 0; i < nvideos; i++) {
        dj_video_index *v = dj_get_video(r);
        if (!v)
            return dj_error_set(DJ_ERR_FORMAT, path, "entry %lld of the index is corrupt", (long long)i);
        if (v->label < -1 || (nclasses > 0 && v->label >= (int32_t)nclasses)) {
            dj_video_index_free(v);
            return dj_error_set(DJ_ERR_FORMAT, path, "entry %lld has a label out of range", (long long)i);
        }
        DJ_TRY(dj_index_add(ix, v));
    }
    if (r->off != r->n)
        return dj_error_set(DJ_ERR_FORMAT, path, "index file has trailing bytes");
    return DJ_OK;
}

dj_status dj_index_load(const char *path, dj_index **out) {
    if (!path || !out)
        return dj_error_set(DJ_ERR_INVALID, "dj_index_load", "path and out are required");
    *out = NULL;
    uint8_t *data = NULL;
    size_t n = 0;
    DJ_TRY(dj_read_whole(path, &data, &n));
    dj_index *ix = calloc(1, sizeof *ix);
    if (!ix) {
        free(data);
        return dj_error_set(DJ_ERR_NOMEM, path, "cannot allocate an index");
    }
    dj_rbuf r = {data, n, 0, 0};
    dj_status st = dj_index_parse(&r, ix, path);
    free(data);
    if (st != DJ_OK) {
        dj_index_free(ix);
        return st;
    }
    *out = ix;
    return DJ_OK;
}

/* ------------------------------------------------------------ building -- */

typedef struct dj_job {
    char *path;
    int label;
    int64_t start, end; /* -1: whole video */
} dj_job;

typedef struct dj_jobs {
    dj_job *v;
    int64_t n, cap;
} dj_jobs;

static void dj_jobs_free(dj_jobs *j) {
    for (int64_t i = 0; i < j->n; i++)
        free(j->v[i].path);
    free(j->v);
}

static dj_status dj_jobs_add(dj_jobs *j, const char *path, int label, int64_t start, int64_t end) {
    if (j->n == j->cap) {
        int64_t ncap = j->cap ? j->cap * 2 : 64;
        dj_job *p = realloc(j->v, (size_t)ncap * sizeof *p);
        if (!p)
            return dj_error_set(DJ_ERR_NOMEM, path, "cannot grow the file list");
        j->v = p;
        j->cap = ncap;
    }
    dj_job *e = &j->v[j->n];
    /* absolute paths: the index is used from other working folders */
    char *abs = realpath(path, NULL);
    e->path = abs ? abs : strdup(path);
    if (!e->path)
        return dj_error_set(DJ_ERR_NOMEM, path, "cannot grow the file list");
    e->label = label;
    e->start = start;
    e->end = end;
    j->n++;
    return DJ_OK;
}

/* The data set's entries, enumerated by the data-set layer (dojo/dataset.h:
 * class folders searched recursively, a folder of unlabelled videos, list
 * files, Kinetics CSVs): its class names and entries become the jobs. */
static dj_status dj_collect_dataset(const char *path, dj_index *ix, dj_jobs *jobs) {
    dj_dataset *ds = NULL;
    dj_dataset_options opt = {DJ_DATASET_AUTO, NULL, 1};
    DJ_TRY(dj_dataset_open(path, &opt, &ds));
    dj_status st = DJ_OK;
    for (int c = 0; st == DJ_OK && c < dj_dataset_num_classes(ds); c++)
        st = dj_index_add_class(ix, dj_dataset_class_name(ds, c));
    for (int64_t i = 0; st == DJ_OK && i < dj_dataset_size(ds); i++) {
        const dj_dataset_entry *e = dj_dataset_entry_at(ds, i);
        st = dj_jobs_add(jobs, e->path, e->label, e->start_frame, e->end_frame);
    }
    dj_dataset_free(ds);
    return st;
}

/* The previous index's entries sorted by path, for lookups by path. */
typedef struct dj_path_table {
    const dj_video_index **v;
    int64_t n;
} dj_path_table;

static int dj_cmp_entry_path(const void *a, const void *b) {
    return strcmp((*(const dj_video_index *const *)a)->path, (*(const dj_video_index *const *)b)->path);
}

static dj_status dj_path_table_make(const dj_index *ix, dj_path_table *t) {
    t->n = ix ? ix->n : 0;
    t->v = malloc((size_t)(t->n ? t->n : 1) * sizeof *t->v);
    if (!t->v)
        return dj_error_set(DJ_ERR_NOMEM, "dj_index_build", "cannot sort the previous index");
    for (int64_t i = 0; i < t->n; i++)
        t->v[i] = ix->videos[i];
    if (t->n > 1)
        qsort(t->v, (size_t)t->n, sizeof *t->v, dj_cmp_entry_path);
    return DJ_OK;
}

static const dj_video_index *dj_path_table_find(const dj_path_table *t, const char *path) {
    int64_t lo = 0, hi = t->n - 1;
    while (lo <= hi) {
        int64_t mid = lo + (hi - lo) / 2;
        int c = strcmp(t->v[mid]->path, path);
        if (c == 0)
            return t->v[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return NULL;
}

/* The index of one job: reused from `previous` when the file is unchanged. */
static dj_status dj_index_one(const dj_job *job, const dj_index_build_options *o, const dj_path_table *prev,
                              dj_video_index **out, int *reused, int64_t *corrected) {
    *reused = 0;
    *corrected = 0;
    struct stat sb;
    if (stat(job->path, &sb) != 0)
        return dj_error_set(DJ_ERR_NOT_FOUND, job->path, "cannot stat: %s", strerror(errno));
    int64_t mtime = (int64_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec;
    const dj_video_index *old = dj_path_table_find(prev, job->path);
    if (old && old->file_size == sb.st_size && old->file_mtime_ns == mtime &&
        (!o->verify || (old->flags & DJ_INDEX_VERIFIED))) {
        DJ_TRY(dj_video_index_clone(old, out));
        *reused = 1;
    } else {
        DJ_TRY(dj_video_index_build(job->path, out));
        if (o->verify && !((*out)->flags & DJ_INDEX_VERIFIED)) {
            dj_status st = dj_video_index_verify(*out, corrected);
            if (st != DJ_OK) {
                dj_video_index_free(*out);
                *out = NULL;
                return st;
            }
        }
    }
    dj_video_index *v = *out;
    v->label = job->label;
    v->start_frame = job->start >= 0 ? job->start : 0;
    v->end_frame = job->end >= 0 ? job->end : v->nframes;
    if (v->end_frame > v->nframes) {
        dj_status st = dj_error_set(DJ_ERR_RANGE, job->path, "frame range %lld-%lld beyond the video's %lld frames",
                                    (long long)v->start_frame, (long long)v->end_frame, (long long)v->nframes);
        dj_video_index_free(v);
        *out = NULL;
        return st;
    }
    return DJ_OK;
}

dj_status dj_index_build(const char *data, const dj_index_build_options *options, dj_index **out,
                         dj_index_report *report) {
    if (!data || !out)
        return dj_error_set(DJ_ERR_INVALID, "dj_index_build", "data and out are required");
    *out = NULL;
    dj_index_build_options o = {0, NULL, 0};
    if (options)
        o = *options;
    dj_index_report rep = {0, 0, 0, 0};
    struct stat sb;
    if (stat(data, &sb) != 0)
        return dj_error_set(DJ_ERR_NOT_FOUND, data, "no such file or folder");
    dj_index *ix = calloc(1, sizeof *ix);
    if (!ix)
        return dj_error_set(DJ_ERR_NOMEM, data, "cannot allocate an index");
    dj_jobs jobs = {0};
    dj_path_table prev = {NULL, 0};
    dj_status st = dj_path_table_make(o.previous, &prev);
    if (st == DJ_OK)
        st = dj_collect_dataset(data, ix, &jobs);
    for (int64_t i = 0; st == DJ_OK && i < jobs.n; i++) {
        dj_video_index *v = NULL;
        int reused = 0;
        int64_t corrected = 0;
        if (dj_index_one(&jobs.v[i], &o, &prev, &v, &reused, &corrected) != DJ_OK) {
            rep.skipped++;
            if (!o.quiet)
                dj_log_warn("skipped: %s", dj_error_message());
            continue;
        }
        rep.reused += reused;
        rep.scanned += !reused;
        if (corrected) {
            rep.corrected++;
            if (!o.quiet)
                dj_log_warn("corrected %lld frame entries from decoding (%s)", (long long)corrected, v->path);
        }
        st = dj_index_add(ix, v);
    }
    dj_jobs_free(&jobs);
    free(prev.v);
    if (st == DJ_OK && ix->n == 0)
        st = dj_error_set(DJ_ERR_NOT_FOUND, data, "no usable video found");
    if (st != DJ_OK) {
        dj_index_free(ix);
        return st;
    }
    if (report)
        *report = rep;
    *out = ix;
    return DJ_OK;
}
