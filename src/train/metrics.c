/* metrics.c — a run's metrics: metrics.jsonl (written with libcjson, one
 * object per line, appended to by resumed runs) plus the TensorBoard event
 * file (events.c), and the reader of metrics.jsonl used by the report. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "dojo/fs.h"
#include "dojo/log.h"
#include "dojo/metrics.h"

struct dj_metrics {
    FILE *jsonl;
    char *jsonl_path;
    dj_events *events;
    char *event_path;
};

static char *dj_metrics_join(const char *a, const char *b) {
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", a, b);
    return p;
}

/* Cuts a partial last line (a run killed mid-write) so appended lines start
 * on a line of their own. */
static dj_status dj_metrics_cut_partial(const char *path) {
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return dj_error_set(DJ_ERR_IO, path, "cannot open metrics file: %s", strerror(errno));
    off_t end = lseek(fd, 0, SEEK_END), keep = 0;
    char buf[4096];
    for (off_t pos = end; pos > 0 && keep == 0;) {
        off_t start = pos > (off_t)sizeof buf ? pos - (off_t)sizeof buf : 0;
        ssize_t got = pread(fd, buf, (size_t)(pos - start), start);
        if (got != pos - start) {
            close(fd);
            return dj_error_set(DJ_ERR_IO, path, "cannot read metrics file: %s", strerror(errno));
        }
        for (ssize_t i = got - 1; i >= 0; i--)
            if (buf[i] == '\n') {
                keep = start + i + 1;
                break;
            }
        pos = start;
    }
    dj_status s = DJ_OK;
    if (keep < end) {
        dj_log_warn("%s: dropping a partial last line (%lld bytes) left by an interrupted run", path,
                    (long long)(end - keep));
        if (ftruncate(fd, keep) != 0)
            s = dj_error_set(DJ_ERR_IO, path, "cannot cut partial last line: %s", strerror(errno));
    }
    close(fd);
    return s;
}

/* RUNDIR/tb/events.out.tfevents.<unix time>.<hostname>.dojo[.N], a new file. */
static dj_status dj_metrics_open_events(dj_metrics *m, const char *rundir) {
    char host[256] = "localhost", *tb = dj_metrics_join(rundir, "tb");
    if (!tb)
        return dj_error_set(DJ_ERR_NOMEM, rundir, "out of memory");
    dj_status s = dj_fs_mkdirs(tb);
    if (s != DJ_OK) {
        free(tb);
        return s;
    }
    if (gethostname(host, sizeof host - 1) != 0 || !host[0])
        snprintf(host, sizeof host, "localhost");
    host[sizeof host - 1] = '\0';
    for (char *c = host; *c; c++)
        if (*c == '/')
            *c = '_';
    size_t n = strlen(tb) + strlen(host) + 80;
    m->event_path = malloc(n);
    if (!m->event_path) {
        free(tb);
        return dj_error_set(DJ_ERR_NOMEM, rundir, "out of memory");
    }
    long long now = (long long)time(NULL);
    s = DJ_ERR_INVALID;
    for (int i = 1; i <= 1000 && s == DJ_ERR_INVALID; i++) {
        int len = snprintf(m->event_path, n, "%s/events.out.tfevents.%lld.%s.dojo", tb, now, host);
        if (i > 1)
            snprintf(m->event_path + len, n - (size_t)len, ".%d", i);
        s = dj_events_open(m->event_path, &m->events); /* DJ_ERR_INVALID: exists */
    }
    free(tb);
    return s;
}

dj_status dj_metrics_open(const char *rundir, dj_metrics **out) {
    *out = NULL;
    if (!rundir || !rundir[0])
        return dj_error_set(DJ_ERR_INVALID, "dj_metrics_open", "empty run folder name");
    DJ_TRY(dj_fs_mkdirs(rundir));
    dj_metrics *m = calloc(1, sizeof *m);
    if (!m || !(m->jsonl_path = dj_metrics_join(rundir, "metrics.jsonl"))) {
        free(m);
        return dj_error_set(DJ_ERR_NOMEM, rundir, "out of memory");
    }
    dj_status s = dj_metrics_cut_partial(m->jsonl_path);
    if (s == DJ_OK && !(m->jsonl = fopen(m->jsonl_path, "ae")))
        s = dj_error_set(DJ_ERR_IO, m->jsonl_path, "cannot open for appending: %s", strerror(errno));
    if (s == DJ_OK)
        s = dj_metrics_open_events(m, rundir);
    if (s != DJ_OK) {
        dj_metrics_close(m);
        return s;
    }
    *out = m;
    return DJ_OK;
}

