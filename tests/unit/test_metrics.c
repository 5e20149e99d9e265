/* test_metrics.c — run metrics: CRC-32C, the TensorBoard event framing and
 * Event encoding (parsed back here, and by TensorBoard itself when it is
 * installed), metrics.jsonl lines, appending for resumed runs, and the reader
 * with truncated, empty, garbage and hostile files. */
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <dirent.h>

#include "dojo/dojo.h"
#include "support/test.h"

/* ---- helpers ----------------------------------------------------------------- */

static char *tmp_path(const char *name) {
    static char buf[8][1024];
    static int next;
    char *p = buf[next++ % 8];
    snprintf(p, 1024, "%s/%s", dj_test_tmpdir(), name);
    return p;
}

static char *read_all(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *p = malloc((size_t)len + 1);
    if (p && fread(p, 1, (size_t)len, f) != (size_t)len) {
        free(p);
        p = NULL;
    }
    fclose(f);
    if (p)
        p[len] = '\0';
    if (n)
        *n = (size_t)len;
    return p;
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static void append_file(const char *path, const char *text) {
    FILE *f = fopen(path, "ab");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static int count_lines(const char *text) {
    int n = 0;
    for (const char *p = text; p && *p; p++)
        n += *p == '\n';
    return n;
}

/* The event files under dir/tb, sorted; returns their count. */
static int list_events(const char *rundir, char names[][512], int max) {
    char tb[1024];
    snprintf(tb, sizeof tb, "%s/tb", rundir);
    DIR *d = opendir(tb);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) && n < max)
        if (strstr(e->d_name, "events.out.tfevents."))
            snprintf(names[n++], 512, "%s/%s", tb, e->d_name);
    if (d)
        closedir(d);
    return n;
}

/* A fake run: `steps` train lines (loss, lr, top1, clips_per_s, data_wait),
 * a val line and a confusion matrix every `every` steps. */
static double fake_loss(int64_t s) { return 2.0 * exp(-(double)s / 150.0) + 0.1; }

static void fake_run(dj_metrics *m, int64_t first, int64_t last, int every) {
    static const char *const train_keys[] = {"loss", "lr", "top1", "clips_per_s", "data_wait"};
    static const char *const val_keys[] = {"top1", "top5", "loss"};
    static const char *const classes[] = {"walk", "run", "jump"};
    for (int64_t s = first; s <= last; s++) {
        double v[5] = {fake_loss(s), 0.1 * (1 - (double)s / 1000), 0.3 + s * 1e-3, 100 + (double)(s % 7), 0.05};
        if (dj_metrics_log(m, "train", s / 100, s, 0.5 * (double)s, 5, train_keys, v) != DJ_OK)
            dj_test_fail_at(__FILE__, __LINE__, "log: %s", dj_error_message());
        if (s % every == 0) {
            double vv[3] = {0.4 + s * 1e-3, 0.9, fake_loss(s) + 0.2};
            int64_t cm[9] = {10, 1, 0, 2, 8, s % 3, 0, 3, 9};
            CHECK(dj_metrics_log(m, "val", s / 100, s, 0.5 * (double)s, 3, val_keys, vv) == DJ_OK);
            CHECK(dj_metrics_log_confusion(m, s / 100, s, 3, cm, classes) == DJ_OK);
        }
    }
}

static const char *make_run(const char *name, int64_t steps, int every) {
    const char *dir = tmp_path(name);
    dj_metrics *m = NULL;
    if (dj_metrics_open(dir, &m) != DJ_OK) {
        dj_test_fail_at(__FILE__, __LINE__, "open: %s", dj_error_message());
        return dir;
    }
    fake_run(m, 1, steps, every);
    CHECK(dj_metrics_flush(m) == DJ_OK);
    dj_metrics_close(m);
    return dir;
}

/* ---- CRC-32C ------------------------------------------------------------------ */

