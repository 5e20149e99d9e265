/* checkpoint.c — training checkpoints as safetensors files: save (atomic),
 * load (every name, dtype, shape and metadata number checked before any
 * byte of the graph changes), peek at the metadata, rotate old files.
 * The file layout is described in include/dojo/checkpoint.h. */
#include "dojo/checkpoint.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "dojo/cpu.h"
#include "dojo/log.h"
#include "dojo/model.h"
#include "dojo/safetensors.h"
#include "dojo/threadpool.h"
#include "dojo/version.h"

#define DJ_CKPT_FORMAT "checkpoint"
#define DJ_CKPT_OPTIM "optim/"
enum { DJ_CKPT_NAME_MAX = 1024 };

void dj_checkpoint_state_free(dj_checkpoint_state *st) {
    if (!st)
        return;
    free(st->config_json);
    free(st->model);
    free(st->classes_json);
    st->config_json = st->model = st->classes_json = NULL;
}

void dj_checkpoint_step_name(int64_t step, char *buf, size_t size) {
    snprintf(buf, size, "step-%" PRId64 ".safetensors", step);
}

/* Parameters and buffers are what a checkpoint holds of a graph. */
static int dj_ckpt_saved(const dj_graph *g, int id) {
    dj_tensor_kind k = dj_graph_kind(g, id);
    return k == DJ_KIND_PARAM || k == DJ_KIND_BUFFER;
}

static int dj_ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* ------------------------------------------------------------------ */
/* Save                                                                 */

static dj_status dj_ckpt_meta_i64(dj_st_writer *w, const char *key, int64_t v) {
    char buf[32];
    snprintf(buf, sizeof buf, "%" PRId64, v);
    return dj_safetensors_writer_set_metadata(w, key, buf);
}

static dj_status dj_ckpt_write_meta(dj_st_writer *w, const dj_checkpoint_state *st) {
    char buf[64];
    DJ_TRY(dj_safetensors_writer_set_metadata(w, "dojo.format", DJ_CKPT_FORMAT));
    DJ_TRY(dj_safetensors_writer_set_metadata(w, "dojo.version", dj_build()->version));
    DJ_TRY(dj_ckpt_meta_i64(w, "epoch", st->epoch));
    DJ_TRY(dj_ckpt_meta_i64(w, "step", st->step));
    DJ_TRY(dj_ckpt_meta_i64(w, "batch_in_epoch", st->batch_in_epoch));
    DJ_TRY(dj_ckpt_meta_i64(w, "num_classes", st->num_classes));
    snprintf(buf, sizeof buf, "%" PRIu64, st->seed);
    DJ_TRY(dj_safetensors_writer_set_metadata(w, "seed", buf));
    snprintf(buf, sizeof buf, "%.17g", st->best_metric); /* %.17g: a double read back exactly */
    DJ_TRY(dj_safetensors_writer_set_metadata(w, "best_metric", buf));
    if (st->model)
        DJ_TRY(dj_safetensors_writer_set_metadata(w, "model", st->model));
    if (st->config_json)
        DJ_TRY(dj_safetensors_writer_set_metadata(w, "config", st->config_json));
    if (st->classes_json)
        DJ_TRY(dj_safetensors_writer_set_metadata(w, "classes", st->classes_json));
    return DJ_OK;
}

static dj_status dj_ckpt_write_tensors(dj_st_writer *w, dj_graph *g, dj_optimizer *opt) {
    for (int id = 0; id < dj_graph_num_tensors(g); id++)
        if (dj_ckpt_saved(g, id))
            DJ_TRY(dj_safetensors_writer_add_tensor(w, dj_graph_name(g, id), dj_graph_tensor(g, id), DJ_ST_REFERENCE));
    if (!opt)
        return DJ_OK;
    char name[DJ_CKPT_NAME_MAX];
    for (int i = 0; i < dj_optimizer_num_states(opt); i++) {
        const char *sname = NULL;
        dj_tensor *t = dj_optimizer_state(opt, i, &sname);
        if ((size_t)snprintf(name, sizeof name, DJ_CKPT_OPTIM "%s", sname) >= sizeof name)
            return dj_error_set(DJ_ERR_INVALID, sname, "optimizer state name too long for a checkpoint");
        DJ_TRY(dj_safetensors_writer_add_tensor(w, name, t, DJ_ST_REFERENCE));
    }
    return dj_ckpt_meta_i64(w, "optimizer_steps", dj_optimizer_steps(opt));
}