const char *dj_metrics_event_path(const dj_metrics *m) { return m ? m->event_path : NULL; }

/* Writes one object as one line. Takes ownership of o. */
static dj_status dj_metrics_write_line(dj_metrics *m, cJSON *o) {
    char *text = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    if (!text)
        return dj_error_set(DJ_ERR_NOMEM, m->jsonl_path, "out of memory formatting a metrics line");
    size_t n = strlen(text);
    text[n] = '\n'; /* replaces the terminator; written by length */
    size_t w = fwrite(text, 1, n + 1, m->jsonl);
    free(text);
    if (w != n + 1)
        return dj_error_set(DJ_ERR_IO, m->jsonl_path, "cannot write: %s", strerror(errno));
    return DJ_OK;
}

static cJSON *dj_metrics_head(const char *split, int64_t epoch, int64_t step) {
    cJSON *o = cJSON_CreateObject();
    if (o) {
        cJSON_AddStringToObject(o, "split", split);
        cJSON_AddNumberToObject(o, "epoch", (double)epoch);
        cJSON_AddNumberToObject(o, "step", (double)step);
    }
    return o;
}

static int dj_metrics_reserved(const char *key) {
    static const char *const words[] = {"split", "epoch", "step", "wall_s", "confusion", "classes"};
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (strcmp(key, words[i]) == 0)
            return 1;
    return 0;
}

/* Checks split and keys; fills tags[i] = "<split>/<key>" (freed by caller). */
static dj_status dj_metrics_check_keys(const char *split, int n, const char *const *keys, char **tags) {
    if (!split || !split[0] || strchr(split, '/'))
        return dj_error_set(DJ_ERR_INVALID, "dj_metrics_log", "split must be a non-empty name without '/'");
    for (int i = 0; i < n; i++) {
        if (!keys[i] || !keys[i][0] || dj_metrics_reserved(keys[i]))
            return dj_error_set(DJ_ERR_INVALID, "dj_metrics_log", "key %d ('%s') is empty or reserved", i,
                                keys[i] ? keys[i] : "(null)");
        for (int j = 0; j < i; j++)
            if (strcmp(keys[i], keys[j]) == 0)
                return dj_error_set(DJ_ERR_INVALID, "dj_metrics_log", "key '%s' given twice", keys[i]);
        if (!(tags[i] = dj_metrics_join(split, keys[i])))
            return dj_error_set(DJ_ERR_NOMEM, "dj_metrics_log", "out of memory");
    }
    return DJ_OK;
}

dj_status dj_metrics_log(dj_metrics *m, const char *split, int64_t epoch, int64_t step, double wall_s, int n,
                         const char *const *keys, const double *values) {
    if (!m || n < 0 || n > 4096 || (n > 0 && (!keys || !values)))
        return dj_error_set(DJ_ERR_INVALID, "dj_metrics_log", "bad arguments (n = %d)", n);
    char **tags = calloc((size_t)n + 1, sizeof *tags);
    float *fv = calloc((size_t)n + 1, sizeof *fv);
    dj_status s = tags && fv ? dj_metrics_check_keys(split, n, keys, tags)
                             : dj_error_set(DJ_ERR_NOMEM, "dj_metrics_log", "out of memory");
    if (s == DJ_OK) {
        cJSON *o = dj_metrics_head(split, epoch, step);
        if (o && isfinite(wall_s))
            cJSON_AddNumberToObject(o, "wall_s", wall_s);
        else if (o)
            cJSON_AddNullToObject(o, "wall_s");
        for (int i = 0; o && i < n; i++) {
            fv[i] = (float)values[i];
            if (isfinite(values[i]))
                cJSON_AddNumberToObject(o, keys[i], values[i]);
            else
                cJSON_AddNullToObject(o, keys[i]);
        }
        s = dj_metrics_write_line(m, o);
    }
    if (s == DJ_OK) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        s = dj_events_scalars(m->events, (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec, step, n,
                              (const char *const *)tags, fv);
    }
    for (int i = 0; tags && i < n; i++)
        free(tags[i]);
    free(tags);
    free(fv);
    return s;
}