static void test_crc32c_check_value(void) {
    CHECK_EQ_INT(dj_crc32c(0, "123456789", 9), 0xE3069283u);
    CHECK_EQ_INT(dj_crc32c(0, "", 0), 0);
    /* RFC 3720 B.4: 32 bytes of zeros, of 0xff */
    unsigned char z[32] = {0}, ff[32];
    memset(ff, 0xff, sizeof ff);
    CHECK_EQ_INT(dj_crc32c(0, z, 32), 0x8A9136AAu);
    CHECK_EQ_INT(dj_crc32c(0, ff, 32), 0x62A8AB43u);
    /* continuing gives the same as one call */
    CHECK_EQ_INT(dj_crc32c(dj_crc32c(0, "1234", 4), "56789", 5), 0xE3069283u);
}

static void test_crc32c_mask(void) {
    CHECK_EQ_INT(dj_crc32c_mask(0), 0xa282ead8u);
    CHECK_EQ_INT(dj_crc32c_mask(0xE3069283u), 0xc78ab0e5u); /* worked by hand (Python) */
}

/* ---- event files, parsed back ------------------------------------------------- */

typedef struct pb_reader {
    const uint8_t *p, *end;
    int bad;
} pb_reader;

static uint64_t pb_varint(pb_reader *r) {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (r->p >= r->end) {
            r->bad = 1;
            return 0;
        }
        uint8_t b = *r->p++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return v;
    }
    r->bad = 1;
    return 0;
}

static uint64_t pb_fixed(pb_reader *r, int bytes) {
    uint64_t v = 0;
    if (r->end - r->p < bytes) {
        r->bad = 1;
        return 0;
    }
    for (int i = 0; i < bytes; i++)
        v |= (uint64_t)r->p[i] << (8 * i);
    r->p += bytes;
    return v;
}

typedef struct parsed_event {
    double wall_time;
    int64_t step;
    char version[64];
    int nvalues;
    char tags[8][64];
    float values[8];
} parsed_event;

/* Summary.Value { tag = 1; simple_value = 2 } */
static void parse_value(const uint8_t *p, size_t n, parsed_event *ev) {
    pb_reader r = {p, p + n, 0};
    int i = ev->nvalues < 8 ? ev->nvalues++ : 7;
    while (!r.bad && r.p < r.end) {
        uint64_t key = pb_varint(&r);
        if (key == (1 << 3 | 2)) {
            uint64_t len = pb_varint(&r);
            CHECK(len < 64 && len <= (uint64_t)(r.end - r.p));
            if (len < 64 && len <= (uint64_t)(r.end - r.p))
                memcpy(ev->tags[i], r.p, len), ev->tags[i][len] = '\0';
            r.p += len;
        } else if (key == (2 << 3 | 5)) {
            uint32_t bits = (uint32_t)pb_fixed(&r, 4);
            memcpy(&ev->values[i], &bits, 4);
        } else {
            dj_test_fail_at(__FILE__, __LINE__, "unexpected Value field key %llu", (unsigned long long)key);
            return;
        }
    }
    CHECK(!r.bad);
}

static void parse_event(const uint8_t *p, size_t n, parsed_event *ev) {
    memset(ev, 0, sizeof *ev);
    pb_reader r = {p, p + n, 0};
    while (!r.bad && r.p < r.end) {
        uint64_t key = pb_varint(&r);
        if (key == (1 << 3 | 1)) {
            uint64_t bits = pb_fixed(&r, 8);
            memcpy(&ev->wall_time, &bits, 8);
        } else if (key == (2 << 3 | 0)) {
            ev->step = (int64_t)pb_varint(&r);
        } else if (key == (3 << 3 | 2)) {
            uint64_t len = pb_varint(&r);
            if (len < 64 && len <= (uint64_t)(r.end - r.p))
                memcpy(ev->version, r.p, len);
            r.p += len;
        } else if (key == (5 << 3 | 2)) {
            uint64_t len = pb_varint(&r);
            pb_reader s = {r.p, r.p + len, 0};
            while (!s.bad && s.p < s.end) {
                CHECK_EQ_INT(pb_varint(&s), 1 << 3 | 2); /* Summary.value */
                uint64_t vl = pb_varint(&s);
                parse_value(s.p, vl, ev);
                s.p += vl;
            }
            r.p += len;
        } else {
            dj_test_fail_at(__FILE__, __LINE__, "unexpected Event field key %llu", (unsigned long long)key);
            return;
        }
    }
    CHECK(!r.bad && r.p == r.end);
}

