/* trace.c — the Chrome trace timeline: a preallocated array of complete
 * events, filled without allocating, written as JSON at the end. */
#define _GNU_SOURCE
#include "dojo/trace.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dojo/fs.h"
#include "dojo/log.h"

typedef struct dj_trace_event {
    const char *name;
    int tid;
    double t0, t1;                /* seconds on dj_time_now()'s clock */
    int64_t step, bucket, bytes; /* < 0: absent */
} dj_trace_event;

struct dj_trace {
    int pid;
    double origin;          /* ts 0 */
    dj_trace_event *events; /* [capacity] */
    int64_t capacity, count, dropped;
};

dj_status dj_trace_create(int pid, int64_t capacity, dj_trace **out) {
    *out = NULL;
    if (capacity < 1 || capacity > ((int64_t)1 << 26))
        return dj_error_set(DJ_ERR_INVALID, "trace", "capacity %lld is not in 1..2^26 events", (long long)capacity);
    dj_trace *t = calloc(1, sizeof *t);
    if (t)
        t->events = calloc((size_t)capacity, sizeof *t->events);
    if (!t || !t->events) {
        free(t);
        return dj_error_set(DJ_ERR_NOMEM, "trace", "cannot allocate %lld events", (long long)capacity);
    }
    t->pid = pid;
    t->capacity = capacity;
    t->origin = dj_time_now();
    *out = t;
    return DJ_OK;
}

void dj_trace_free(dj_trace *t) {
    if (!t)
        return;
    free(t->events);
    free(t);
}

double dj_trace_now(void) { return dj_time_now(); }

void dj_trace_add(dj_trace *t, const char *name, int tid, double t0, double t1, int64_t step, int64_t bucket,
                  int64_t bytes) {
    if (!t)
        return;
    if (t->count == t->capacity) {
        if (t->dropped++ == 0)
            dj_log_warn("trace: the event buffer is full (%lld events): later events are not recorded "
                        "(raise train.trace_events)",
                        (long long)t->capacity);
        return;
    }
    t->events[t->count++] = (dj_trace_event){name, tid, t0, t1 >= t0 ? t1 : t0, step, bucket, bytes};
}

int64_t dj_trace_count(const dj_trace *t) { return t->count; }
int64_t dj_trace_dropped(const dj_trace *t) { return t->dropped; }

static const char *dj_lane_name(int tid, char *buf, size_t n) {
    if (tid == DJ_LANE_COMPUTE)
        return "compute";
    if (tid == DJ_LANE_DATA)
        return "data";
    if (tid >= DJ_LANE_BUCKET0)
        snprintf(buf, n, "all-reduce bucket %d", tid - DJ_LANE_BUCKET0);
    else
        snprintf(buf, n, "lane %d", tid);
    return buf;
}

/* Names are literals from dojo's code; escape anyway so the JSON stays valid. */
static void dj_json_string(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fprintf(f, "\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            fprintf(f, "\\u%04x", (unsigned char)*s);
        else
            fputc(*s, f);
    }
    fputc('"', f);
}

static void dj_trace_write_events(const dj_trace *t, FILE *f, int ranks) {
    fprintf(f, "{\"traceEvents\":[\n{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":%d,\"tid\":0,"
               "\"args\":{\"name\":\"rank %d of %d\"}}",
            t->pid, t->pid, ranks);
    /* one name per lane used (lanes are few: a small bitmap of seen ones) */
    unsigned char seen[1024] = {0};
    for (int64_t i = 0; i < t->count; i++) {
        int tid = t->events[i].tid;
        if (tid < 0 || tid >= 1024 || seen[tid])
            continue;
        seen[tid] = 1;
        char buf[64];
        fprintf(f, ",\n{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":%d,\"tid\":%d,\"args\":{\"name\":", t->pid, tid);
        dj_json_string(f, dj_lane_name(tid, buf, sizeof buf));
        fprintf(f, "}}");
    }
    for (int64_t i = 0; i < t->count; i++) {
        const dj_trace_event *e = &t->events[i];
        fprintf(f, ",\n{\"name\":");
        dj_json_string(f, e->name);
        fprintf(f, ",\"cat\":\"%s\",\"ph\":\"X\",\"ts\":%.3f,\"dur\":%.3f,\"pid\":%d,\"tid\":%d,\"args\":{",
                e->tid >= DJ_LANE_BUCKET0 ? "comm" : e->tid == DJ_LANE_DATA ? "data" : "compute",
                (e->t0 - t->origin) * 1e6, (e->t1 - e->t0) * 1e6, t->pid, e->tid);
        const char *sep = "";
        if (e->step >= 0)
            fprintf(f, "\"step\":%lld", (long long)e->step), sep = ",";
        if (e->bucket >= 0)
            fprintf(f, "%s\"bucket\":%lld", sep, (long long)e->bucket), sep = ",";
        if (e->bytes >= 0)
            fprintf(f, "%s\"bytes\":%lld", sep, (long long)e->bytes);
        fprintf(f, "}}");
    }
    fprintf(f, "\n],\"displayTimeUnit\":\"ms\",\"otherData\":{\"rank\":%d,\"ranks\":%d,\"events\":%lld,"
               "\"dropped\":%lld,\"capacity\":%lld}}\n",
            t->pid, ranks, (long long)t->count, (long long)t->dropped, (long long)t->capacity);
}

dj_status dj_trace_write(const dj_trace *t, const char *path, int ranks) {
    dj_fs_temp tmp;
    DJ_TRY(dj_fs_temp_open(&tmp, path));
    dj_trace_write_events(t, tmp.f, ranks);
    return dj_fs_temp_commit(&tmp);
}