dj_status dj_checkpoint_save(const char *path, dj_graph *g, dj_optimizer *opt, const dj_checkpoint_state *st) {
    if (!path || !*path || !g || !st)
        return dj_error_set(DJ_ERR_INVALID, path ? path : "checkpoint",
                            "saving a checkpoint needs a path, a graph and a state");
    dj_st_writer *w = NULL;
    DJ_TRY(dj_safetensors_writer_create(&w));
    dj_status s = dj_ckpt_write_meta(w, st);
    if (s == DJ_OK)
        s = dj_ckpt_write_tensors(w, g, opt);
    if (s == DJ_OK)
        s = dj_safetensors_write_atomic(w, path);
    else
        dj_error_prefix("saving checkpoint %s", path);
    dj_safetensors_writer_free(w);
    return s;
}

/* ------------------------------------------------------------------ */
/* Metadata                                                             */

/* Strict decimal: digits only (no sign, space or '+'), no overflow. */
static int dj_parse_u64(const char *s, uint64_t *out) {
    uint64_t v = 0;
    if (!*s)
        return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

static int dj_parse_i64(const char *s, int64_t *out) {
    int neg = *s == '-';
    uint64_t u;
    if (dj_parse_u64(s + neg, &u) != 0 || u > (uint64_t)INT64_MAX + (uint64_t)neg)
        return -1;
    *out = neg ? (int64_t)(0 - u) : (int64_t)u;
    return 0;
}

static dj_status dj_ckpt_missing(const dj_safetensors *f, const char *key) {
    return dj_error_set(DJ_ERR_FORMAT, dj_safetensors_path(f), "checkpoint metadata '%s' is missing", key);
}

static dj_status dj_ckpt_get_i64(const dj_safetensors *f, const char *key, int64_t lo, int64_t *out) {
    const char *v = dj_safetensors_metadata_get(f, key);
    if (!v)
        return dj_ckpt_missing(f, key);
    if (dj_parse_i64(v, out) != 0 || *out < lo)
        return dj_error_set(DJ_ERR_FORMAT, dj_safetensors_path(f),
                            "checkpoint metadata '%s' is '%.40s', not a whole number >= %" PRId64, key, v, lo);
    return DJ_OK;
}

static dj_status dj_ckpt_get_u64(const dj_safetensors *f, const char *key, uint64_t *out) {
    const char *v = dj_safetensors_metadata_get(f, key);
    if (!v)
        return dj_ckpt_missing(f, key);
    if (dj_parse_u64(v, out) != 0)
        return dj_error_set(DJ_ERR_FORMAT, dj_safetensors_path(f),
                            "checkpoint metadata '%s' is '%.40s', not a whole number in [0, 2^64)", key, v);
    return DJ_OK;
}

static dj_status dj_ckpt_get_double(const dj_safetensors *f, const char *key, double *out) {
    const char *v = dj_safetensors_metadata_get(f, key);
    if (!v)
        return dj_ckpt_missing(f, key);
    char *end = NULL;
    errno = 0;
    *out = (*v == '-' || (*v >= '0' && *v <= '9')) ? strtod(v, &end) : NAN;
    if (!end || *end || !isfinite(*out))
        return dj_error_set(DJ_ERR_FORMAT, dj_safetensors_path(f),
                            "checkpoint metadata '%s' is '%.40s', not a finite number", key, v);
    return DJ_OK;
}

/* Copies metadata text `key` (when present) after checking it is JSON of
 * the given cJSON type (0: any text). */
static dj_status dj_ckpt_get_text(const dj_safetensors *f, const char *key, int json_type, char **out) {
    const char *v = dj_safetensors_metadata_get(f, key);
    *out = NULL;
    if (!v)
        return DJ_OK;
    if (json_type) {
        cJSON *j = cJSON_Parse(v);
        int ok = j && (json_type == cJSON_Array ? cJSON_IsArray(j) : cJSON_IsObject(j));
        cJSON_Delete(j);
        if (!ok)
            return dj_error_set(DJ_ERR_FORMAT, dj_safetensors_path(f), "checkpoint metadata '%s' is not a JSON %s",
                                key, json_type == cJSON_Array ? "list" : "object");
    }
    *out = strdup(v);
    if (!*out)
        return dj_error_set(DJ_ERR_NOMEM, dj_safetensors_path(f), "out of memory reading metadata '%s'", key);
    return DJ_OK;
}

/* The classes list must hold num_classes strings. */
static dj_status dj_ckpt_check_classes(const dj_safetensors *f, const dj_checkpoint_state *st) {
    if (!st->classes_json)
        return DJ_OK;
    cJSON *j = cJSON_Parse(st->classes_json);
    int n = cJSON_GetArraySize(j), ok = 1;
    for (cJSON *e = j ? j->child : NULL; e; e = e->next)
        ok &= cJSON_IsString(e);
    cJSON_Delete(j);
    if (!ok || (st->num_classes > 0 && n != st->num_classes))
        return dj_error_set(DJ_ERR_FORMAT, dj_safetensors_path(f),
                            "checkpoint metadata 'classes' must be a list of %" PRId64
                            " class names (strings); it has %d entries", st->num_classes, n);
    return DJ_OK;
}

/* A file without dojo metadata: weights only; classes from fc.weight. */
static void dj_ckpt_plain_state(const dj_safetensors *f, dj_checkpoint_state *st) {
    dj_st_view v;
    if (dj_safetensors_has(f, "fc.weight") && dj_safetensors_find(f, "fc.weight", &v) == DJ_OK && v.ndim == 2)
        st->num_classes = v.shape[0];
}

static dj_status dj_ckpt_dojo_state(const dj_safetensors *f, dj_checkpoint_state *st) {
    int64_t steps;
    DJ_TRY(dj_ckpt_get_i64(f, "epoch", 0, &st->epoch));
    DJ_TRY(dj_ckpt_get_i64(f, "step", 0, &st->step));
    DJ_TRY(dj_ckpt_get_i64(f, "batch_in_epoch", 0, &st->batch_in_epoch));
    DJ_TRY(dj_ckpt_get_i64(f, "num_classes", 0, &st->num_classes));
    DJ_TRY(dj_ckpt_get_u64(f, "seed", &st->seed));
    DJ_TRY(dj_ckpt_get_double(f, "best_metric", &st->best_metric));
    if (dj_safetensors_metadata_get(f, "optimizer_steps"))
        DJ_TRY(dj_ckpt_get_i64(f, "optimizer_steps", 0, &steps));
    DJ_TRY(dj_ckpt_get_text(f, "model", 0, &st->model));
    DJ_TRY(dj_ckpt_get_text(f, "config", cJSON_Object, &st->config_json));
    DJ_TRY(dj_ckpt_get_text(f, "classes", cJSON_Array, &st->classes_json));
    return dj_ckpt_check_classes(f, st);
}

/* Fills st from an open file's metadata; st's strings are freshly
 * allocated (freed again on failure). */
static dj_status dj_ckpt_read_state(const dj_safetensors *f, dj_checkpoint_state *st) {
    memset(st, 0, sizeof *st);
    st->best_metric = -1;
    const char *fmt = dj_safetensors_metadata_get(f, "dojo.format");
    if (!fmt) {
        dj_ckpt_plain_state(f, st);
        return DJ_OK;
    }
    if (strcmp(fmt, DJ_CKPT_FORMAT) != 0)
        return dj_error_set(DJ_ERR_FORMAT, dj_safetensors_path(f),
                            "dojo.format is '%.40s'; this build reads '" DJ_CKPT_FORMAT "' files", fmt);
    dj_status s = dj_ckpt_dojo_state(f, st);
    if (s != DJ_OK)
        dj_checkpoint_state_free(st);
    return s;
}

dj_status dj_checkpoint_peek(const char *path, dj_checkpoint_state *st) {
    if (!path || !st)
        return dj_error_set(DJ_ERR_INVALID, path ? path : "checkpoint", "peek needs a path and a state");
    dj_safetensors *f = NULL;
    DJ_TRY(dj_safetensors_open(path, &f));
    dj_status s = dj_ckpt_read_state(f, st);
    dj_safetensors_close(f);
    return s;
}

/* ------------------------------------------------------------------ */
/* Load                                                                 */

typedef struct dj_ckpt_load {
    const dj_safetensors *f;
    const char *path;
    char note[320]; /* " (the file is a checkpoint of model 'X')" or "" */
} dj_ckpt_load;

/* The file must hold `name` with t's exact shape in a float dtype. */
static dj_status dj_ckpt_check(const dj_ckpt_load *L, const char *name, const dj_tensor *t) {
    char want[96], got[96];
    dj_shape_string(t->ndim, t->shape, want, sizeof want);
    if (t->dtype != DJ_DTYPE_F32)
        return dj_error_set(DJ_ERR_UNSUPPORTED, L->path, "tensor '%s' is %s in the model; checkpoints load float32",
                            name, dj_dtype_name(t->dtype));
    dj_st_view v;
    if (!dj_safetensors_has(L->f, name))
        return dj_error_set(DJ_ERR_INVALID, L->path, "tensor '%s' %s is missing from the checkpoint%s", name, want,
                            L->note);
    DJ_TRY(dj_safetensors_find(L->f, name, &v));
    if (v.dtype != DJ_ST_F32 && v.dtype != DJ_ST_BF16 && v.dtype != DJ_ST_F16 && v.dtype != DJ_ST_F64)
        return dj_error_set(DJ_ERR_FORMAT, L->path, "tensor '%s' has dtype %s; parameters are F32 (or BF16, F16, F64)",
                            name, dj_st_dtype_name(v.dtype));
    int same = v.ndim == t->ndim;
    for (int d = 0; same && d < v.ndim; d++)
        same = v.shape[d] == t->shape[d];
    if (!same)
        return dj_error_set(DJ_ERR_INVALID, L->path, "tensor '%s' has shape %s in the checkpoint but %s in the model%s",
                            name, dj_shape_string(v.ndim, v.shape, got, sizeof got), want, L->note);
    return DJ_OK;
}

/* Index of the optimizer state called `name` (without "optim/"), or -1. */
static int dj_ckpt_find_state(dj_optimizer *opt, const char *name) {
    for (int i = 0; i < dj_optimizer_num_states(opt); i++) {
        const char *sname = NULL;
        dj_optimizer_state(opt, i, &sname);
        if (strcmp(sname, name) == 0)
            return i;
    }
    return -1;
}

/* Every tensor of the file must belong to the graph (or the optimizer). */
static dj_status dj_ckpt_check_extra(const dj_ckpt_load *L, const dj_graph *g, dj_optimizer *opt) {
    const size_t np = strlen(DJ_CKPT_OPTIM);
    for (int i = 0; i < dj_safetensors_count(L->f); i++) {
        dj_st_view v;
        char shape[96];
        DJ_TRY(dj_safetensors_at(L->f, i, &v));
        if (strncmp(v.name, DJ_CKPT_OPTIM, np) == 0) {
            if (opt && dj_ckpt_find_state(opt, v.name + np) < 0)
                return dj_error_set(DJ_ERR_INVALID, L->path,
                                    "optimizer state '%s' in the checkpoint does not belong to this optimizer "
                                    "(saved with another optimizer or model?)", v.name);
            continue;
        }
        int id = dj_graph_find(g, v.name);
        if ((id >= 0 && dj_ckpt_saved(g, id)) || dj_ends_with(v.name, ".num_batches_tracked"))
            continue;
        return dj_error_set(DJ_ERR_INVALID, L->path,
                            "unexpected tensor '%s' %s in the checkpoint: the model has no such parameter or buffer%s",
                            v.name, dj_shape_string(v.ndim, v.shape, shape, sizeof shape), L->note);
    }
    return DJ_OK;
}

static dj_status dj_ckpt_check_optim(const dj_ckpt_load *L, dj_optimizer *opt) {
    if (!dj_safetensors_metadata_get(L->f, "optimizer_steps"))
        return dj_error_set(DJ_ERR_INVALID, L->path,
                            "the checkpoint holds no optimizer state (metadata 'optimizer_steps'), needed to resume");
    char name[DJ_CKPT_NAME_MAX];
    for (int i = 0; i < dj_optimizer_num_states(opt); i++) {
        const char *sname = NULL;
        const dj_tensor *t = dj_optimizer_state(opt, i, &sname);
        snprintf(name, sizeof name, DJ_CKPT_OPTIM "%s", sname);
        DJ_TRY(dj_ckpt_check(L, name, t));
    }
    return DJ_OK;
}

/* Checks everything; changes nothing. */
static dj_status dj_ckpt_validate(const dj_ckpt_load *L, dj_graph *g, dj_optimizer *opt) {
    for (int id = 0; id < dj_graph_num_tensors(g); id++)
        if (dj_ckpt_saved(g, id))
            DJ_TRY(dj_ckpt_check(L, dj_graph_name(g, id), dj_graph_tensor(g, id)));
    if (opt)
        DJ_TRY(dj_ckpt_check_optim(L, opt));
    return dj_ckpt_check_extra(L, g, opt);
}

/* Copies the validated tensors into the graph and optimizer. */
static dj_status dj_ckpt_copy(const dj_ckpt_load *L, dj_graph *g, dj_optimizer *opt) {
    for (int id = 0; id < dj_graph_num_tensors(g); id++) {
        if (!dj_ckpt_saved(g, id))
            continue;
        dj_tensor *t = dj_graph_tensor(g, id);
        DJ_TRY(dj_safetensors_read_f32(L->f, dj_graph_name(g, id), t->ndim, t->shape, t->data));
    }
    if (!opt)
        return DJ_OK;
    char name[DJ_CKPT_NAME_MAX];
    for (int i = 0; i < dj_optimizer_num_states(opt); i++) {
        const char *sname = NULL;
        dj_tensor *t = dj_optimizer_state(opt, i, &sname);
        snprintf(name, sizeof name, DJ_CKPT_OPTIM "%s", sname);
        DJ_TRY(dj_safetensors_read_f32(L->f, name, t->ndim, t->shape, t->data));
    }
    int64_t steps = 0;
    DJ_TRY(dj_ckpt_get_i64(L->f, "optimizer_steps", 0, &steps));
    dj_optimizer_set_steps(opt, steps);
    return DJ_OK;
}

static dj_status dj_ckpt_load_open(dj_ckpt_load *L, dj_graph *g, dj_optimizer *opt, dj_checkpoint_state *out) {
    dj_checkpoint_state st;
    DJ_TRY(dj_ckpt_read_state(L->f, &st)); /* metadata checked even when st is not wanted */
    if (st.model)
        snprintf(L->note, sizeof L->note, " (the file is a checkpoint of model '%.200s')", st.model);
    dj_status s = dj_ckpt_validate(L, g, opt);
    if (s == DJ_OK)
        s = dj_ckpt_copy(L, g, opt);
    if (s == DJ_OK && out)
        *out = st;
    else
        dj_checkpoint_state_free(&st);
    return s;
}

dj_status dj_checkpoint_load(const char *path, dj_graph *g, dj_optimizer *opt, dj_checkpoint_state *st) {
    if (!path || !g)
        return dj_error_set(DJ_ERR_INVALID, path ? path : "checkpoint",
                            "loading a checkpoint needs a path and a graph");
    dj_safetensors *f = NULL;
    DJ_TRY(dj_safetensors_open(path, &f));
    dj_ckpt_load L = {f, path, ""};
    dj_status s = dj_ckpt_load_open(&L, g, opt, st);
    dj_safetensors_close(f);
    return s;
}

/* ------------------------------------------------------------------ */
/* Rotation                                                             */

typedef struct dj_ckpt_file {
    uint64_t step;
    char *name;
} dj_ckpt_file;

/* step from "step-<digits>.safetensors"; -1 for any other name. */
static int dj_ckpt_step_of(const char *name, uint64_t *step) {
    static const char pre[] = "step-", suf[] = ".safetensors";
    size_t n = strlen(name), a = sizeof pre - 1, b = sizeof suf - 1;
    if (n <= a + b || strncmp(name, pre, a) != 0 || strcmp(name + n - b, suf) != 0 || n - a - b > 20)
        return -1;
    char digits[24];
    memcpy(digits, name + a, n - a - b);
    digits[n - a - b] = '\0';
    return dj_parse_u64(digits, step);
}

static int dj_ckpt_file_cmp(const void *pa, const void *pb) {
    const dj_ckpt_file *a = pa, *b = pb;
    if (a->step != b->step)
        return a->step > b->step ? -1 : 1; /* newest first */
    return strcmp(b->name, a->name);
}

/* Lists the step files of dir into *out (newest first). */
static dj_status dj_ckpt_list(const char *dir, dj_ckpt_file **out, int *count) {
    DIR *d = opendir(dir);
    if (!d)
        return dj_error_set(DJ_ERR_IO, dir, "cannot list checkpoints: %s", strerror(errno));
    dj_ckpt_file *files = NULL;
    int n = 0, cap = 0;
    dj_status s = DJ_OK;
    for (struct dirent *e; s == DJ_OK && (e = readdir(d)) != NULL;) {
        uint64_t step;
        if (dj_ckpt_step_of(e->d_name, &step) != 0)
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            dj_ckpt_file *grown = realloc(files, (size_t)cap * sizeof *files);
            if (!grown) {
                s = dj_error_set(DJ_ERR_NOMEM, dir, "out of memory listing checkpoints");
                break;
            }
            files = grown;
        }
        files[n].step = step;
        files[n].name = strdup(e->d_name);
        if (!files[n].name)
            s = dj_error_set(DJ_ERR_NOMEM, dir, "out of memory listing checkpoints");
        else
            n++;
    }
    closedir(d);
    if (n > 1)
        qsort(files, (size_t)n, sizeof *files, dj_ckpt_file_cmp);
    *out = files;
    *count = n;
    return s;
}