/* Checks the TFRecord framing of a whole file; returns the events (caller
 * frees) and their count. */
static parsed_event *read_events(const char *path, int *count) {
    size_t n;
    uint8_t *data = (uint8_t *)read_all(path, &n);
    *count = 0;
    CHECK(data != NULL);
    if (!data)
        return NULL;
    parsed_event *evs = NULL;
    size_t pos = 0;
    while (pos < n) {
        CHECK(n - pos >= 16);
        if (n - pos < 16)
            break;
        uint64_t len = 0;
        for (int i = 0; i < 8; i++)
            len |= (uint64_t)data[pos + i] << (8 * i);
        uint32_t hcrc = (uint32_t)(data[pos + 8] | data[pos + 9] << 8 | data[pos + 10] << 16 | (uint32_t)data[pos + 11] << 24);
        CHECK_EQ_INT(hcrc, dj_crc32c_mask(dj_crc32c(0, data + pos, 8)));
        CHECK(len <= n - pos - 16);
        if (len > n - pos - 16)
            break;
        const uint8_t *payload = data + pos + 12, *foot = payload + len;
        uint32_t pcrc = (uint32_t)(foot[0] | foot[1] << 8 | foot[2] << 16 | (uint32_t)foot[3] << 24);
        CHECK_EQ_INT(pcrc, dj_crc32c_mask(dj_crc32c(0, payload, len)));
        evs = realloc(evs, (size_t)(*count + 1) * sizeof *evs);
        parse_event(payload, len, &evs[*count]);
        (*count)++;
        pos += 16 + len;
    }
    free(data);
    return evs;
}

static void test_events_framing_and_fields(void) {
    const char *path = tmp_path("one.tfevents");
    dj_events *e = NULL;
    CHECK(dj_events_open(path, &e) == DJ_OK);
    const char *tags[] = {"train/loss", "train/lr"};
    float vals[] = {1.25f, 3e-4f};
    CHECK(dj_events_scalars(e, 1700000000.5, 42, 2, tags, vals) == DJ_OK);
    const char *neg[] = {"x"};
    float nv[] = {-7.5f};
    CHECK(dj_events_scalars(e, 1700000001.0, -3, 1, neg, nv) == DJ_OK);
    CHECK(dj_events_flush(e) == DJ_OK);
    dj_events_close(e);
    int n;
    parsed_event *ev = read_events(path, &n);
    CHECK_EQ_INT(n, 3);
    if (n == 3) {
        CHECK(strcmp(ev[0].version, "brain.Event:2") == 0);
        CHECK(ev[0].wall_time > 1.6e9); /* Unix time of now */
        CHECK_EQ_INT(ev[0].nvalues, 0);
        CHECK_CLOSE(ev[1].wall_time, 1700000000.5, 0, 1e-6);
        CHECK_EQ_INT(ev[1].step, 42);
        CHECK_EQ_INT(ev[1].nvalues, 2);
        CHECK(strcmp(ev[1].tags[0], "train/loss") == 0 && strcmp(ev[1].tags[1], "train/lr") == 0);
        CHECK(ev[1].values[0] == 1.25f && ev[1].values[1] == 3e-4f);
        CHECK_EQ_INT(ev[2].step, -3);
        CHECK(ev[2].values[0] == -7.5f);
    }
    free(ev);
    /* an existing file is never overwritten */
    CHECK(dj_events_open(path, &e) != DJ_OK);
    CHECK_STR_CONTAINS(dj_error_message(), "one.tfevents");
    CHECK(dj_events_open(tmp_path("no/such/dir/x"), &e) == DJ_ERR_IO);
    CHECK(e == NULL);
}

