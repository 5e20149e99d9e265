/* log.c — leveled messages on stderr and the in-place progress line. */
#define _GNU_SOURCE
#include "dojo/log.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static dj_log_level dj_log_current = DJ_LOG_INFO;
/* Set while a terminal progress line is on screen, so a log message first
 * clears it instead of being glued to its end. */
static _Thread_local int dj_progress_line_open;

void dj_log_set_level(dj_log_level level) { dj_log_current = level; }
dj_log_level dj_log_get_level(void) { return dj_log_current; }

double dj_time_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void dj_log(dj_log_level level, const char *fmt, ...) {
    if (level > dj_log_current)
        return;
    char text[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (dj_progress_line_open) {
        fputs("\r\033[K", stderr);
        dj_progress_line_open = 0;
    }
    switch (level) {
    case DJ_LOG_ERROR: fprintf(stderr, "dojo: error: %s\n", text); break;
    case DJ_LOG_WARN: fprintf(stderr, "dojo: warning: %s\n", text); break;
    case DJ_LOG_INFO: fprintf(stderr, "%s\n", text); break;
    case DJ_LOG_DEBUG: fprintf(stderr, "dojo: debug: %s\n", text); break;
    }
}

struct dj_progress {
    FILE *stream;
    int terminal;
    double plain_interval_s;
    double last_draw;
    char line[512];
};

dj_progress *dj_progress_create(FILE *stream) {
    dj_progress *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->stream = stream ? stream : stderr;
    p->terminal = isatty(fileno(p->stream));
    p->plain_interval_s = 10.0;
    p->last_draw = -1e30;
    return p;
}

void dj_progress_set_plain_interval(dj_progress *p, double seconds) {
    if (p && seconds >= 0)
        p->plain_interval_s = seconds;
}

void dj_progress_set_mode(dj_progress *p, int terminal) {
    if (p)
        p->terminal = terminal < 0 ? isatty(fileno(p->stream)) : terminal != 0;
}

static void dj_progress_draw(dj_progress *p) {
    if (p->terminal) {
        fprintf(p->stream, "\r\033[K%s", p->line);
        dj_progress_line_open = 1;
    } else {
        fprintf(p->stream, "%s\n", p->line);
    }
    fflush(p->stream);
}

void dj_progress_update(dj_progress *p, const char *fmt, ...) {
    if (!p)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->line, sizeof p->line, fmt, ap);
    va_end(ap);
    if (dj_log_current < DJ_LOG_INFO)
        return;
    double now = dj_time_now();
    double interval = p->terminal ? 0.1 : p->plain_interval_s;
    if (now - p->last_draw < interval)
        return;
    p->last_draw = now;
    dj_progress_draw(p);
}

void dj_progress_end(dj_progress *p) {
    if (!p || dj_log_current < DJ_LOG_INFO || !p->line[0])
        return;
    dj_progress_draw(p);
    if (p->terminal)
        fputc('\n', p->stream);
    dj_progress_line_open = 0;
    p->line[0] = '\0';
}

void dj_progress_free(dj_progress *p) { free(p); }