dj_status dj_metrics_log_confusion(dj_metrics *m, int64_t epoch, int64_t step, int k, const int64_t *matrix,
                                   const char *const *class_names) {
    if (!m || k < 1 || k > 100000 || !matrix)
        return dj_error_set(DJ_ERR_INVALID, "dj_metrics_log_confusion", "bad arguments (k = %d)", k);
    cJSON *o = dj_metrics_head("val", epoch, step);
    cJSON *rows = o ? cJSON_AddArrayToObject(o, "confusion") : NULL;
    cJSON *names = o ? cJSON_AddArrayToObject(o, "classes") : NULL;
    int ok = rows && names;
    for (int i = 0; ok && i < k; i++) {
        cJSON *row = cJSON_CreateArray();
        ok = row && cJSON_AddItemToArray(rows, row);
        for (int j = 0; ok && j < k; j++)
            ok = cJSON_AddItemToArray(row, cJSON_CreateNumber((double)matrix[(int64_t)i * k + j]));
        char num[16];
        snprintf(num, sizeof num, "%d", i);
        const char *name = class_names && class_names[i] ? class_names[i] : num;
        ok = ok && cJSON_AddItemToArray(names, cJSON_CreateString(name));
    }
    if (!ok) {
        cJSON_Delete(o);
        return dj_error_set(DJ_ERR_NOMEM, "dj_metrics_log_confusion", "out of memory");
    }
    return dj_metrics_write_line(m, o);
}

dj_status dj_metrics_flush(dj_metrics *m) {
    if (!m)
        return dj_error_set(DJ_ERR_INVALID, "dj_metrics_flush", "no metrics writer");
    if (fflush(m->jsonl) != 0 || fsync(fileno(m->jsonl)) != 0)
        return dj_error_set(DJ_ERR_IO, m->jsonl_path, "cannot flush: %s", strerror(errno));
    return dj_events_flush(m->events);
}

void dj_metrics_close(dj_metrics *m) {
    if (!m)
        return;
    if (m->jsonl && m->events)
        dj_metrics_flush(m);
    if (m->jsonl)
        fclose(m->jsonl);
    dj_events_close(m->events);
    free(m->jsonl_path);
    free(m->event_path);
    free(m);
}

/* ---- reader ------------------------------------------------------------------ */

void dj_metrics_data_free(dj_metrics_data *d) {
    if (!d)
        return;
    for (int i = 0; i < d->nseries; i++) {
        free(d->series[i].split);
        free(d->series[i].key);
        free(d->series[i].step);
        free(d->series[i].value);
    }
    free(d->series);
    for (int i = 0; i < d->k; i++)
        free(d->classes ? d->classes[i] : NULL);
    free(d->classes);
    free(d->confusion);
    free(d);
}

const dj_metrics_series *dj_metrics_find(const dj_metrics_data *d, const char *split, const char *key) {
    for (int i = 0; d && i < d->nseries; i++)
        if (strcmp(d->series[i].split, split) == 0 && strcmp(d->series[i].key, key) == 0)
            return &d->series[i];
    return NULL;
}

static dj_metrics_series *dj_metrics_series_get(dj_metrics_data *d, const char *split, const char *key) {
    dj_metrics_series *s = (dj_metrics_series *)dj_metrics_find(d, split, key);
    if (s)
        return s;
    dj_metrics_series *all = realloc(d->series, ((size_t)d->nseries + 1) * sizeof *all);
    if (!all)
        return NULL;
    d->series = all;
    s = &all[d->nseries];
    memset(s, 0, sizeof *s);
    s->split = strdup(split);
    s->key = strdup(key);
    d->nseries++;
    return s->split && s->key ? s : NULL;
}