static void test_events_reject_bad_tags(void) {
    dj_events *e = NULL;
    CHECK(dj_events_open(tmp_path("bad.tfevents"), &e) == DJ_OK);
    const char *tags[] = {""};
    float v[] = {1};
    CHECK(dj_events_scalars(e, 1, 1, 1, tags, v) == DJ_ERR_INVALID);
    CHECK(dj_events_scalars(e, 1, 1, -1, tags, v) == DJ_ERR_INVALID);
    dj_events_close(e);
    dj_events_close(NULL);
}

/* ---- metrics.jsonl + events through dj_metrics ---------------------------------- */

static void test_metrics_fake_run_lines_and_events(void) {
    const char *dir = make_run("run1", 300, 100);
    char path[1024];
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    char *text = read_all(path, NULL);
    CHECK(text != NULL);
    CHECK_EQ_INT(count_lines(text), 300 + 3 * 2);
    /* the first line, exactly as specified */
    CHECK(text && strncmp(text, "{\"split\":\"train\",\"epoch\":0,\"step\":1,\"wall_s\":0.5,\"loss\":", 55) == 0);
    CHECK_STR_CONTAINS(text, "{\"split\":\"val\",\"epoch\":1,\"step\":100,\"wall_s\":50,\"top1\":0.5,\"top5\":0.9,");
    CHECK_STR_CONTAINS(text, "\"confusion\":[[10,1,0],[2,8,1],[0,3,9]],\"classes\":[\"walk\",\"run\",\"jump\"]}");
    free(text);

    char ev_files[4][512];
    CHECK_EQ_INT(list_events(dir, ev_files, 4), 1);
    CHECK_STR_CONTAINS(ev_files[0], ".dojo");
    int n;
    parsed_event *ev = read_events(ev_files[0], &n);
    CHECK_EQ_INT(n, 1 + 300 + 3);
    int seen_val = 0;
    for (int i = 1; i < n; i++) {
        if (strcmp(ev[i].tags[0], "train/loss") == 0) {
            CHECK_EQ_INT(ev[i].nvalues, 5);
            CHECK(strcmp(ev[i].tags[4], "train/data_wait") == 0);
            CHECK(ev[i].values[0] == (float)fake_loss(ev[i].step));
        } else {
            CHECK(strcmp(ev[i].tags[0], "val/top1") == 0 && strcmp(ev[i].tags[1], "val/top5") == 0);
            CHECK(ev[i].step % 100 == 0);
            seen_val++;
        }
    }
    CHECK_EQ_INT(seen_val, 3);
    free(ev);
}

static void test_metrics_read_back(void) {
    const char *dir = make_run("run2", 250, 50);
    char path[1024];
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    dj_metrics_data *d = NULL;
    CHECK(dj_metrics_read(path, &d) == DJ_OK);
    if (!d)
        return;
    CHECK_EQ_INT(d->records, 250 + 5 * 2);
    CHECK_EQ_INT(d->truncated, 0);
    CHECK_EQ_INT(d->nseries, 5 + 3);
    const dj_metrics_series *loss = dj_metrics_find(d, "train", "loss");
    CHECK(loss && loss->n == 250);
    if (loss && loss->n == 250) {
        CHECK_EQ_INT(loss->step[0], 1);
        CHECK_EQ_INT(loss->step[249], 250);
        CHECK(loss->value[123] == fake_loss(124)); /* round trip is exact */
    }
    const dj_metrics_series *top5 = dj_metrics_find(d, "val", "top5");
    CHECK(top5 && top5->n == 5 && top5->step[4] == 250);
    CHECK(dj_metrics_find(d, "val", "lr") == NULL);
    CHECK(dj_metrics_find(d, "train", "wall_s") == NULL); /* not a series */
    CHECK_EQ_INT(d->k, 3);
    CHECK_EQ_INT(d->confusion_step, 250);
    CHECK_EQ_INT(d->confusion_epoch, 2);
    if (d->k == 3) {
        CHECK_EQ_INT(d->confusion[5], 250 % 3);
        CHECK(strcmp(d->classes[2], "jump") == 0);
    }
    dj_metrics_data_free(d);
}

