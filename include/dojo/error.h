/* dojo/error.h — status codes and the per-thread error message.
 *
 * Every public function of libdojo returns a dj_status (or NULL/negative and
 * sets one). On failure the library records a message "WHAT (WHERE)" for the
 * calling thread; read it with dj_error_message(). The library never exits or
 * aborts: the caller decides what a failure means. */
#ifndef DOJO_ERROR_H
#define DOJO_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum dj_status {
    DJ_OK = 0,
    DJ_ERR_INVALID = -1,     /* a bad argument, flag value or shape */
    DJ_ERR_NOMEM = -2,       /* an allocation failed */
    DJ_ERR_IO = -3,          /* open/read/write/sync failed */
    DJ_ERR_FORMAT = -4,      /* a file is malformed, truncated or hostile */
    DJ_ERR_UNSUPPORTED = -5, /* valid, but not handled by this build */
    DJ_ERR_RANGE = -6,       /* an index or size out of range */
    DJ_ERR_NOT_FOUND = -7,   /* a named thing does not exist */
    DJ_ERR_DECODE = -8,      /* a decoder reported an error */
    DJ_ERR_INTERNAL = -9,    /* a bug in dojo: please report it */
} dj_status;

/* A fixed word for a status code ("invalid argument", "i/o error", ...). */
const char *dj_status_str(dj_status status);

/* The message of the last failure on this thread, "WHAT (WHERE)", or "" if
 * none was recorded. Valid until the next failing call on this thread. */
const char *dj_error_message(void);

/* Records a failure for this thread and returns status, so a function can
 * `return dj_error_set(DJ_ERR_IO, path, "cannot open: %s", strerror(errno));`
 * `where` names the file, flag, tensor or operator concerned (may be NULL). */
dj_status dj_error_set(dj_status status, const char *where, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefixes the current message with more context: "CONTEXT: old message". */
void dj_error_prefix(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Forgets the last message of this thread. */
void dj_error_clear(void);

/* Propagates a failing status from a call. */
#define DJ_TRY(expr)                      \
    do {                                  \
        dj_status dj_try_s_ = (expr);     \
        if (dj_try_s_ != DJ_OK)           \
            return dj_try_s_;             \
    } while (0)

#ifdef __cplusplus
}
#endif
#endif