/* Appends (step, value); a step at or before the last replaces the tail. */
static int dj_metrics_series_add(dj_metrics_series *s, int64_t step, double value) {
    while (s->n > 0 && s->step[s->n - 1] >= step)
        s->n--;
    if (s->n == s->cap) {
        int64_t cap = s->cap ? 2 * s->cap : 64;
        int64_t *st = realloc(s->step, (size_t)cap * sizeof *st);
        if (st)
            s->step = st;
        double *v = realloc(s->value, (size_t)cap * sizeof *v);
        if (v)
            s->value = v;
        if (!st || !v)
            return 0;
        s->cap = cap;
    }
    s->step[s->n] = step;
    s->value[s->n] = value;
    s->n++;
    return 1;
}

/* Reads {"confusion": [[...]], "classes": [...]} into d. */
static dj_status dj_metrics_read_confusion(dj_metrics_data *d, const cJSON *o, const char *where, int64_t epoch,
                                           int64_t step) {
    const cJSON *rows = cJSON_GetObjectItemCaseSensitive(o, "confusion");
    const cJSON *names = cJSON_GetObjectItemCaseSensitive(o, "classes");
    int k = cJSON_IsArray(rows) ? cJSON_GetArraySize(rows) : 0;
    if (k < 1 || k > 100000)
        return dj_error_set(DJ_ERR_FORMAT, where, "\"confusion\" must be a non-empty array of rows");
    if (names && (!cJSON_IsArray(names) || cJSON_GetArraySize(names) != k))
        return dj_error_set(DJ_ERR_FORMAT, where, "\"classes\" must be an array of %d names", k);
    int r = 0;
    const cJSON *row;
    cJSON_ArrayForEach(row, rows) { /* the shape first: no k*k allocation for a hostile line */
        if (!cJSON_IsArray(row) || cJSON_GetArraySize(row) != k)
            return dj_error_set(DJ_ERR_FORMAT, where, "confusion row %d must hold %d numbers", r, k);
        r++;
    }
    int64_t *m = calloc((size_t)k * (size_t)k, sizeof *m);
    char **cls = calloc((size_t)k, sizeof *cls);
    if (!m || !cls) {
        free(m);
        free(cls);
        return dj_error_set(DJ_ERR_NOMEM, where, "out of memory for a %dx%d confusion matrix", k, k);
    }
    dj_status s = DJ_OK;
    int i = 0;
    cJSON_ArrayForEach(row, rows) {
        int j = 0;
        const cJSON *c;
        cJSON_ArrayForEach(c, row) {
            if (!cJSON_IsNumber(c) || !(c->valuedouble >= 0) || c->valuedouble > 9e15) {
                s = dj_error_set(DJ_ERR_FORMAT, where, "confusion[%d][%d] must be a count >= 0", i, j);
                break;
            }
            m[(int64_t)i * k + j++] = (int64_t)c->valuedouble;
        }
        if (s != DJ_OK)
            break;
        const cJSON *name = names ? cJSON_GetArrayItem(names, i) : NULL;
        char num[16];
        snprintf(num, sizeof num, "%d", i);
        if (name && !cJSON_IsString(name)) {
            s = dj_error_set(DJ_ERR_FORMAT, where, "class name %d must be a string", i);
            break;
        }
        if (!(cls[i] = strdup(name ? name->valuestring : num))) {
            s = dj_error_set(DJ_ERR_NOMEM, where, "out of memory");
            break;
        }
        i++;
    }
    if (s != DJ_OK) {
        for (int c = 0; c < k; c++)
            free(cls[c]);
        free(cls);
        free(m);
        return s;
    }
    for (int c = 0; c < d->k; c++)
        free(d->classes[c]);
    free(d->classes);
    free(d->confusion);
    d->k = k;
    d->confusion = m;
    d->classes = cls;
    d->confusion_epoch = epoch;
    d->confusion_step = step;
    return DJ_OK;
}