static void test_metrics_append_on_resume(void) {
    const char *dir = make_run("resume", 120, 60);
    dj_metrics *m = NULL;
    CHECK(dj_metrics_open(dir, &m) == DJ_OK);
    if (!m)
        return;
    CHECK(strstr(dj_metrics_event_path(m), "/tb/events.out.tfevents.") != NULL);
    fake_run(m, 91, 200, 60); /* resumed from a checkpoint at step 90 */
    dj_metrics_close(m);
    char ev_files[4][512];
    CHECK_EQ_INT(list_events(dir, ev_files, 4), 2);
    char path[1024];
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    char *text = read_all(path, NULL);
    CHECK_EQ_INT(count_lines(text), 120 + 2 * 2 + 110 + 2 * 2);
    free(text);
    dj_metrics_data *d = NULL;
    CHECK(dj_metrics_read(path, &d) == DJ_OK);
    const dj_metrics_series *loss = d ? dj_metrics_find(d, "train", "loss") : NULL;
    /* steps 91..120 of the first run are replaced by the resumed run's */
    CHECK(loss && loss->n == 200);
    for (int64_t i = 1; loss && i < loss->n; i++)
        CHECK(loss->step[i] == loss->step[i - 1] + 1);
    const dj_metrics_series *top1 = d ? dj_metrics_find(d, "val", "top1") : NULL;
    CHECK(top1 && top1->n == 3); /* 60, 120 (resumed), 180 */
    CHECK(d && d->confusion_step == 180);
    dj_metrics_data_free(d);
}

static void test_metrics_nonfinite_values(void) {
    const char *dir = tmp_path("nan");
    dj_metrics *m = NULL;
    CHECK(dj_metrics_open(dir, &m) == DJ_OK);
    if (!m)
        return;
    const char *keys[] = {"loss", "lr"};
    double v1[] = {NAN, 0.1}, v2[] = {INFINITY, 0.1}, v3[] = {1.5, 0.1};
    CHECK(dj_metrics_log(m, "train", 0, 1, NAN, 2, keys, v1) == DJ_OK);
    CHECK(dj_metrics_log(m, "train", 0, 2, 1, 2, keys, v2) == DJ_OK);
    CHECK(dj_metrics_log(m, "train", 0, 3, 2, 2, keys, v3) == DJ_OK);
    dj_metrics_close(m);
    char path[1024];
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    char *text = read_all(path, NULL);
    CHECK_STR_CONTAINS(text, "\"step\":1,\"wall_s\":null,\"loss\":null,\"lr\":0.1}");
    CHECK_STR_CONTAINS(text, "\"loss\":null");
    free(text);
    dj_metrics_data *d = NULL;
    CHECK(dj_metrics_read(path, &d) == DJ_OK);
    const dj_metrics_series *loss = d ? dj_metrics_find(d, "train", "loss") : NULL;
    CHECK(loss && loss->n == 1 && loss->value[0] == 1.5);
    const dj_metrics_series *lr = d ? dj_metrics_find(d, "train", "lr") : NULL;
    CHECK(lr && lr->n == 3);
    dj_metrics_data_free(d);
    /* TensorBoard gets the NaN itself */
    char ev_files[2][512];
    CHECK_EQ_INT(list_events(dir, ev_files, 2), 1);
    int n;
    parsed_event *ev = read_events(ev_files[0], &n);
    CHECK(n == 4 && isnan(ev[1].values[0]) && isinf(ev[2].values[0]));
    free(ev);
}

