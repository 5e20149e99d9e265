/* cmd_version.c — `dojo version`: what this binary is and what it found. */
#include <stdio.h>
#include <stdlib.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "dojo/cpu.h"
#include "dojo/version.h"

static int dj_version_json_flag;

static const dj_option dj_version_options[] = {
    {"json", DJ_OPT_FLAG, &dj_version_json_flag, NULL, "print one JSON object", 0, 0},
    {NULL, 0, NULL, NULL, NULL, 0, 0},
};

static const dj_cli_spec dj_version_spec = {
    "version", "[--json]",
    "Prints dojo's version, the build type and compiler, the CPU features detected\n"
    "at run time, the kernel family in use, the backends compiled in and the\n"
    "versions of the FFmpeg libraries.",
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
        cJSON_AddStringToObject(o, "ffmpeg", ffmpeg);
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
    printf("backends:  cpu%s%s\n", b->has_cuda ? " cuda" : "", b->has_mpi ? " mpi" : "");
    printf("ffmpeg:    %s\n", ffmpeg);
    return DJ_EXIT_OK;
}
