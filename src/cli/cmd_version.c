/* cmd_version.c — `dojo version`: what this binary is and what it found. */
#include <stdio.h>
#include <stdlib.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "dojo/cpu.h"
#include "dojo/device.h"
#include "dojo/version.h"

static int dj_version_json_flag;

static const dj_option dj_version_options[] = {
    {"json", DJ_OPT_FLAG, &dj_version_json_flag, NULL, "print one JSON object", 0, 0},
    {NULL, 0, NULL, NULL, NULL, 0, 0},
};

/* The GPUs, or why there are none (the library's message), into *why. */
static int dj_version_gpus(dj_gpu_info *gpus, int max, char *why, size_t why_size) {
    int n = 0;
    why[0] = 0;
    if (dj_cuda_device_count(&n) != DJ_OK) {
        snprintf(why, why_size, "%s", dj_error_message());
        return 0;
    }
    int k = 0;
    for (int i = 0; i < n && k < max; i++)
        if (dj_cuda_device_info(i, &gpus[k]) == DJ_OK)
            k++;
    return k;
}

static const char *dj_lib_v(int v, char *buf, size_t size) {
    return v ? dj_lib_version_string(v, buf, size) : "none";
}

static void dj_version_cuda_text(void) {
    dj_cuda_versions v;
    if (dj_cuda_versions_get(&v) != DJ_OK) {
        printf("cuda:      not built (make found no nvcc and cuDNN, or CUDA=0)\n");
        return;
    }
    char rt[16], dr[16], dn[16], lt[16], nc[16];
    printf("cuda:      runtime %s, driver %s, cuDNN %s, cuBLASLt %s, NCCL %s\n",
           dj_cuda_version_string(v.runtime, rt, sizeof rt), v.driver ? dj_cuda_version_string(v.driver, dr, sizeof dr) : "none",
           dj_lib_v(v.cudnn, dn, sizeof dn), dj_lib_v(v.cublaslt, lt, sizeof lt), dj_lib_v(v.nccl, nc, sizeof nc));
    dj_gpu_info g[16];
    char why[512];
    int n = dj_version_gpus(g, 16, why, sizeof why);
    if (n == 0)
        printf("gpu:       no GPU: %s\n", why);
    for (int i = 0; i < n; i++)
        printf("gpu %d:     %s, compute %d.%d, %d SMs, %.1f GiB\n", g[i].index, g[i].name, g[i].cc_major, g[i].cc_minor,
               g[i].sm_count, (double)g[i].total_bytes / (1024.0 * 1024.0 * 1024.0));
}

static void dj_version_cuda_json(cJSON *o) {
    cJSON *c = cJSON_AddObjectToObject(o, "cuda");
    dj_cuda_versions v;
    int built = dj_cuda_versions_get(&v) == DJ_OK;
    cJSON_AddBoolToObject(c, "built", built);
    if (!built)
        return;
    char b[16];
    cJSON_AddStringToObject(c, "runtime", dj_cuda_version_string(v.runtime, b, sizeof b));
    cJSON_AddStringToObject(c, "driver", v.driver ? dj_cuda_version_string(v.driver, b, sizeof b) : "none");
    cJSON_AddStringToObject(c, "cudnn", dj_lib_v(v.cudnn, b, sizeof b));
    cJSON_AddStringToObject(c, "cublaslt", dj_lib_v(v.cublaslt, b, sizeof b));
    cJSON_AddStringToObject(c, "nccl", dj_lib_v(v.nccl, b, sizeof b));
    dj_gpu_info g[16];
    char why[512];
    int n = dj_version_gpus(g, 16, why, sizeof why);
    cJSON *gpus = cJSON_AddArrayToObject(c, "gpus");
    for (int i = 0; i < n; i++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, "index", g[i].index);
        cJSON_AddStringToObject(e, "name", g[i].name);
        cJSON_AddNumberToObject(e, "memory_bytes", (double)g[i].total_bytes);
        snprintf(b, sizeof b, "%d.%d", g[i].cc_major, g[i].cc_minor);
        cJSON_AddStringToObject(e, "compute_capability", b);
        cJSON_AddNumberToObject(e, "sms", g[i].sm_count);
        cJSON_AddItemToArray(gpus, e);
    }
    if (n == 0)
        cJSON_AddStringToObject(c, "no_gpu", why);
}

static const dj_cli_spec dj_version_spec = {
    "version", "[--json]",
    "Prints dojo's version, the build type and compiler, the CPU features detected\n"
    "at run time, the kernel family in use, the backends compiled in, the\n"
    "versions of the FFmpeg libraries and, when CUDA is built in, the CUDA\n"
    "runtime, driver, cuDNN, cuBLASLt and NCCL versions and the GPUs found\n"
    "(or why none was).",
    dj_version_options, 0, 0,
};

int dj_cmd_version(int argc, char **argv) {
    int np = 0;
    dj_version_json_flag = 0;
    int rc = dj_cli_parse(&dj_version_spec, argc, argv, &np);
    if (rc >= 0)
        return rc;
    const dj_build_info *b = dj_build();
    const dj_cpu_features *f = dj_cpu_detect();
    char features[256], ffmpeg[256];
    dj_cpu_features_string(f, features, sizeof features);
    dj_ffmpeg_versions(ffmpeg, sizeof ffmpeg);
    const char *isa = dj_cpu_isa_name(dj_cpu_best_isa());
    if (dj_version_json_flag) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "version", b->version);
        cJSON_AddStringToObject(o, "build_type", b->build_type);
        cJSON_AddStringToObject(o, "compiler", b->compiler);
        cJSON_AddStringToObject(o, "target", b->target);
        cJSON_AddStringToObject(o, "cpu", f->brand[0] ? f->brand : f->vendor);
        cJSON_AddNumberToObject(o, "cores", f->logical_cores);
        cJSON_AddStringToObject(o, "cpu_features", features);
        cJSON_AddStringToObject(o, "kernels", isa);
        cJSON *backends = cJSON_AddObjectToObject(o, "backends");
        cJSON_AddBoolToObject(backends, "cpu", 1);
        cJSON_AddBoolToObject(backends, "cuda", b->has_cuda);
        cJSON_AddBoolToObject(backends, "mpi", b->has_mpi);
        cJSON_AddBoolToObject(backends, "nccl", dj_nccl_built());
        cJSON_AddStringToObject(o, "ffmpeg", ffmpeg);
        dj_version_cuda_json(o);
        char *text = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
        if (!text) {
            fprintf(stderr, "dojo: error: out of memory (dojo version --json)\n");
            return DJ_EXIT_FAIL;
        }
        printf("%s\n", text);
        free(text);
        return DJ_EXIT_OK;
    }
    printf("dojo %s\n", b->version);
    printf("build:     %s, %s, %s\n", b->build_type, b->compiler, b->target);
    printf("cpu:       %s (%d logical cores)\n", f->brand[0] ? f->brand : f->vendor, f->logical_cores);
    printf("features:  %s\n", features);
    printf("kernels:   %s\n", isa);
    printf("backends:  cpu%s%s%s\n", b->has_cuda ? " cuda" : "", dj_nccl_built() ? " nccl" : "", b->has_mpi ? " mpi" : "");
    printf("ffmpeg:    %s\n", ffmpeg);
    dj_version_cuda_text();
    return DJ_EXIT_OK;
}