/* The writer's pid from "<x>.safetensors.tmp.<pid>.<n>" (what
 * dj_safetensors_write_atomic names its temporary); 0 for other names. */
static long dj_ckpt_temp_owner(const char *name) {
    const char *t = strstr(name, ".safetensors.tmp.");
    if (!t)
        return 0;
    char *end;
    long pid = strtol(t + strlen(".safetensors.tmp."), &end, 10);
    if (pid <= 0 || *end != '.' || !end[1] || strspn(end + 1, "0123456789") != strlen(end + 1))
        return 0;
    return pid;
}

/* Deletes temporaries whose writer is gone: a run killed while writing a
 * checkpoint leaves one (as large as a checkpoint) each time. A live
 * writer's file (this process or another) is left alone. */
static dj_status dj_ckpt_remove_stale_temps(const char *dir) {
    DIR *d = opendir(dir);
    if (!d)
        return dj_error_set(DJ_ERR_IO, dir, "cannot list checkpoints: %s", strerror(errno));
    dj_status s = DJ_OK;
    char path[4096];
    for (struct dirent *e; s == DJ_OK && (e = readdir(d)) != NULL;) {
        long pid = dj_ckpt_temp_owner(e->d_name);
        if (pid == 0 || pid == (long)getpid() || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (unlink(path) != 0 && errno != ENOENT)
            s = dj_error_set(DJ_ERR_IO, path, "cannot delete a crashed writer's temporary: %s", strerror(errno));
        else
            dj_log_info("removed %s, left by a writer that crashed (process %ld)", path, pid);
    }
    closedir(d);
    return s;
}

dj_status dj_checkpoint_rotate(const char *dir, int keep) {
    if (!dir)
        return dj_error_set(DJ_ERR_INVALID, "checkpoint", "rotate needs a folder");
    DJ_TRY(dj_ckpt_remove_stale_temps(dir));
    if (keep <= 0)
        return DJ_OK;
    dj_ckpt_file *files = NULL;
    int n = 0;
    dj_status s = dj_ckpt_list(dir, &files, &n);
    char path[4096];
    for (int i = keep; s == DJ_OK && i < n; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i].name);
        if (unlink(path) != 0 && errno != ENOENT)
            s = dj_error_set(DJ_ERR_IO, path, "cannot delete an old checkpoint: %s", strerror(errno));
    }
    for (int i = 0; i < n; i++)
        free(files[i].name);
    free(files);
    return s;
}