static void test_metrics_rejects_bad_keys(void) {
    dj_metrics *m = NULL;
    CHECK(dj_metrics_open(tmp_path("badkeys"), &m) == DJ_OK);
    if (!m)
        return;
    double v[2] = {1, 2};
    const char *reserved[] = {"step"}, *dup[] = {"a", "a"}, *empty[] = {""}, *null_key[] = {NULL};
    CHECK(dj_metrics_log(m, "train", 0, 1, 0, 1, reserved, v) == DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "'step'");
    CHECK(dj_metrics_log(m, "train", 0, 1, 0, 2, dup, v) == DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "given twice");
    CHECK(dj_metrics_log(m, "train", 0, 1, 0, 1, empty, v) == DJ_ERR_INVALID);
    CHECK(dj_metrics_log(m, "train", 0, 1, 0, 1, null_key, v) == DJ_ERR_INVALID);
    CHECK(dj_metrics_log(m, "", 0, 1, 0, 0, NULL, NULL) == DJ_ERR_INVALID);
    CHECK(dj_metrics_log(m, "a/b", 0, 1, 0, 0, NULL, NULL) == DJ_ERR_INVALID);
    CHECK(dj_metrics_log(m, NULL, 0, 1, 0, 0, NULL, NULL) == DJ_ERR_INVALID);
    CHECK(dj_metrics_log(m, "train", 0, 1, 0, -1, NULL, NULL) == DJ_ERR_INVALID);
    int64_t cm[1] = {1};
    CHECK(dj_metrics_log_confusion(m, 0, 1, 0, cm, NULL) == DJ_ERR_INVALID);
    CHECK(dj_metrics_log_confusion(m, 0, 1, 1, NULL, NULL) == DJ_ERR_INVALID);
    /* nothing was written by the rejected calls */
    char path[1024];
    snprintf(path, sizeof path, "%s/metrics.jsonl", tmp_path("badkeys"));
    char *text = read_all(path, NULL);
    CHECK(text && text[0] == '\0');
    free(text);
    /* no class names: numbers */
    CHECK(dj_metrics_log_confusion(m, 0, 1, 1, cm, NULL) == DJ_OK);
    dj_metrics_close(m);
    text = read_all(path, NULL);
    CHECK_STR_CONTAINS(text, "\"confusion\":[[1]],\"classes\":[\"0\"]}");
    free(text);
}

static void test_metrics_open_errors(void) {
    dj_metrics *m = (dj_metrics *)1;
    const char *file = tmp_path("plainfile");
    write_file(file, "x");
    CHECK(dj_metrics_open(file, &m) == DJ_ERR_IO);
    CHECK(m == NULL);
    CHECK_STR_CONTAINS(dj_error_message(), "plainfile");
    CHECK(dj_metrics_open(tmp_path("plainfile/run"), &m) == DJ_ERR_IO); /* a parent is a file */
    CHECK_STR_CONTAINS(dj_error_message(), "plainfile/run");
    CHECK(dj_metrics_open(tmp_path("missing/parent/run"), &m) == DJ_OK); /* missing parents are made */
    dj_metrics_close(m);
    CHECK(dj_metrics_open("", &m) == DJ_ERR_INVALID);
    CHECK(dj_metrics_flush(NULL) == DJ_ERR_INVALID);
    dj_metrics_close(NULL);
}

/* ---- the reader on damaged files ------------------------------------------------ */

static void test_reader_truncated_last_line(void) {
    const char *dir = make_run("trunc", 30, 10);
    char path[1024];
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    append_file(path, "{\"split\":\"train\",\"epoch\":0,\"step\":31,\"wall_s\":1,\"lo");
    dj_metrics_data *d = NULL;
    CHECK(dj_metrics_read(path, &d) == DJ_OK);
    CHECK(d && d->truncated == 1 && d->records == 36);
    const dj_metrics_series *loss = d ? dj_metrics_find(d, "train", "loss") : NULL;
    CHECK(loss && loss->n == 30);
    dj_metrics_data_free(d);
    /* a resumed run cuts the partial line before appending */
    dj_metrics *m = NULL;
    CHECK(dj_metrics_open(dir, &m) == DJ_OK);
    fake_run(m, 31, 40, 10);
    dj_metrics_close(m);
    CHECK(dj_metrics_read(path, &d) == DJ_OK);
    CHECK(d && d->truncated == 0 && d->records == 36 + 12);
    loss = d ? dj_metrics_find(d, "train", "loss") : NULL;
    CHECK(loss && loss->n == 40);
    dj_metrics_data_free(d);
}

