/* cmd_train.c — `dojo train`: a recipe file plus flag overrides, or, with no
 * arguments at all, the built-in demo (configs/recipes/demo.yaml on a
 * synthetic motion data set generated once into a cache folder). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libavutil/log.h>

#include "cli.h"
#include "dojo/fs.h"
#include "dojo/log.h"
#include "dojo/synth.h"
#include "dojo/train.h"

static const char *o_config, *o_data, *o_val, *o_model, *o_out, *o_set, *o_device;
static int64_t o_epochs = -1, o_batch = -1, o_seed = -1, o_threads = -1, o_workers = -1, o_frames = -1, o_size = -1;
static double o_lr = -1;
static int o_resume, o_strict, o_bf16;
static const char *o_conv_algo;
static int o_sync_bn, o_trace; /* scale-out */

static const dj_option dj_train_options_table[] = {
    {"config", DJ_OPT_STRING, &o_config, "FILE", "recipe file (YAML or JSON); flags override its keys", 0, 0},
    {"data", DJ_OPT_STRING, &o_data, "DIR|LIST|INDEX", "training videos (data.train)", 0, 0},
    {"val", DJ_OPT_STRING, &o_val, "DIR|LIST|INDEX", "validation videos (data.val)", 0, 0},
    {"model", DJ_OPT_STRING, &o_model, "NAME|FILE", "model name (configs/models) or model file (model)", 0, 0},
    {"epochs", DJ_OPT_INT, &o_epochs, "N", "epochs (train.epochs)", 1, 1e9},
    {"batch", DJ_OPT_INT, &o_batch, "B", "clips per batch (train.batch)", 1, 4096},
    {"lr", DJ_OPT_DOUBLE, &o_lr, "X", "peak learning rate (optimizer.lr)", 0, 1e6},
    {"seed", DJ_OPT_INT, &o_seed, "S", "seed of the whole run (train.seed)", 0, 9.2e18},
    {"threads", DJ_OPT_INT, &o_threads, "N", "compute threads, 0: one per core (train.threads)", 0, 1024},
    {"workers", DJ_OPT_INT, &o_workers, "N", "decode threads (data.workers)", 1, 64},
    {"frames", DJ_OPT_INT, &o_frames, "T", "frames per clip (data.frames)", 1, 1024},
    {"size", DJ_OPT_INT, &o_size, "S", "crop size in pixels (data.size)", 8, 4096},
    {"out", DJ_OPT_STRING, &o_out, "RUNDIR", "run folder: checkpoints, metrics, report (train.out)", 0, 0},
    {"resume", DJ_OPT_FLAG, &o_resume, NULL, "continue the run in --out from its last checkpoint", 0, 0},
    {"strict", DJ_OPT_FLAG, &o_strict, NULL, "stop at the first unreadable video instead of skipping it", 0, 0},
    {"sync-bn", DJ_OPT_FLAG, &o_sync_bn, NULL, "batch norm statistics over all ranks' clips (train.sync_bn)", 0, 0},
    {"trace", DJ_OPT_FLAG, &o_trace, NULL, "timeline per rank: RUNDIR/trace.rank<R>.json, Chrome trace format (train.trace)",
     0, 0},
    {"device", DJ_OPT_STRING, &o_device, "cpu|cuda[:N]", "where the step runs (default cpu)", 0, 0},
    {"bf16", DJ_OPT_FLAG, &o_bf16, NULL, "mixed precision: bf16 matrix products, float32 sums and master weights (train.bf16)",
     0, 0},
    {"conv-algo", DJ_OPT_STRING, &o_conv_algo, "auto|gemm|winograd",
     "how float32 conv3d computes: auto (Winograd where it pays), gemm or winograd (train.conv_algo)", 0, 0},
    {"set", DJ_OPT_STRING, &o_set, "KEY=VALUE[,...]", "override any recipe key, e.g. optimizer.kind=adamw", 0, 0},
    {NULL, 0, NULL, NULL, NULL, 0, 0},
};

