/* events.c — TensorBoard event files written without a protobuf library.
 *
 * A file is a sequence of TFRecords:
 *   uint64 length (little-endian), uint32 masked CRC-32C of those 8 bytes,
 *   payload[length], uint32 masked CRC-32C of the payload,
 * each payload one Event message, hand-encoded:
 *   Event   { double wall_time = 1; int64 step = 2; string file_version = 3;
 *             Summary summary = 5; }
 *   Summary { repeated Value value = 1; }
 *   Value   { string tag = 1; float simple_value = 2; } */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dojo/metrics.h"

/* ---- CRC-32C ---------------------------------------------------------------- */

static uint32_t dj_crc32c_table[256];
static pthread_once_t dj_crc32c_once = PTHREAD_ONCE_INIT;

/* The byte table of the reflected Castagnoli polynomial 0x82F63B78. */
static void dj_crc32c_init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int b = 0; b < 8; b++)
            c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        dj_crc32c_table[i] = c;
    }
}

uint32_t dj_crc32c(uint32_t crc, const void *data, size_t n) {
    pthread_once(&dj_crc32c_once, dj_crc32c_init);
    const uint8_t *p = data;
    crc = ~crc;
    for (size_t i = 0; i < n; i++)
        crc = dj_crc32c_table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
    return ~crc;
}

uint32_t dj_crc32c_mask(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + 0xa282ead8u; }

/* ---- a growable byte buffer with protobuf writers ---------------------------- */

typedef struct dj_pbuf {
    uint8_t *p;
    size_t n, cap;
    int oom;
} dj_pbuf;

static void dj_pbuf_put(dj_pbuf *b, const void *data, size_t n) {
    if (b->oom || n == 0)
        return;
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n)
            cap *= 2;
        uint8_t *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, data, n);
    b->n += n;
}

static void dj_pbuf_varint(dj_pbuf *b, uint64_t v) {
    uint8_t tmp[10];
    int n = 0;
    do {
        tmp[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    dj_pbuf_put(b, tmp, (size_t)n);
}

/* wire types: 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32 */
static void dj_pbuf_key(dj_pbuf *b, int field, int wire) { dj_pbuf_varint(b, (uint64_t)field << 3 | (uint64_t)wire); }

static void dj_pbuf_le(dj_pbuf *b, uint64_t v, int bytes) {
    uint8_t tmp[8];
    for (int i = 0; i < bytes; i++)
        tmp[i] = (uint8_t)(v >> (8 * i));
    dj_pbuf_put(b, tmp, (size_t)bytes);
}

static void dj_pbuf_double(dj_pbuf *b, int field, double v) {
    uint64_t bits;
    memcpy(&bits, &v, 8);
    dj_pbuf_key(b, field, 1);
    dj_pbuf_le(b, bits, 8);
}

static void dj_pbuf_float(dj_pbuf *b, int field, float v) {
    uint32_t bits;
    memcpy(&bits, &v, 4);
    dj_pbuf_key(b, field, 5);
    dj_pbuf_le(b, bits, 4);
}

static void dj_pbuf_bytes(dj_pbuf *b, int field, const void *data, size_t n) {
    dj_pbuf_key(b, field, 2);
    dj_pbuf_varint(b, n);
    dj_pbuf_put(b, data, n);
}

/* ---- the event file -------------------------------------------------------- */

struct dj_events {
    FILE *f;
    char *path;
};

/* Writes one TFRecord around payload[n]. */
static dj_status dj_events_record(dj_events *e, const uint8_t *payload, size_t n) {
    uint8_t head[12];
    for (int i = 0; i < 8; i++)
        head[i] = (uint8_t)((uint64_t)n >> (8 * i));
    uint32_t hcrc = dj_crc32c_mask(dj_crc32c(0, head, 8));
    uint32_t pcrc = dj_crc32c_mask(dj_crc32c(0, payload, n));
    uint8_t foot[4];
    for (int i = 0; i < 4; i++) {
        head[8 + i] = (uint8_t)(hcrc >> (8 * i));
        foot[i] = (uint8_t)(pcrc >> (8 * i));
    }
    if (fwrite(head, 1, 12, e->f) != 12 || fwrite(payload, 1, n, e->f) != n || fwrite(foot, 1, 4, e->f) != 4)
        return dj_error_set(DJ_ERR_IO, e->path, "cannot write event: %s", strerror(errno));
    return DJ_OK;
}

dj_status dj_events_open(const char *path, dj_events **out) {
    *out = NULL;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0)
        return dj_error_set(errno == EEXIST ? DJ_ERR_INVALID : DJ_ERR_IO, path, "cannot create event file: %s",
                            strerror(errno));
    dj_events *e = calloc(1, sizeof *e);
    if (e)
        e->path = strdup(path);
    if (e && e->path)
        e->f = fdopen(fd, "wb");
    if (!e || !e->path || !e->f) {
        close(fd);
        if (e)
            free(e->path);
        free(e);
        return dj_error_set(DJ_ERR_NOMEM, path, "out of memory opening event file");
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    dj_pbuf b = {0};
    static const char version[] = "brain.Event:2";
    dj_pbuf_double(&b, 1, (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec);
    dj_pbuf_bytes(&b, 3, version, sizeof version - 1);
    dj_status s = b.oom ? dj_error_set(DJ_ERR_NOMEM, path, "out of memory encoding event") : dj_events_record(e, b.p, b.n);
    free(b.p);
    if (s == DJ_OK)
        s = dj_events_flush(e);
    if (s != DJ_OK) {
        dj_events_close(e);
        return s;
    }
    *out = e;
    return DJ_OK;
}

dj_status dj_events_scalars(dj_events *e, double wall_time, int64_t step, int n, const char *const *tags,
                            const float *values) {
    if (!e || n < 0 || (n > 0 && (!tags || !values)))
        return dj_error_set(DJ_ERR_INVALID, "dj_events_scalars", "bad arguments (n = %d)", n);
    dj_pbuf summary = {0}, value = {0}, event = {0};
    for (int i = 0; i < n; i++) {
        if (!tags[i] || !tags[i][0]) {
            free(summary.p);
            free(value.p);
            return dj_error_set(DJ_ERR_INVALID, e->path, "scalar %d has an empty tag", i);
        }
        value.n = 0;
        dj_pbuf_bytes(&value, 1, tags[i], strlen(tags[i]));
        dj_pbuf_float(&value, 2, values[i]);
        dj_pbuf_bytes(&summary, 1, value.p, value.n);
    }
    dj_pbuf_double(&event, 1, wall_time);
    dj_pbuf_key(&event, 2, 0);
    dj_pbuf_varint(&event, (uint64_t)step);
    dj_pbuf_bytes(&event, 5, summary.p, summary.n);
    dj_status s = (summary.oom || value.oom || event.oom)
                      ? dj_error_set(DJ_ERR_NOMEM, e->path, "out of memory encoding event")
                      : dj_events_record(e, event.p, event.n);
    free(summary.p);
    free(value.p);
    free(event.p);
    return s;
}

dj_status dj_events_flush(dj_events *e) {
    if (fflush(e->f) != 0 || fsync(fileno(e->f)) != 0)
        return dj_error_set(DJ_ERR_IO, e->path, "cannot flush event file: %s", strerror(errno));
    return DJ_OK;
}

void dj_events_close(dj_events *e) {
    if (!e)
        return;
    if (e->f)
        fclose(e->f);
    free(e->path);
    free(e);
}
