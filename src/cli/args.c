/* args.c — the long-option parser shared by every sub-command.
 *
 * Written by hand rather than with getopt_long: every sub-command needs typed
 * values with bounds, the same error wording and exit status, and options
 * mixed freely with positional arguments, which getopt_long only gives with
 * GNU permutation and no typing. */
#include "cli.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dojo/error.h"
#include "dojo/log.h"

int dj_cli_usage_error(const char *command, const char *fmt, ...) {
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (command && command[0]) {
        fprintf(stderr, "dojo: error: %s (dojo %s)\n", text, command);
        fprintf(stderr, "try 'dojo %s --help'\n", command);
    } else {
        fprintf(stderr, "dojo: error: %s\n", text);
        fprintf(stderr, "try 'dojo --help'\n");
    }
    return DJ_EXIT_USAGE;
}

int dj_cli_fail(void) {
    const char *msg = dj_error_message();
    fprintf(stderr, "dojo: error: %s\n", msg[0] ? msg : "failed (no message recorded)");
    return DJ_EXIT_FAIL;
}

static const dj_option *dj_cli_find_option(const dj_option *opts, const char *name, size_t len) {
    for (const dj_option *o = opts; o && o->name; o++)
        if (strlen(o->name) == len && strncmp(o->name, name, len) == 0)
            return o;
    return NULL;
}

static int dj_cli_has_bounds(const dj_option *o) { return o->min != o->max; }

static int dj_cli_store(const dj_cli_spec *spec, const dj_option *o, const char *text) {
    switch (o->type) {
    case DJ_OPT_FLAG:
        *(int *)o->value = 1;
        return 0;
    case DJ_OPT_STRING:
        if (!text[0])
            return dj_cli_usage_error(spec->command, "option '--%s' needs a non-empty value", o->name);
        *(const char **)o->value = text;
        return 0;
    case DJ_OPT_INT: {
        char *end = NULL;
        errno = 0;
        long long v = strtoll(text, &end, 10);
        if (!text[0] || *end != '\0' || errno == ERANGE)
            return dj_cli_usage_error(spec->command, "option '--%s' expects a whole number, got '%s'", o->name,
                                      text);
        if (dj_cli_has_bounds(o) && ((double)v < o->min || (double)v > o->max))
            return dj_cli_usage_error(spec->command, "option '--%s' must be between %.0f and %.0f, got %lld",
                                      o->name, o->min, o->max, v);
        *(int64_t *)o->value = (int64_t)v;
        return 0;
    }
    case DJ_OPT_DOUBLE: {
        char *end = NULL;
        errno = 0;
        double v = strtod(text, &end);
        if (!text[0] || *end != '\0' || errno == ERANGE || !isfinite(v))
            return dj_cli_usage_error(spec->command, "option '--%s' expects a number, got '%s'", o->name, text);
        if (dj_cli_has_bounds(o) && (v < o->min || v > o->max))
            return dj_cli_usage_error(spec->command, "option '--%s' must be between %g and %g, got %g", o->name,
                                      o->min, o->max, v);
        *(double *)o->value = v;
        return 0;
    }
    }
    return dj_cli_usage_error(spec->command, "option '--%s' has an unknown type", o->name);
}

int dj_cli_parse(const dj_cli_spec *spec, int argc, char **argv, int *npositional) {
    /* positional arguments are compacted into argv[1..np]: np <= i always */
    char **positional = argv + 1;
    int np = 0;
    int only_positional = 0;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (only_positional || arg[0] != '-' || arg[1] == '\0') {
            positional[np++] = argv[i];
            continue;
        }
        if (strcmp(arg, "--") == 0) {
            only_positional = 1;
            continue;
        }
        if (arg[1] != '-') {
            if (strcmp(arg, "-h") == 0) {
                dj_cli_print_help(spec);
                return DJ_EXIT_OK;
            }
            return dj_cli_usage_error(spec->command, "unknown option '%s' (options are long: --name)", arg);
        }
        const char *name = arg + 2;
        const char *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        if (len == 4 && strncmp(name, "help", 4) == 0) {
            dj_cli_print_help(spec);
            return DJ_EXIT_OK;
        }
        if (len == 5 && strncmp(name, "quiet", 5) == 0 && !eq) {
            dj_log_set_level(DJ_LOG_WARN);
            continue;
        }
        if (len == 7 && strncmp(name, "verbose", 7) == 0 && !eq) {
            dj_log_set_level(DJ_LOG_DEBUG);
            continue;
        }
        const dj_option *o = dj_cli_find_option(spec->options, name, len);
        if (!o)
            return dj_cli_usage_error(spec->command, "unknown option '--%.*s'", (int)len, name);
        const char *value = NULL;
        if (o->type == DJ_OPT_FLAG) {
            if (eq)
                return dj_cli_usage_error(spec->command, "option '--%s' takes no value", o->name);
        } else if (eq) {
            value = eq + 1;
        } else if (i + 1 < argc) {
            value = argv[++i];
        } else {
            return dj_cli_usage_error(spec->command, "option '--%s' needs a value (%s)", o->name,
                                      o->metavar ? o->metavar : "VALUE");
        }
        int rc = dj_cli_store(spec, o, value ? value : "");
        if (rc != 0)
            return rc;
    }
    if (np < spec->min_positional) {
        if (spec->min_positional == 1)
            return dj_cli_usage_error(spec->command, "missing argument: %s", spec->usage ? spec->usage : "");
        return dj_cli_usage_error(spec->command, "expected at least %d arguments, got %d", spec->min_positional,
                                  np);
    }
    if (spec->max_positional >= 0 && np > spec->max_positional) {
        if (spec->max_positional == 0)
            return dj_cli_usage_error(spec->command, "unexpected argument '%s'", positional[0]);
        return dj_cli_usage_error(spec->command, "unexpected argument '%s' (at most %d)",
                                  positional[spec->max_positional], spec->max_positional);
    }
    *npositional = np;
    return -1;
}

void dj_cli_print_help(const dj_cli_spec *spec) {
    printf("usage: dojo %s %s\n", spec->command, spec->usage ? spec->usage : "");
    if (spec->description)
        printf("\n%s\n", spec->description);
    printf("\noptions:\n");
    for (const dj_option *o = spec->options; o && o->name; o++) {
        char left[64];
        if (o->metavar)
            snprintf(left, sizeof left, "--%s %s", o->name, o->metavar);
        else
            snprintf(left, sizeof left, "--%s", o->name);
        printf("  %-24s %s", left, o->help ? o->help : "");
        /* a help text that states its default itself gets no second one */
        int states_default = o->help && strstr(o->help, "default") != NULL;
        switch (states_default ? DJ_OPT_FLAG : o->type) {
        case DJ_OPT_INT:
            printf(" (default %" PRId64 ")", *(const int64_t *)o->value);
            break;
        case DJ_OPT_DOUBLE:
            printf(" (default %g)", *(const double *)o->value);
            break;
        case DJ_OPT_STRING:
            if (*(const char *const *)o->value)
                printf(" (default %s)", *(const char *const *)o->value);
            break;
        case DJ_OPT_FLAG:
            break;
        }
        printf("\n");
    }
    printf("  %-24s %s\n", "--quiet", "print warnings and errors only");
    printf("  %-24s %s\n", "--verbose", "print debugging detail");
    printf("  %-24s %s\n", "--help", "show this help");
}