static const dj_cli_spec dj_train_spec = {
    "train", "[--config FILE] [--data DIR|LIST|INDEX] [--val ...] [--model NAME] [--epochs N] [--out RUNDIR] ...",
    "Trains a model on a folder of videos (one sub-folder per class), a list file\n"
    "(path label [start end]) or a dojo index. Validation runs after every epoch;\n"
    "checkpoints, metrics.jsonl, TensorBoard events, summary.json and report.html\n"
    "go to the run folder. Without --config and --data it runs the built-in demo\n"
    "(other flags still apply): a synthetic motion data set generated once into\n"
    "~/.cache/dojo ($DOJO_CACHE), and the recipe configs/recipes/demo.yaml.",
    dj_train_options_table, 0, 0,
};

static void dj_train_reset_flags(void) {
    o_config = o_data = o_val = o_model = o_out = o_set = o_device = NULL;
    o_epochs = o_batch = o_seed = o_threads = o_workers = o_frames = o_size = -1;
    o_lr = -1;
    o_resume = o_strict = o_bf16 = 0;
    o_conv_algo = NULL;
    o_sync_bn = o_trace = 0;
}

static dj_status dj_set_int(dj_config *c, const char *key, int64_t v, const char *flag) {
    char text[32];
    snprintf(text, sizeof text, "%lld", (long long)v);
    return dj_config_set(c, key, text, flag);
}

/* --set a.b=1,c=2 */
static dj_status dj_apply_sets(dj_config *c, const char *sets) {
    char *copy = strdup(sets);
    if (!copy)
        return dj_error_set(DJ_ERR_NOMEM, "--set", "cannot allocate");
    dj_status s = DJ_OK;
    char *save = NULL;
    for (char *item = strtok_r(copy, ",", &save); item && s == DJ_OK; item = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(item, '=');
        if (!eq || eq == item || !eq[1]) {
            s = dj_error_set(DJ_ERR_INVALID, "--set", "'%s' is not KEY=VALUE", item);
            break;
        }
        *eq = '\0';
        s = dj_config_set(c, item, eq + 1, "--set");
    }
    free(copy);
    return s;
}

static dj_status dj_apply_flags(dj_config *c) {
    if (o_data)
        DJ_TRY(dj_config_set(c, "data.train", o_data, "--data"));
    if (o_val)
        DJ_TRY(dj_config_set(c, "data.val", o_val, "--val"));
    if (o_model)
        DJ_TRY(dj_config_set(c, "model", o_model, "--model"));
    if (o_out)
        DJ_TRY(dj_config_set(c, "train.out", o_out, "--out"));
    if (o_epochs >= 0)
        DJ_TRY(dj_set_int(c, "train.epochs", o_epochs, "--epochs"));
    if (o_batch >= 0)
        DJ_TRY(dj_set_int(c, "train.batch", o_batch, "--batch"));
    if (o_seed >= 0)
        DJ_TRY(dj_set_int(c, "train.seed", o_seed, "--seed"));
    if (o_threads >= 0)
        DJ_TRY(dj_set_int(c, "train.threads", o_threads, "--threads"));
    if (o_workers >= 0)
        DJ_TRY(dj_set_int(c, "data.workers", o_workers, "--workers"));
    if (o_frames >= 0)
        DJ_TRY(dj_set_int(c, "data.frames", o_frames, "--frames"));
    if (o_size >= 0)
        DJ_TRY(dj_set_int(c, "data.size", o_size, "--size"));
    if (o_lr >= 0) {
        char text[64];
        snprintf(text, sizeof text, "%.17g", o_lr);
        DJ_TRY(dj_config_set(c, "optimizer.lr", text, "--lr"));
    }
    if (o_strict)
        DJ_TRY(dj_config_set(c, "data.strict", "true", "--strict"));
    if (o_sync_bn)
        DJ_TRY(dj_config_set(c, "train.sync_bn", "true", "--sync-bn"));
    if (o_trace)
        DJ_TRY(dj_config_set(c, "train.trace", "true", "--trace"));
    if (o_bf16)
        DJ_TRY(dj_config_set(c, "train.bf16", "true", "--bf16"));
    if (o_conv_algo)
        DJ_TRY(dj_config_set(c, "train.conv_algo", o_conv_algo, "--conv-algo"));
    if (o_set)
        DJ_TRY(dj_apply_sets(c, o_set));
    return DJ_OK;
}

