/* bench_allreduce.c — `dojo bench allreduce`: gradient all-reduce speed
 * under mpirun, dojo's against MPI's own in the same run.
 *
 * Three ways of summing one float32 buffer over all ranks, each timed
 * --iters times after a warm-up (a barrier before each; the time of an
 * iteration is the mean over ranks; the median is reported):
 *   mpi       MPI_Allreduce in place (the algorithm MPI picks, or the one set
 *             with --mca coll_tuned_* on the mpirun line)
 *   dojo      dj_comm_allreduce_f32 of the whole buffer (rank-order sums)
 *   bucketed  the buffer cut into --bucket-mb buckets, all started at once
 *             and then waited for, as the gradient reducer does
 * Bus bandwidth = bytes x 2 (size - 1) / size / time: the bytes each rank
 * sends and receives in a bandwidth-optimal all-reduce (as nccl-tests). */
#include <stdio.h>
#include <stdlib.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "dojo/dist.h"
#include "dojo/log.h"
#ifdef DJ_HAVE_MPI
#include <mpi.h>
#endif

static double dj_ba_mb, dj_ba_bucket_mb;
static int64_t dj_ba_iters;
static int dj_ba_json;

static const dj_option dj_ba_options[] = {
    {"mb", DJ_OPT_DOUBLE, &dj_ba_mb, "MB", "buffer size in megabytes (default 32)", 0.001, 4096},
    {"bucket-mb", DJ_OPT_DOUBLE, &dj_ba_bucket_mb, "MB", "bucket size of the bucketed reduce (default 25)", 0.001, 4096},
    {"iters", DJ_OPT_INT, &dj_ba_iters, "N", "timed iterations; the median is reported (default 10)", 1, 100000},
    {"json", DJ_OPT_FLAG, &dj_ba_json, NULL, "print one JSON object", 0, 0},
    {NULL, 0, NULL, NULL, NULL, 0, 0},
};

static const dj_cli_spec dj_ba_spec = {
    "bench allreduce", "[--mb MB] [--bucket-mb MB] [--iters N] [--json]",
    "Under mpirun, times the all-reduce of a float32 buffer three ways: MPI's\n"
    "MPI_Allreduce, dojo's rank-order all-reduce and dojo's bucketed reduce,\n"
    "and prints their bus bandwidth and the ratio of dojo's to MPI's. Run it as\n"
    "  mpirun -np 2 dojo bench allreduce --mb 32",
    dj_ba_options, 0, 0,
};

typedef enum { DJ_BA_MPI, DJ_BA_DOJO, DJ_BA_BUCKETED } dj_ba_way;

/* One reduction of buf (n floats) the given way. */
static dj_status dj_ba_once(dj_comm *c, dj_ba_way way, float *buf, size_t n, size_t bucket, dj_comm_request **reqs) {
    if (way == DJ_BA_MPI) {
#ifdef DJ_HAVE_MPI
        int rc = MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS)
            return dj_error_set(DJ_ERR_IO, "mpi", "MPI_Allreduce failed (code %d)", rc);
#endif
        return DJ_OK;
    }
    if (way == DJ_BA_DOJO)
        return dj_comm_allreduce_f32(c, buf, n, DJ_REDUCE_SUM);
    size_t nb = (n + bucket - 1) / bucket;
    for (size_t b = 0; b < nb; b++) {
        size_t lo = b * bucket, len = lo + bucket <= n ? bucket : n - lo;
        dj_status s = dj_comm_iallreduce_f32(c, buf + lo, len, DJ_REDUCE_SUM, &reqs[b]);
        if (s != DJ_OK) {
            for (size_t k = 0; k < b; k++)
                dj_comm_request_drop(reqs[k]);
            return s;
        }
    }
    dj_status s = DJ_OK;
    for (size_t b = 0; b < nb; b++)
        if (s == DJ_OK)
            s = dj_comm_wait(reqs[b]);
        else
            dj_comm_request_drop(reqs[b]);
    return s;
}

/* The median over iterations of the slowest rank's seconds. */
static dj_status dj_ba_time(dj_comm *c, dj_ba_way way, float *buf, size_t n, size_t bucket, dj_comm_request **reqs,
                            double *median) {
    double *t = calloc((size_t)dj_ba_iters, sizeof *t);
    if (!t)
        return dj_error_set(DJ_ERR_NOMEM, "bench", "cannot allocate the timings");
    dj_status s = DJ_OK;
    for (int64_t i = -1; i < dj_ba_iters && s == DJ_OK; i++) { /* i = -1: warm-up */
        for (size_t k = 0; k < n; k++)
            buf[k] = 1.0f / (float)(1 + (k & 1023)); /* finite sums, whatever the iteration */
        s = dj_comm_barrier(c);
        double t0 = dj_time_now();
        if (s == DJ_OK)
            s = dj_ba_once(c, way, buf, n, bucket, reqs);
        double dt = dj_time_now() - t0;
        if (s == DJ_OK)
            s = dj_comm_allreduce_f64(c, &dt, 1, DJ_REDUCE_MEAN);
        if (i >= 0)
            t[i] = dt;
    }
    qsort(t, (size_t)dj_ba_iters, sizeof *t, dj_bench_cmp_double);
    *median = t[dj_ba_iters / 2];
    free(t);
    return s;
}