static void test_reader_empty_and_missing(void) {
    const char *path = tmp_path("empty.jsonl");
    write_file(path, "");
    dj_metrics_data *d = NULL;
    CHECK(dj_metrics_read(path, &d) == DJ_OK);
    CHECK(d && d->records == 0 && d->nseries == 0 && d->k == 0 && !d->truncated);
    dj_metrics_data_free(d);
    write_file(path, "\n  \n");
    CHECK(dj_metrics_read(path, &d) == DJ_OK);
    CHECK(d && d->records == 0);
    dj_metrics_data_free(d);
    CHECK(dj_metrics_read(tmp_path("nope.jsonl"), &d) == DJ_ERR_NOT_FOUND);
    CHECK(d == NULL);
    CHECK_STR_CONTAINS(dj_error_message(), "nope.jsonl");
}

/* Each garbage file fails with "PATH:LINE" and a reason. */
static void test_reader_rejects_garbage(void) {
    static const struct {
        const char *text, *line, *why;
    } cases[] = {
        {"{\"split\":\"train\",\"step\":1,\"loss\":1}\nnot json\n{\"split\":\"train\",\"step\":2}\n", ":2)",
         "not a JSON object"},
        {"{\"split\":\"train\",\"step\":1}\n{\"split\":\"train\",\"step\":2} trailing\n", ":2)", "not a JSON"},
        {"[1,2,3]\n", ":1)", "expected an object"},
        {"{\"step\":1,\"loss\":2}\n", ":1)", "\"split\""},
        {"{\"split\":\"train\",\"step\":\"one\"}\n", ":1)", "\"step\""},
        {"{\"split\":\"\",\"step\":1}\n", ":1)", "\"split\""},
        {"\n\n{\"split\":\"val\",\"step\":1,\"confusion\":[[1,2],[3]]}\n", ":3)", "confusion row 1"},
        {"{\"split\":\"val\",\"step\":1,\"confusion\":[[1,-2],[3,4]]}\n", ":1)", "confusion[0][1]"},
        {"{\"split\":\"val\",\"step\":1,\"confusion\":[]}\n", ":1)", "non-empty"},
        {"{\"split\":\"val\",\"step\":1,\"confusion\":[[1]],\"classes\":[\"a\",\"b\"]}\n", ":1)", "\"classes\""},
        {"{\"split\":\"val\",\"step\":1,\"confusion\":[[1]],\"classes\":[7]}\n", ":1)", "class name 0"},
        {"\x89PNG garbage without newline", ":1)", "not a JSON"},
        {"{\"split\":\"a\",\"step\":1}\n{\"split\":\"a\",\0\"step\":2}\n", ":2)", "NUL"},
    };
    const char *path = tmp_path("garbage.jsonl");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        FILE *f = fopen(path, "wb");
        size_t len = strlen(cases[i].text);
        if (strstr(cases[i].why, "NUL")) /* the literal holds a NUL: write all of it */
            len += 1 + strlen(cases[i].text + len + 1);
        fwrite(cases[i].text, 1, len, f);
        fclose(f);
        dj_metrics_data *d = NULL;
        dj_status s = dj_metrics_read(path, &d);
        CHECK_MSG(s == DJ_ERR_FORMAT, "case %zu: status %d", i, (int)s);
        CHECK(d == NULL);
        char want[1100];
        snprintf(want, sizeof want, "garbage.jsonl%s", cases[i].line);
        CHECK_STR_CONTAINS(dj_error_message(), want);
        CHECK_STR_CONTAINS(dj_error_message(), cases[i].why);
        dj_metrics_data_free(d);
    }
}

/* A line claiming a huge matrix fails on its shape before any k*k allocation. */
static void test_reader_rejects_hostile_confusion(void) {
    const char *path = tmp_path("hostile.jsonl");
    FILE *f = fopen(path, "wb");
    fputs("{\"split\":\"val\",\"step\":1,\"confusion\":[", f);
    for (int i = 0; i < 100000; i++)
        fputs(i ? ",[]" : "[]", f);
    fputs("]}\n", f);
    fclose(f);
    dj_metrics_data *d = NULL;
    CHECK(dj_metrics_read(path, &d) == DJ_ERR_FORMAT);
    CHECK_STR_CONTAINS(dj_error_message(), "confusion row 0 must hold 100000 numbers (");
    CHECK_STR_CONTAINS(dj_error_message(), "hostile.jsonl:1)");
    CHECK(d == NULL);
}