/* ---- the demo ---- */

static dj_status dj_cache_dir(char *buf, size_t size) {
    const char *env = getenv("DOJO_CACHE");
    const char *xdg = getenv("XDG_CACHE_HOME");
    const char *home = getenv("HOME");
    if (env && env[0])
        snprintf(buf, size, "%s", env);
    else if (xdg && xdg[0])
        snprintf(buf, size, "%s/dojo", xdg);
    else if (home && home[0])
        snprintf(buf, size, "%s/.cache/dojo", home);
    else
        return dj_error_set(DJ_ERR_INVALID, "DOJO_CACHE", "no cache folder: set DOJO_CACHE or HOME");
    return dj_fs_mkdirs(buf);
}

/* Generates the demo data set once (a marker file says it is complete). */
static dj_status dj_demo_data(dj_config *c, char *train, char *val, size_t size) {
    int64_t classes = 8, per_class = 60, val_per_class = 15, frames = 32, px = 112, seed = 0;
    DJ_TRY(dj_config_get_int(c, "demo.classes", &classes));
    DJ_TRY(dj_config_get_int(c, "demo.per_class", &per_class));
    DJ_TRY(dj_config_get_int(c, "demo.val_per_class", &val_per_class));
    DJ_TRY(dj_config_get_int(c, "demo.frames", &frames));
    DJ_TRY(dj_config_get_int(c, "demo.size", &px));
    DJ_TRY(dj_config_get_int(c, "demo.seed", &seed));
    if (classes < 2 || classes > 8 || per_class < 1 || per_class > 100000 || val_per_class < 1 ||
        val_per_class > 100000 || frames < 2 || frames > 10000 || px < 16 || px > 4096 || seed < 0)
        return dj_error_set(DJ_ERR_INVALID, "demo", "demo data: classes 2-8, per_class and val_per_class >= 1, "
                                                   "frames >= 2, size 16-4096, seed >= 0");
    char cache[1024], dir[1400], marker[1500];
    DJ_TRY(dj_cache_dir(cache, sizeof cache));
    /* the scene version in the name: a cache from another generator is not reused */
    snprintf(dir, sizeof dir, "%s/motion%d-c%lld-n%lld-v%lld-f%lld-s%lld-seed%lld", cache, DJ_SYNTH_MOTION_VERSION,
             (long long)classes,
             (long long)per_class, (long long)val_per_class, (long long)frames, (long long)px, (long long)seed);
    snprintf(marker, sizeof marker, "%s/.complete", dir);
    struct stat st;
    if (stat(marker, &st) != 0) {
        dj_log_info("demo: generating the synthetic motion data set into %s", dir);
        dj_synth_motion_options o;
        dj_synth_motion_options_default(&o);
        o.out_dir = dir;
        o.classes = (int)classes;
        o.per_class = (int)per_class;
        o.val_per_class = (int)val_per_class;
        o.frames = (int)frames;
        o.width = o.height = (int)px;
        o.seed = (uint64_t)seed;
        o.progress = dj_log_get_level() >= DJ_LOG_INFO;
        /* the encoder's own statistics, one block per clip: errors only, unless --verbose */
        av_log_set_level(dj_log_get_level() >= DJ_LOG_DEBUG ? AV_LOG_INFO : AV_LOG_ERROR);
        DJ_TRY(dj_synth_motion_generate(&o));
        FILE *f = fopen(marker, "w");
        if (!f || fclose(f) != 0)
            return dj_error_set(DJ_ERR_IO, marker, "cannot write the cache marker");
    } else {
        dj_log_info("demo: using the synthetic data set in %s", dir);
    }
    snprintf(train, size, "%s/train", dir);
    snprintf(val, size, "%s/val", dir);
    return DJ_OK;
}