/* ------------------------------------------------------------------ */
/* Inference from files (`dojo forward`)                                */

/* The shape (N,3,T,H,W) of the float tensor "input" of an open file. */
static dj_status dj_ckpt_input_shape(const dj_safetensors *in, int64_t shape[5]) {
    dj_st_view v;
    DJ_TRY(dj_safetensors_find(in, "input", &v));
    char got[96];
    if (v.dtype != DJ_ST_F32 && v.dtype != DJ_ST_BF16 && v.dtype != DJ_ST_F16 && v.dtype != DJ_ST_F64)
        return dj_error_set(DJ_ERR_INVALID, dj_safetensors_path(in), "tensor 'input' has dtype %s; expected F32",
                            dj_st_dtype_name(v.dtype));
    int ok = v.ndim == 5 && v.shape[1] == 3;
    for (int d = 0; ok && d < 5; d++)
        ok = v.shape[d] >= 1;
    if (!ok)
        return dj_error_set(DJ_ERR_INVALID, dj_safetensors_path(in),
                            "tensor 'input' has shape %s; expected (N,3,T,H,W) with every size >= 1",
                            dj_shape_string(v.ndim, v.shape, got, sizeof got));
    memcpy(shape, v.shape, 5 * sizeof shape[0]);
    return DJ_OK;
}