/* Adds one parsed line to d. */
static dj_status dj_metrics_read_object(dj_metrics_data *d, const cJSON *o, const char *where) {
    const cJSON *split = cJSON_GetObjectItemCaseSensitive(o, "split");
    const cJSON *step = cJSON_GetObjectItemCaseSensitive(o, "step");
    const cJSON *epoch = cJSON_GetObjectItemCaseSensitive(o, "epoch");
    if (!cJSON_IsObject(o) || !cJSON_IsString(split) || !split->valuestring[0] || !cJSON_IsNumber(step) ||
        !isfinite(step->valuedouble) || fabs(step->valuedouble) > 9e15)
        return dj_error_set(DJ_ERR_FORMAT, where, "expected an object with \"split\" (text) and \"step\" (number)");
    int64_t st = (int64_t)step->valuedouble;
    int64_t ep = cJSON_IsNumber(epoch) && fabs(epoch->valuedouble) < 9e15 ? (int64_t)epoch->valuedouble : 0;
    if (cJSON_GetObjectItemCaseSensitive(o, "confusion"))
        return dj_metrics_read_confusion(d, o, where, ep, st);
    const cJSON *item;
    cJSON_ArrayForEach(item, o) {
        if (!cJSON_IsNumber(item) || dj_metrics_reserved(item->string) || !isfinite(item->valuedouble))
            continue; /* text fields, null (non-finite) values and the line's own fields */
        dj_metrics_series *s = dj_metrics_series_get(d, split->valuestring, item->string);
        if (!s || !dj_metrics_series_add(s, st, item->valuedouble))
            return dj_error_set(DJ_ERR_NOMEM, where, "out of memory");
    }
    return DJ_OK;
}

/* Parses line number `lineno` (text[len], newline removed). */
static dj_status dj_metrics_read_line(dj_metrics_data *d, const char *path, int64_t lineno, const char *text,
                                      size_t len, int complete) {
    char where[1100];
    snprintf(where, sizeof where, "%s:%lld", path, (long long)lineno);
    size_t i = 0;
    while (i < len && (text[i] == ' ' || text[i] == '\t' || text[i] == '\r'))
        i++;
    if (i == len)
        return DJ_OK; /* blank line */
    if (memchr(text, '\0', len))
        return dj_error_set(DJ_ERR_FORMAT, where, "not a JSON line (contains a NUL byte)");
    const char *end = NULL;
    cJSON *o = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    int trailing = 0;
    for (const char *p = end; o && p && p < text + len; p++)
        if (*p != ' ' && *p != '\t' && *p != '\r')
            trailing = 1;
    if (!o || trailing) {
        cJSON_Delete(o);
        if (!complete && text[i] == '{') {
            d->truncated = 1;
            dj_log_warn("%s: ignoring a partial last line (the run was interrupted)", where);
            return DJ_OK;
        }
        char shown[41];
        size_t n = len - i < 40 ? len - i : 40;
        for (size_t c = 0; c < n; c++) /* control bytes of binary garbage shown as '?' */
            shown[c] = (unsigned char)text[i + c] < 0x20 ? '?' : text[i + c];
        shown[n] = '\0';
        return dj_error_set(DJ_ERR_FORMAT, where, "not a JSON object: '%s%s'", shown, len - i > 40 ? "..." : "");
    }
    dj_status s = dj_metrics_read_object(d, o, where);
    cJSON_Delete(o);
    if (s == DJ_OK)
        d->records++;
    return s;
}

dj_status dj_metrics_read(const char *path, dj_metrics_data **out) {
    *out = NULL;
    FILE *f = fopen(path, "rbe");
    if (!f)
        return dj_error_set(errno == ENOENT ? DJ_ERR_NOT_FOUND : DJ_ERR_IO, path, "cannot open metrics: %s",
                            strerror(errno));
    dj_metrics_data *d = calloc(1, sizeof *d);
    if (!d) {
        fclose(f);
        return dj_error_set(DJ_ERR_NOMEM, path, "out of memory");
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    int64_t lineno = 0;
    dj_status s = DJ_OK;
    while (s == DJ_OK && (got = getline(&line, &cap, f)) > 0) {
        lineno++;
        int complete = line[got - 1] == '\n';
        s = dj_metrics_read_line(d, path, lineno, line, (size_t)got - (size_t)complete, complete);
    }
    if (s == DJ_OK && ferror(f))
        s = dj_error_set(DJ_ERR_IO, path, "cannot read: %s", strerror(errno));
    free(line);
    fclose(f);
    if (s != DJ_OK) {
        dj_metrics_data_free(d);
        return s;
    }
    *out = d;
    return DJ_OK;
}
