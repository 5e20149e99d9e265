/* cmd_bench.c — `dojo bench KIND ...`: finds the benchmark and runs it.
 * Each benchmark lives in its own file (bench_KIND.c) and is listed once in
 * the table below. Benchmarks print figures and ratios; they assert nothing. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

typedef struct dj_bench_kind {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv); /* argv[0] is "bench KIND" */
} dj_bench_kind;

static const dj_bench_kind dj_bench_kinds[] = {
    {"transform", "decoded frame -> cropped, resized, normalised batch slice", dj_bench_transform},
    {"gemm", "matrix multiply GFLOP/s against the FMA peak", dj_bench_gemm},
    {"ops", "conv3d, norms, pools: forward/backward speed on r3d_18 / r2plus1d_18 shapes", dj_bench_ops},
    {"pointwise", "activations, softmax, dropout, add/mul, permute, attention, losses (GB/s)", dj_bench_pointwise},
    {"decode", "random 16-frame clips through the exact-seek reader (vs PyAV: bench/bench_decode.sh)", dj_bench_decode},
    {"allreduce", "gradient all-reduce bus bandwidth under mpirun, against MPI_Allreduce", dj_bench_allreduce},
    {"train-step", "whole training steps of a model: ms/step, clips/s, MFU, peak memory", dj_bench_train_step},
    {"scaling", "data-parallel training steps under mpirun: one rank vs all, scaling efficiency", dj_bench_scaling},
    {NULL, NULL, NULL}, /* keeps the table non-empty while benchmarks are added */
};

static void dj_bench_help(void) {
    printf("usage: dojo bench KIND [OPTIONS]\n\nkinds:\n");
    for (size_t i = 0; i < sizeof dj_bench_kinds / sizeof dj_bench_kinds[0]; i++)
        if (dj_bench_kinds[i].name)
            printf("  %-12s %s\n", dj_bench_kinds[i].name, dj_bench_kinds[i].summary);
    printf("\nRun 'dojo bench KIND --help' for the options of a benchmark.\n");
}

int dj_cmd_bench(int argc, char **argv) {
    if (argc < 2) {
        dj_bench_help();
        return DJ_EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        dj_bench_help();
        return DJ_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof dj_bench_kinds / sizeof dj_bench_kinds[0]; i++)
        if (dj_bench_kinds[i].name && strcmp(dj_bench_kinds[i].name, argv[1]) == 0)
            return dj_bench_kinds[i].run(argc - 1, argv + 1);
    return dj_cli_usage_error("bench", "unknown benchmark '%s'", argv[1]);
}
