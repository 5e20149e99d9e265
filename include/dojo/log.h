/* dojo/log.h — leveled logging and the live progress line.
 *
 * Messages go to stderr with a level prefix; the progress line goes to
 * stderr too, redrawn in place ("\r") when stderr is a terminal and printed as
 * plain periodic lines otherwise (CI logs, files, pipes). */
#ifndef DOJO_LOG_H
#define DOJO_LOG_H

#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum dj_log_level {
    DJ_LOG_ERROR = 0,
    DJ_LOG_WARN = 1,
    DJ_LOG_INFO = 2,  /* the default */
    DJ_LOG_DEBUG = 3, /* --verbose */
} dj_log_level;

void dj_log_set_level(dj_log_level level);
dj_log_level dj_log_get_level(void);

/* Prints "dojo: LEVEL: message\n" when level <= the current level. Errors and
 * warnings carry their level word; info lines are printed bare. */
void dj_log(dj_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define dj_log_error(...) dj_log(DJ_LOG_ERROR, __VA_ARGS__)
#define dj_log_warn(...) dj_log(DJ_LOG_WARN, __VA_ARGS__)
#define dj_log_info(...) dj_log(DJ_LOG_INFO, __VA_ARGS__)
#define dj_log_debug(...) dj_log(DJ_LOG_DEBUG, __VA_ARGS__)

/* The progress line. dj_progress_update() may be called as often as wanted:
 * on a terminal it redraws at most every 100 ms, elsewhere it prints one
 * plain line every `plain_interval_s` seconds (default 10). Silent under
 * --quiet. dj_progress_end() prints the final state and a newline. */
typedef struct dj_progress dj_progress;

dj_progress *dj_progress_create(FILE *stream);
void dj_progress_set_plain_interval(dj_progress *p, double seconds);
/* Forces the terminal (1) or plain (0) mode; -1 detects with isatty(). */
void dj_progress_set_mode(dj_progress *p, int terminal);
void dj_progress_update(dj_progress *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void dj_progress_end(dj_progress *p);
void dj_progress_free(dj_progress *p);

/* Seconds from a monotonic clock. */
double dj_time_now(void);

#ifdef __cplusplus
}
#endif
#endif
