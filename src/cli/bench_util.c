/* bench_util.c — small pieces every `dojo bench` kind shares: the machine's
 * load average (printed beside each figure, since other work on a shared
 * machine lowers it), medians of timings, and the NxCxTxHxW input shape. */
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"

double dj_bench_loadavg(void) {
    FILE *f = fopen("/proc/loadavg", "r");
    double l = -1.0;
    if (f) {
        if (fscanf(f, "%lf", &l) != 1)
            l = -1.0;
        fclose(f);
    }
    return l;
}

int dj_bench_cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double dj_bench_median(double *v, int64_t n) {
    qsort(v, (size_t)n, sizeof *v, dj_bench_cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

int dj_bench_parse_input(const char *text, int64_t dims[5]) {
    const char *p = text;
    for (int i = 0; i < 5; i++) {
        char *end = NULL;
        long long v = strtoll(p, &end, 10);
        if (end == p || v <= 0 || v > 1000000 || (i < 4 && *end != 'x') || (i == 4 && *end != '\0'))
            return -1;
        dims[i] = v;
        p = end + 1;
    }
    return dims[1] == 3 ? 0 : -1;
}
