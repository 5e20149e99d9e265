/* dojo/trace.h — a timeline of what each process did, in Chrome's trace
 * event format (chrome://tracing, Perfetto, speedscope open it).
 *
 * The event buffer is allocated once at creation: recording an event is a
 * store into it, so a training step that records allocates nothing. When
 * the buffer is full, recording stops and one warning says so; the file
 * then tells how many events were dropped. Names are not copied: pass
 * strings that live as long as the trace (literals).
 *
 * The file: {"traceEvents": [...], "displayTimeUnit": "ms", "otherData":
 * {...}}, complete events ("ph": "X") with "ts" and "dur" in microseconds
 * since the trace was created, "pid" the process (the rank), "tid" its
 * lane, and "args" (step, bucket, bytes where given); plus metadata
 * events naming the process and each lane used. */
#ifndef DOJO_TRACE_H
#define DOJO_TRACE_H

#include <stdint.h>

#include "dojo/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Lanes ("tid") of the training loop's timeline. */
enum {
    DJ_LANE_COMPUTE = 0, /* step, forward, backward, gradient wait, optimizer */
    DJ_LANE_DATA = 1,    /* waiting for the loader */
    DJ_LANE_BUCKET0 = 100, /* all-reduce of gradient bucket b on lane 100 + b */
};

typedef struct dj_trace dj_trace;

/* pid: the process id shown (the rank); capacity: events kept (>= 1). */
dj_status dj_trace_create(int pid, int64_t capacity, dj_trace **out);
void dj_trace_free(dj_trace *t);
/* Seconds on the trace's clock (dj_time_now()), for t0/t1 below. */
double dj_trace_now(void);
/* Records a complete event [t0, t1] (seconds, dj_trace_now()) on lane tid;
 * step, bucket and bytes < 0 are left out of its args. Never allocates. */
void dj_trace_add(dj_trace *t, const char *name, int tid, double t0, double t1, int64_t step, int64_t bucket,
                  int64_t bytes);
int64_t dj_trace_count(const dj_trace *t);   /* events kept */
int64_t dj_trace_dropped(const dj_trace *t); /* events not kept (buffer full) */
/* Writes the JSON file (through a temporary file, renamed); ranks is
 * recorded in otherData. */
dj_status dj_trace_write(const dj_trace *t, const char *path, int ranks);

#ifdef __cplusplus
}
#endif
#endif