static dj_status dj_find_recipe(const char *name, char *path, size_t size) {
    /* recipes live beside the model files: reuse the model search, one folder up */
    char model_path[1024];
    DJ_TRY(dj_model_find("r3d_mini", model_path, sizeof model_path));
    char *slash = strrchr(model_path, '/');
    if (slash)
        *slash = '\0';
    snprintf(path, size, "%s/../recipes/%s.yaml", model_path, name);
    struct stat st;
    if (stat(path, &st) != 0)
        return dj_error_set(DJ_ERR_NOT_FOUND, path, "recipe not found");
    return DJ_OK;
}

int dj_cmd_train(int argc, char **argv) {
    int np = 0;
    dj_train_reset_flags();
    int rc = dj_cli_parse(&dj_train_spec, argc, argv, &np);
    if (rc >= 0)
        return rc;
    dj_device_spec device;
    rc = dj_cli_device("train", o_device, &device);
    if (rc >= 0)
        return rc;
    /* the demo: neither a recipe nor data given; other flags override it */
    const int demo = !o_config && !o_data;
    dj_config *cfg = NULL;
    dj_status s;
    char recipe[1200], train_dir[1600], val_dir[1600], out[256];
    if (demo) {
        s = dj_find_recipe("demo", recipe, sizeof recipe);
        if (s == DJ_OK)
            s = dj_config_load(recipe, &cfg);
        if (s == DJ_OK)
            s = dj_apply_flags(cfg); /* --set demo.per_class=... shapes the data set too */
        if (s == DJ_OK)
            s = dj_demo_data(cfg, train_dir, val_dir, sizeof train_dir);
        if (s == DJ_OK)
            s = dj_config_set(cfg, "data.train", train_dir, "demo");
        if (s == DJ_OK)
            s = dj_config_set(cfg, "data.val", val_dir, "demo");
        if (s == DJ_OK && !o_out) {
            time_t now = time(NULL);
            struct tm tm;
            localtime_r(&now, &tm);
            strftime(out, sizeof out, "runs/demo-%Y%m%d-%H%M%S", &tm);
            s = dj_config_set(cfg, "train.out", out, "demo");
        }
    } else {
        s = o_config ? dj_config_load(o_config, &cfg) : dj_config_create(&cfg);
        if (s == DJ_OK)
            s = dj_apply_flags(cfg);
    }
    dj_train_options o;
    dj_train_defaults(&o);
    if (s == DJ_OK)
        s = dj_train_options_read(cfg, &o);
    if (s != DJ_OK) {
        dj_config_free(cfg);
        return dj_cli_fail();
    }
    o.resume = o_resume;
    dj_train_result res;
    s = dj_train_run(&o, cfg, &res);
    char out_dir[1024];
    snprintf(out_dir, sizeof out_dir, "%s", o.out ? o.out : "");
    int has_val = o.val_data != NULL;
    dj_config_free(cfg); /* o's strings pointed into cfg */
    if (s != DJ_OK)
        return dj_cli_fail();
    if (res.rank != 0)
        return DJ_EXIT_OK; /* rank 0 reports for the job */
    printf("trained %lld epochs (%lld steps) in %.1f s, %.1f clips/s\n", (long long)res.epochs, (long long)res.steps,
           res.wall_s, res.clips_per_s);
    if (has_val)
        printf("validation top-1 %.2f%%, top-5 %.2f%%\n", 100 * res.val_top1, 100 * res.val_top5);
    printf("checkpoint: %s\nmetrics:    %s/metrics.jsonl (TensorBoard: %s/tb)\nsummary:    %s/summary.json\n"
           "report:     %s/report.html\n",
           res.checkpoint, out_dir, out_dir, out_dir, out_dir);
    return DJ_EXIT_OK;
}
