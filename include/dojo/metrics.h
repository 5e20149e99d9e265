/* dojo/metrics.h — what a training run leaves for people to read.
 *
 * A run folder RUNDIR holds:
 *   metrics.jsonl   one JSON object per line: {"split", "epoch", "step",
 *                   "wall_s", key: value, ...}, or a confusion matrix
 *                   {"split": "val", "epoch", "step", "confusion": [[...]],
 *                   "classes": [...]}; appended to by resumed runs.
 *   tb/events.out.tfevents.<unix time>.<hostname>.dojo
 *                   the same scalars for TensorBoard ("<split>/<key>").
 *   report.html     `dojo report RUNDIR`: one self-contained page of plots,
 *                   the last confusion matrix, config.json and summary.json.
 * Non-finite values are written as JSON null (and as NaN/inf to TensorBoard)
 * and skipped by the reader and the plots. */
#ifndef DOJO_METRICS_H
#define DOJO_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "dojo/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- writing a run's metrics ---------------------------------------------- */

/* A writer is used by one thread at a time. */
typedef struct dj_metrics dj_metrics;

/* Opens RUNDIR/metrics.jsonl (append mode, for resumed runs; a partial last
 * line left by a killed run is cut off first) and a new TensorBoard event file
 * RUNDIR/tb/events.out.tfevents.<unix time>.<hostname>.dojo (".2", ".3", ...
 * appended if that name exists). RUNDIR and RUNDIR/tb are created if missing. */
dj_status dj_metrics_open(const char *rundir, dj_metrics **out);

/* One JSON line {"split": split, "epoch": e, "step": s, "wall_s": w, <key>:
 * <value>, ...} and one TensorBoard scalar per key named "<split>/<key>" at step
 * s (all in one event). Keys are non-empty, unique and none of split, epoch,
 * step, wall_s, confusion, classes. */
dj_status dj_metrics_log(dj_metrics *m, const char *split, int64_t epoch, int64_t step, double wall_s, int n,
                         const char *const *keys, const double *values);

/* The validation confusion matrix, matrix[K][K] with rows = true class, and
 * the K class names (NULL: "0", "1", ...), as one JSON line {"split": "val",
 * "epoch": e, "step": s, "confusion": [[...]], "classes": [...]}. */
dj_status dj_metrics_log_confusion(dj_metrics *m, int64_t epoch, int64_t step, int k, const int64_t *matrix,
                                   const char *const *class_names);

/* fflush + fsync of both files. */
dj_status dj_metrics_flush(dj_metrics *m);

/* Flushes and closes both files; NULL is allowed. */
void dj_metrics_close(dj_metrics *m);

/* The event file's path (valid until close). */
const char *dj_metrics_event_path(const dj_metrics *m);

/* ---- reading metrics.jsonl ----------------------------------------------- */

/* The values of one key of one split, in step order. When a resumed run logs
 * a step at or before the last one already read, the earlier points from that
 * step on are dropped: the resumed run replaces them. */
typedef struct dj_metrics_series {
    char *split, *key;
    int64_t n, cap;
    int64_t *step; /* [n] */
    double *value; /* [n], all finite */
} dj_metrics_series;

typedef struct dj_metrics_data {
    int nseries;
    dj_metrics_series *series; /* [nseries], in order of first appearance */
    int64_t records;           /* lines read */
    int truncated;             /* 1 when a partial last line was ignored */
    /* the last confusion matrix, or k == 0 */
    int k;
    int64_t *confusion; /* [k][k], rows = true class */
    char **classes;     /* [k] */
    int64_t confusion_epoch, confusion_step;
} dj_metrics_data;

/* Reads a metrics.jsonl file. A last line without its newline that does not
 * parse (a killed run) is ignored and flagged; any other malformed line fails
 * with DJ_ERR_FORMAT naming "PATH:LINE". An empty file gives no series. */
dj_status dj_metrics_read(const char *path, dj_metrics_data **out);
void dj_metrics_data_free(dj_metrics_data *d);
/* The series of split/key, or NULL. */
const dj_metrics_series *dj_metrics_find(const dj_metrics_data *d, const char *split, const char *key);

/* ---- the HTML report ------------------------------------------------------ */

/* Writes RUNDIR/report.html (or out_path when not NULL) from
 * RUNDIR/metrics.jsonl, RUNDIR/config.json (the run's configuration; optional)
 * and RUNDIR/summary.json (optional): one self-contained page, no scripts, no
 * network. Fails naming RUNDIR when it or its metrics.jsonl is missing. */
dj_status dj_report_write(const char *rundir, const char *out_path);

/* ---- TensorBoard event files (used by dj_metrics; exposed for tests) ----- */

/* CRC-32C (Castagnoli), continuing from crc (0 to start): "123456789" gives
 * 0xE3069283. */
uint32_t dj_crc32c(uint32_t crc, const void *data, size_t n);
/* The TFRecord mask: ((crc >> 15) | (crc << 17)) + 0xa282ead8. */
uint32_t dj_crc32c_mask(uint32_t crc);

typedef struct dj_events dj_events;

/* Creates a new event file at path (fails if it exists) and writes the first
 * event, file_version "brain.Event:2". */
dj_status dj_events_open(const char *path, dj_events **out);
/* One event at step with one simple_value per tag. wall_time: Unix seconds. */
dj_status dj_events_scalars(dj_events *e, double wall_time, int64_t step, int n, const char *const *tags,
                            const float *values);
dj_status dj_events_flush(dj_events *e);
void dj_events_close(dj_events *e);

#ifdef __cplusplus
}
#endif
#endif