/* Builds the model named `model` for the input shape and K classes. */
static dj_status dj_ckpt_build(const char *model, const int64_t shape[5], int64_t classes, int threads,
                               dj_model **out) {
    char path[4096];
    dj_config *cfg = NULL;
    DJ_TRY(dj_model_find(model, path, sizeof path));
    DJ_TRY(dj_config_load(path, &cfg));
    dj_model_shape ms = {shape[0], shape[2], shape[3], shape[4], classes, 0.0f, threads};
    dj_status s = dj_model_create(cfg, &ms, out);
    dj_config_free(cfg);
    if (s == DJ_OK)
        s = dj_graph_plan(dj_model_graph(*out), 0);
    if (s != DJ_OK) {
        dj_model_free(*out);
        *out = NULL;
    }
    return s;
}

/* Runs the planned model once in eval mode on `threads` threads. */
static dj_status dj_ckpt_run(dj_model *m, int threads) {
    dj_graph *g = dj_model_graph(m);
    dj_tensor *labels = dj_graph_tensor(g, dj_model_labels(m));
    memset(labels->data, 0, dj_tensor_nbytes(labels)); /* the loss node reads them; class 0 is valid */
    size_t scratch_bytes = dj_graph_scratch_bytes(g);
    void *scratch = scratch_bytes ? malloc(scratch_bytes) : NULL;
    if (scratch_bytes && !scratch)
        return dj_error_set(DJ_ERR_NOMEM, "forward", "out of memory for %zu bytes of scratch", scratch_bytes);
    dj_threadpool *pool = NULL;
    dj_status s = dj_threadpool_create(threads, &pool);
    if (s == DJ_OK) {
        dj_exec ex = {pool, scratch, scratch_bytes};
        s = dj_graph_forward(g, &ex, 0);
    }
    dj_threadpool_free(pool);
    free(scratch);
    return s;
}

