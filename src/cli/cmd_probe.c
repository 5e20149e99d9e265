/* cmd_probe.c — `dojo probe FILE... [--json]`: what each video is (codec,
 * size, rotation, rates, exact frame and keyframe counts). A file that cannot
 * be probed gives an error line and makes the exit status 1; the others are
 * still reported. */
#include <stdio.h>
#include <stdlib.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "dojo/video.h"

static int dj_probe_json_flag;

static const dj_option dj_probe_options[] = {
    {"json", DJ_OPT_FLAG, &dj_probe_json_flag, NULL, "one JSON object per line per file", 0, 0},
    {NULL, 0, NULL, NULL, NULL, 0, 0},
};

static const dj_cli_spec dj_probe_spec = {
    "probe", "FILE... [--json]",
    "Prints, per video file: container, codec and profile, pixel format, size,\n"
    "rotation, average and real frame rate, variable-frame-rate flag, duration,\n"
    "exact frame count (counted packet by packet, no decoding), keyframes and\n"
    "mean GOP length, bit rate. With --json each line is one object with at\n"
    "least path, codec, width, height, fps, frames, keyframes, duration_s, or\n"
    "path and error.",
    dj_probe_options, 1, -1,
};

static void dj_probe_print_json(cJSON *o) {
    char *text = cJSON_PrintUnformatted(o);
    if (text)
        printf("%s\n", text);
    else
        fprintf(stderr, "dojo: error: out of memory (dojo probe --json)\n");
    free(text);
    cJSON_Delete(o);
}

static void dj_probe_json(const char *path, const dj_video_info *in) {
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return;
    cJSON_AddStringToObject(o, "path", path);
    cJSON_AddStringToObject(o, "container", in->container);
    cJSON_AddStringToObject(o, "codec", in->codec);
    cJSON_AddStringToObject(o, "profile", in->profile);
    cJSON_AddStringToObject(o, "pix_fmt", in->pix_fmt);
    cJSON_AddNumberToObject(o, "width", in->width);
    cJSON_AddNumberToObject(o, "height", in->height);
    cJSON_AddNumberToObject(o, "rotation", in->rotation);
    cJSON_AddBoolToObject(o, "mirrored", in->mirrored);
    cJSON_AddNumberToObject(o, "fps", in->fps_avg);
    cJSON_AddNumberToObject(o, "fps_real", in->fps_real);
    cJSON_AddBoolToObject(o, "vfr", in->vfr);
    cJSON_AddNumberToObject(o, "duration_s", in->duration_s);
    cJSON_AddNumberToObject(o, "frames", (double)in->frames);
    cJSON_AddNumberToObject(o, "keyframes", (double)in->keyframes);
    cJSON_AddNumberToObject(o, "mean_gop", in->mean_gop);
    cJSON_AddNumberToObject(o, "bit_rate", (double)in->bit_rate);
    cJSON_AddNumberToObject(o, "stream", in->stream_index);
    dj_probe_print_json(o);
}

static void dj_probe_text(const char *path, const dj_video_info *in) {
    printf("%s: %s, %s%s%s%s, %s, %dx%d", path, in->container, in->codec, in->profile[0] ? " (" : "", in->profile,
           in->profile[0] ? ")" : "", in->pix_fmt, in->width, in->height);
    if (in->rotation)
        printf(" rotated %d", in->rotation);
    if (in->mirrored)
        printf(" mirrored");
    printf(", %.3f fps (real %.3f, %s), %.3f s, %lld frames, %lld keyframes (mean GOP %.1f), %lld kb/s\n",
           in->fps_avg, in->fps_real, in->vfr ? "variable" : "constant", in->duration_s, (long long)in->frames,
           (long long)in->keyframes, in->mean_gop, (long long)(in->bit_rate / 1000));
}

int dj_cmd_probe(int argc, char **argv) {
    int np = 0;
    dj_probe_json_flag = 0;
    int rc = dj_cli_parse(&dj_probe_spec, argc, argv, &np);
    if (rc >= 0)
        return rc;
    int failed = 0;
    for (int i = 1; i <= np; i++) {
        dj_video_info info;
        if (dj_video_probe(argv[i], &info) == DJ_OK) {
            if (dj_probe_json_flag)
                dj_probe_json(argv[i], &info);
            else
                dj_probe_text(argv[i], &info);
            fflush(stdout);
            continue;
        }
        failed = 1;
        if (dj_probe_json_flag) {
            cJSON *o = cJSON_CreateObject();
            if (o) {
                cJSON_AddStringToObject(o, "path", argv[i]);
                cJSON_AddStringToObject(o, "error", dj_error_message());
                dj_probe_print_json(o);
            }
        }
        dj_cli_fail();
        fflush(stdout);
    }
    return failed ? DJ_EXIT_FAIL : DJ_EXIT_OK;
}
