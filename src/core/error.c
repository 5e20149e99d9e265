/* error.c — the per-thread error message behind dj_error_message(). */
#include "dojo/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

enum { DJ_ERROR_MESSAGE_MAX = 1024 };

static _Thread_local char dj_error_text[DJ_ERROR_MESSAGE_MAX];

const char *dj_status_str(dj_status status) {
    switch (status) {
    case DJ_OK: return "success";
    case DJ_ERR_INVALID: return "invalid argument";
    case DJ_ERR_NOMEM: return "out of memory";
    case DJ_ERR_IO: return "i/o error";
    case DJ_ERR_FORMAT: return "malformed input";
    case DJ_ERR_UNSUPPORTED: return "not supported";
    case DJ_ERR_RANGE: return "out of range";
    case DJ_ERR_NOT_FOUND: return "not found";
    case DJ_ERR_DECODE: return "decode error";
    case DJ_ERR_INTERNAL: return "internal error";
    }
    return "unknown status";
}

const char *dj_error_message(void) { return dj_error_text; }

void dj_error_clear(void) { dj_error_text[0] = '\0'; }

dj_status dj_error_set(dj_status status, const char *where, const char *fmt, ...) {
    char what[DJ_ERROR_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (where && where[0])
        snprintf(dj_error_text, sizeof dj_error_text, "%s (%s)", what, where);
    else
        snprintf(dj_error_text, sizeof dj_error_text, "%s", what);
    return status;
}

void dj_error_prefix(const char *fmt, ...) {
    char context[DJ_ERROR_MESSAGE_MAX];
    char old[DJ_ERROR_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(context, sizeof context, fmt, ap);
    va_end(ap);
    memcpy(old, dj_error_text, sizeof old);
    snprintf(dj_error_text, sizeof dj_error_text, "%s: %s", context, old);
}
