/* cli.h — what every sub-command file shares: the option parser, the
 * command table and the exit-status conventions of the `dojo` command.
 *
 * Exit status: 0 success, 1 the command failed (message "dojo: error: WHAT
 * (WHERE)"), 2 the command line is wrong (unknown option or sub-command,
 * missing or malformed value). */
#ifndef DOJO_CLI_H
#define DOJO_CLI_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "dojo/checkpoint.h"
#include "dojo/device.h"
#include "dojo/train.h"

enum { DJ_EXIT_OK = 0, DJ_EXIT_FAIL = 1, DJ_EXIT_USAGE = 2 };

typedef enum dj_opt_type {
    DJ_OPT_FLAG,   /* int*: set to 1 when present, takes no value */
    DJ_OPT_INT,    /* int64_t*: a whole number within [min, max] */
    DJ_OPT_DOUBLE, /* double*: a finite number within [min, max] */
    DJ_OPT_STRING, /* const char**: any non-empty text */
} dj_opt_type;

typedef struct dj_option {
    const char *name;    /* long name without dashes: "epochs" */
    dj_opt_type type;
    void *value;         /* where the parsed value goes (keeps its default) */
    const char *metavar; /* "N", "FILE", ...; NULL for flags */
    const char *help;
    double min, max;     /* bounds for numbers; min == max means none */
} dj_option;

typedef struct dj_command {
    const char *name;
    const char *summary; /* one line for `dojo --help` */
    int (*run)(int argc, char **argv); /* argv[0] is the sub-command name */
} dj_command;

/* Describes a sub-command's command line for `--help`. */
typedef struct dj_cli_spec {
    const char *command;     /* "probe" */
    const char *usage;       /* "FILE... [--json]" */
    const char *description; /* a paragraph; may be NULL */
    const dj_option *options; /* terminated by an entry with name NULL */
    int min_positional, max_positional; /* max < 0: unbounded */
} dj_cli_spec;

/* Parses argv[1..argc-1] against spec. Options may come before, between and
 * after positional arguments; "--name value" and "--name=value" both work;
 * "--" ends the options. --help, --quiet and --verbose are understood by every
 * command. The positional arguments are moved, in order, to argv[1..n] and
 * their count n stored in *npositional.
 * Returns -1 when parsing succeeded and the command should run, otherwise the
 * exit status to return at once (0 after --help, 2 after a usage error, whose
 * message has been printed). */
int dj_cli_parse(const dj_cli_spec *spec, int argc, char **argv, int *npositional);

/* Prints the --help text of a sub-command to stdout. */
void dj_cli_print_help(const dj_cli_spec *spec);

/* Prints "dojo: error: MESSAGE" and a hint to run --help; returns 2. */
int dj_cli_usage_error(const char *command, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prints "dojo: error: " followed by the library's last error message; returns 1. */
int dj_cli_fail(void);

/* `--device TEXT` of `command` (NULL: not given, the CPU). Returns -1 to go on
 * on the CPU, else the exit status: 2 for a malformed value, 1 when the GPU
 * asked for is absent, CUDA is not built in, or (for now) always for cuda,
 * as the training step does not run on the GPU yet (device_flag.c). */
int dj_cli_device(const char *command, const char *text, dj_device_spec *spec);

/* What `dojo eval` and `dojo predict` share (evaluator.c). */
typedef struct dj_cli_evaluator {
    dj_eval_options eo; /* filled by dj_cli_evaluator_options, then overridden by flags */
    dj_model *model;
    dj_checkpoint_state st;
    dj_threadpool *pool;
    void *scratch;
    dj_exec ex;
    cJSON *classes; /* the checkpoint's class names, or NULL */
} dj_cli_evaluator;
dj_status dj_cli_evaluator_options(const char *ckpt, dj_eval_options *eo);
/* Builds the model for e->eo, loads the weights, starts the threads. */
dj_status dj_cli_evaluator_open(dj_cli_evaluator *e, const char *ckpt, const char *model, int threads);
void dj_cli_evaluator_close(dj_cli_evaluator *e);
/* Class i's name, or its number written into buf. */
const char *dj_cli_evaluator_class(const dj_cli_evaluator *e, int i, char *buf, size_t size);

/* The table of sub-commands (cli_main.c). */
const dj_command *dj_cli_commands(int *count);
const dj_command *dj_cli_find(const char *name);

/* The sub-commands, one file each: cmd_NAME.c. */
int dj_cmd_version(int argc, char **argv);
int dj_cmd_train(int argc, char **argv);
int dj_cmd_eval(int argc, char **argv);
int dj_cmd_predict(int argc, char **argv);
int dj_cmd_bench(int argc, char **argv);
int dj_cmd_probe(int argc, char **argv);
int dj_cmd_frames(int argc, char **argv);
int dj_cmd_index(int argc, char **argv);
int dj_cmd_gen(int argc, char **argv);
int dj_cmd_forward(int argc, char **argv);
int dj_cmd_report(int argc, char **argv);

/* The benchmarks of `dojo bench`, one file each: bench_KIND.c. */
int dj_bench_transform(int argc, char **argv);
int dj_bench_decode(int argc, char **argv);
int dj_bench_gemm(int argc, char **argv);
int dj_bench_ops(int argc, char **argv);
int dj_bench_pointwise(int argc, char **argv);
int dj_bench_allreduce(int argc, char **argv);
int dj_bench_scaling(int argc, char **argv);
int dj_bench_train_step(int argc, char **argv);

/* Shared by the benchmarks (bench_util.c). */
/* The 1-minute load average, or -1 when /proc/loadavg cannot be read. */
double dj_bench_loadavg(void);
/* qsort comparison of doubles, ascending. */
int dj_bench_cmp_double(const void *a, const void *b);
/* Sorts v[0..n) and returns its median (n >= 1). */
double dj_bench_median(double *v, int64_t n);
/* Parses "NxCxTxHxW" (five numbers in 1..1000000, C = 3) into dims; 0 or -1. */
int dj_bench_parse_input(const char *text, int64_t dims[5]);

/* A network set up for timing training steps: its thread pool, the model
 * built for dims (N, C, T, H, W), planned for training and initialised,
 * random clips (normal) and labels (uniform) from seed 2 and the given
 * stream, SGD with momentum 0.9 and weight decay 1e-4, and the scratch. */
typedef struct dj_bench_net {
    int64_t dims[5];
    int threads; /* the pool's size */
    dj_threadpool *pool;
    dj_model *model;
    dj_graph *g;
    dj_optimizer *opt;
    void *scratch;
    dj_exec ex;
} dj_bench_net;

/* Sets up b (dims filled in by the caller) for `model` (name or file) with
 * `classes` outputs (0: the model file's), on `threads` threads (0: one per
 * core), in bf16 mixed precision when asked, with conv3d's algorithm
 * conv_algo (a dj_conv_algo); `who` names the benchmark in
 * errors. dj_bench_net_free releases what was made, also after a failure. */
dj_status dj_bench_net_setup(dj_bench_net *b, const char *who, const char *model, int64_t classes, int threads,
                             int bf16, int conv_algo, uint64_t stream);
void dj_bench_net_free(dj_bench_net *b);

#endif