static void test_reader_ignores_text_fields(void) {
    const char *path = tmp_path("text.jsonl");
    write_file(path, "{\"split\":\"train\",\"epoch\":0,\"step\":1,\"note\":\"hello\",\"loss\":2,\"flag\":true}\n");
    dj_metrics_data *d = NULL;
    CHECK(dj_metrics_read(path, &d) == DJ_OK);
    CHECK(d && d->nseries == 1 && dj_metrics_find(d, "train", "loss"));
    dj_metrics_data_free(d);
}

/* ---- TensorBoard itself ----------------------------------------------------------- */

static void test_tensorboard_reads_our_files(void) {
    const char *py = getenv("DOJO_PYTHON");
    char cmd[4096];
    if (!py || !py[0])
        py = "python3";
    if (access("tools/check_tfevents.py", R_OK) != 0)
        SKIP("tools/check_tfevents.py not found (run from the repository root)");
    snprintf(cmd, sizeof cmd, "%s -c 'import tensorboard' >/dev/null 2>&1", py);
    if (system(cmd) != 0)
        SKIP("tensorboard is not installed for python (pip install tensorboard; DOJO_PYTHON=path/to/python)");
    const char *dir = make_run("tb", 120, 40);
    dj_metrics *m = NULL;
    CHECK(dj_metrics_open(dir, &m) == DJ_OK); /* a second file, resumed */
    if (m)
        fake_run(m, 121, 160, 40);
    dj_metrics_close(m);
    const char *out = tmp_path("tb.txt");
    snprintf(cmd, sizeof cmd, "%s tools/check_tfevents.py '%s/tb' > '%s' 2>&1", py, dir, out);
    int rc = system(cmd);
    char *text = read_all(out, NULL);
    CHECK_MSG(rc == 0, "check_tfevents.py failed: %.600s", text ? text : "");
    CHECK_MSG(text && strncmp(text, "file_version 2.0\n", 17) == 0, "no file version 2 (\"brain.Event:2\"): %.100s",
              text ? text : "");
    /* repr() of the float32 value widened to double */
    CHECK_STR_CONTAINS(text, "\ntrain/loss 1 ");
    CHECK_STR_CONTAINS(text, "\ntrain/loss 160 ");
    CHECK_STR_CONTAINS(text, "\nval/top5 160 0.8999999761581421\n");
    CHECK_STR_CONTAINS(text, "\ntrain/data_wait 7 0.05000000074505806\n");
    /* every step of train/loss once, both files */
    int nloss = 0;
    for (const char *p = text; p && (p = strstr(p, "\ntrain/loss ")); p++)
        nloss++;
    CHECK_EQ_INT(nloss, 160);
    int nval = 0;
    for (const char *p = text; p && (p = strstr(p, "\nval/top1 ")); p++)
        nval++;
    CHECK_EQ_INT(nval, 4);
    free(text);
}

int main(void) {
    DJ_RUN(test_crc32c_check_value);
    DJ_RUN(test_crc32c_mask);
    DJ_RUN(test_events_framing_and_fields);
    DJ_RUN(test_events_reject_bad_tags);
    DJ_RUN(test_metrics_fake_run_lines_and_events);
    DJ_RUN(test_metrics_read_back);
    DJ_RUN(test_metrics_append_on_resume);
    DJ_RUN(test_metrics_nonfinite_values);
    DJ_RUN(test_metrics_rejects_bad_keys);
    DJ_RUN(test_metrics_open_errors);
    DJ_RUN(test_reader_truncated_last_line);
    DJ_RUN(test_reader_empty_and_missing);
    DJ_RUN(test_reader_rejects_garbage);
    DJ_RUN(test_reader_rejects_hostile_confusion);
    DJ_RUN(test_reader_ignores_text_fields);
    DJ_RUN(test_tensorboard_reads_our_files);
    return dj_test_finish();
}