static void dj_ba_print(const char *name, double secs, double bus_bytes, double ratio) {
    printf("  %-9s %9.3f ms  %7.3f GB/s bus bandwidth", name, 1e3 * secs, bus_bytes / secs / 1e9);
    if (ratio > 0)
        printf("  (%.2fx MPI_Allreduce)", ratio);
    printf("\n");
}

int dj_bench_allreduce(int argc, char **argv) {
    dj_ba_mb = 32;
    dj_ba_bucket_mb = 25;
    dj_ba_iters = 10;
    dj_ba_json = 0;
    int npos = 0;
    int rc = dj_cli_parse(&dj_ba_spec, argc, argv, &npos);
    if (rc >= 0)
        return rc;
    dj_comm *c = NULL;
    if (dj_comm_create(DJ_COMM_AUTO, &c) != DJ_OK)
        return dj_cli_fail();
    const size_t n = (size_t)(dj_ba_mb * 1e6 / sizeof(float));
    size_t bucket = (size_t)(dj_ba_bucket_mb * 1e6 / sizeof(float));
    if (n == 0 || n > (size_t)0x7fffffff || bucket == 0) {
        dj_comm_free(c);
        return dj_cli_usage_error("bench allreduce", "--mb gives %zu floats: between 1 and 2^31 - 1 needed", n);
    }
    const int size = dj_comm_size(c), rank = dj_comm_rank(c);
    float *buf = malloc(n * sizeof *buf);
    dj_comm_request **reqs = calloc(n / bucket + 2, sizeof *reqs);
    double secs[3] = {0, 0, 0};
    dj_status s = buf && reqs ? DJ_OK : dj_error_set(DJ_ERR_NOMEM, "bench", "cannot allocate %zu floats", n);
#ifndef DJ_HAVE_MPI
    const int ways = 0;
#else
    const int ways = size > 1 ? 3 : 0;
#endif
    for (int w = 0; w < ways && s == DJ_OK; w++)
        s = dj_ba_time(c, (dj_ba_way)w, buf, n, bucket, reqs, &secs[w]);
    free(buf);
    free(reqs);
    if (s != DJ_OK) {
        int code = dj_cli_fail();
        dj_comm_free(c);
        return code;
    }
    const double bus = (double)n * sizeof(float) * 2.0 * (size - 1) / size;
    if (rank == 0 && dj_ba_json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "ranks", size);
        cJSON_AddNumberToObject(o, "bytes", (double)n * sizeof(float));
        cJSON_AddNumberToObject(o, "bucket_bytes", (double)bucket * sizeof(float));
        cJSON_AddNumberToObject(o, "iters", (double)dj_ba_iters);
        const char *names[3] = {"mpi", "dojo", "bucketed"};
        for (int w = 0; w < ways; w++) {
            cJSON *x = cJSON_AddObjectToObject(o, names[w]);
            cJSON_AddNumberToObject(x, "seconds", secs[w]);
            cJSON_AddNumberToObject(x, "bus_gb_per_s", bus / secs[w] / 1e9);
        }
        if (ways)
            cJSON_AddNumberToObject(o, "bucketed_over_mpi", secs[0] / secs[2]);
        char *text = cJSON_PrintUnformatted(o);
        printf("%s\n", text);
        free(text);
        cJSON_Delete(o);
    } else if (rank == 0 && ways == 0) {
        printf("all-reduce: 1 rank, nothing to exchange; run it under mpirun -np N to measure\n");
    } else if (rank == 0) {
        printf("all-reduce of %.1f MB float32 over %d ranks, median of %lld (buckets of %.1f MB):\n",
               (double)n * sizeof(float) / 1e6, size, (long long)dj_ba_iters, (double)bucket * sizeof(float) / 1e6);
        dj_ba_print("mpi", secs[0], bus, 0);
        dj_ba_print("dojo", secs[1], bus, secs[0] / secs[1]);
        dj_ba_print("bucketed", secs[2], bus, secs[0] / secs[2]);
    }
    dj_comm_free(c);
    return DJ_EXIT_OK;
}