static dj_status dj_ckpt_write_logits(dj_model *m, const char *model, const char *weights, const char *output) {
    dj_graph *g = dj_model_graph(m);
    const dj_tensor *logits = dj_graph_tensor(g, dj_model_logits(m));
    dj_st_writer *w = NULL;
    DJ_TRY(dj_safetensors_writer_create(&w));
    dj_status s = dj_safetensors_writer_add_tensor(w, "logits", logits, DJ_ST_REFERENCE);
    if (s == DJ_OK)
        s = dj_safetensors_writer_set_metadata(w, "model", model);
    if (s == DJ_OK)
        s = dj_safetensors_writer_set_metadata(w, "weights", weights);
    if (s == DJ_OK)
        s = dj_safetensors_write_atomic(w, output);
    dj_safetensors_writer_free(w);
    return s;
}

static dj_status dj_ckpt_forward_with(const char *model, const char *weights, const dj_safetensors *in,
                                      const char *output, int threads, const dj_checkpoint_state *st) {
    int64_t shape[5];
    DJ_TRY(dj_ckpt_input_shape(in, shape));
    if (!model)
        model = st->model;
    if (!model)
        return dj_error_set(DJ_ERR_INVALID, weights, "the weights name no model; give one (--model)");
    dj_model *m = NULL;
    DJ_TRY(dj_ckpt_build(model, shape, st->num_classes, threads, &m));
    dj_graph *g = dj_model_graph(m);
    dj_tensor *x = dj_graph_tensor(g, dj_model_input(m));
    dj_status s = dj_checkpoint_load(weights, g, NULL, NULL);
    if (s == DJ_OK)
        s = dj_safetensors_read_f32(in, "input", 5, shape, x->data);
    if (s == DJ_OK)
        s = dj_ckpt_run(m, threads);
    if (s == DJ_OK)
        s = dj_ckpt_write_logits(m, model, weights, output);
    dj_model_free(m);
    return s;
}

dj_status dj_checkpoint_forward(const char *model, const char *weights_path, const char *input_path,
                                const char *output_path, int threads) {
    if (!weights_path || !input_path || !output_path)
        return dj_error_set(DJ_ERR_INVALID, "forward", "forward needs weights, input and output paths");
    if (threads <= 0)
        threads = dj_cpu_detect()->logical_cores > 0 ? dj_cpu_detect()->logical_cores : 1;
    dj_checkpoint_state st;
    DJ_TRY(dj_checkpoint_peek(weights_path, &st));
    dj_safetensors *in = NULL;
    dj_status s = dj_safetensors_open(input_path, &in);
    if (s == DJ_OK)
        s = dj_ckpt_forward_with(model, weights_path, in, output_path, threads, &st);
    dj_safetensors_close(in);
    dj_checkpoint_state_free(&st);
    return s;
}
