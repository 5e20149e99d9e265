/* dataset.c — reads folder-per-class trees, list files and Kinetics CSVs
 * into one sorted table of (path, label, frame range) entries. */
#define _GNU_SOURCE
#include "dojo/dataset.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "dojo/log.h"
#include "dojo/sampling.h"

enum { DJ_DATASET_MAX_LABEL = 1000000 }; /* bounds the class table of a list file */

struct dj_dataset {
    dj_dataset_format format;
    dj_dataset_entry *entries; /* [n] sorted */
    int64_t n, cap;
    char **classes; /* [num_classes] sorted names (or decimal labels for lists) */
    int num_classes;
    int warnings;
};

/* ---- small helpers ---------------------------------------------------- */

static char *dj_strdup_or_null(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

static char *dj_path_join(const char *dir, const char *name) {
    if (name[0] == '/' || !dir || !dir[0])
        return dj_strdup_or_null(name);
    char *p = NULL;
    if (asprintf(&p, "%s/%s", dir, name) < 0)
        return NULL;
    return p;
}

/* The folder part of a file path ("." when there is none); malloc'ed. */
static char *dj_path_dirname(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash)
        return dj_strdup_or_null(".");
    if (slash == path)
        return dj_strdup_or_null("/");
    size_t n = (size_t)(slash - path);
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, path, n);
        d[n] = '\0';
    }
    return d;
}

static int dj_is_regular_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int dj_has_video_extension(const char *name) {
    static const char *const exts[] = {"mp4", "mkv", "webm", "avi", "mov", "m4v", "mpg",  "mpeg", "ts",
                                       "flv", "3gp", "ogv",  "wmv", "m2ts", "mts", "mxf", "y4m", "ps", "vob", "m2v"};
    const char *dot = strrchr(name, '.');
    if (!dot || dot == name)
        return 0;
    for (size_t i = 0; i < sizeof exts / sizeof exts[0]; i++)
        if (strcasecmp(dot + 1, exts[i]) == 0)
            return 1;
    return 0;
}

static int dj_cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int dj_cmp_entry(const void *a, const void *b) {
    const dj_dataset_entry *x = a, *y = b;
    int c = strcmp(x->path, y->path);
    if (c)
        return c;
    if (x->start_frame != y->start_frame)
        return x->start_frame < y->start_frame ? -1 : 1;
    if (x->end_frame != y->end_frame)
        return x->end_frame < y->end_frame ? -1 : 1;
    return (x->label > y->label) - (x->label < y->label);
}

/* Appends an entry; takes ownership of path (freed on failure). */
static dj_status dj_dataset_push(dj_dataset *ds, char *path, int label, int64_t start, int64_t end) {
    if (!path)
        return dj_error_set(DJ_ERR_NOMEM, "dataset", "out of memory");
    if (ds->n == ds->cap) {
        int64_t cap = ds->cap ? ds->cap * 2 : 64;
        dj_dataset_entry *e = realloc(ds->entries, (size_t)cap * sizeof *e);
        if (!e) {
            free(path);
            return dj_error_set(DJ_ERR_NOMEM, "dataset", "out of memory");
        }
        ds->entries = e;
        ds->cap = cap;
    }
    ds->entries[ds->n++] = (dj_dataset_entry){path, label, start, end};
    return DJ_OK;
}

/* A growable array of malloc'ed strings. */
typedef struct dj_strv {
    char **v;
    int n, cap;
} dj_strv;

static dj_status dj_strv_push(dj_strv *s, const char *str) {
    if (s->n == s->cap) {
        int cap = s->cap ? s->cap * 2 : 16;
        char **v = realloc(s->v, (size_t)cap * sizeof *v);
        if (!v)
            return dj_error_set(DJ_ERR_NOMEM, "dataset", "out of memory");
        s->v = v;
        s->cap = cap;
    }
    if (!(s->v[s->n] = dj_strdup_or_null(str)))
        return dj_error_set(DJ_ERR_NOMEM, "dataset", "out of memory");
    s->n++;
    return DJ_OK;
}

static void dj_strv_free(dj_strv *s) {
    for (int i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
    *s = (dj_strv){0};
}

/* Sorts and removes duplicates in place. */
static void dj_strv_sort_unique(dj_strv *s) {
    if (s->n > 1)
        qsort(s->v, (size_t)s->n, sizeof *s->v, dj_cmp_str);
    int k = 0;
    for (int i = 0; i < s->n; i++) {
        if (k > 0 && strcmp(s->v[k - 1], s->v[i]) == 0)
            free(s->v[i]);
        else
            s->v[k++] = s->v[i];
    }
    s->n = k;
}

/* Sorted names in folder `dir`: its sub-folders into dirs and its video files
 * into files (either may be NULL), hidden ones left out. */
static dj_status dj_list_dir(const char *dir, dj_strv *dirs, dj_strv *files) {
    DIR *d = opendir(dir);
    if (!d)
        return dj_error_set(DJ_ERR_IO, dir, "cannot open folder: %s", strerror(errno));
    struct dirent *de;
    dj_status st = DJ_OK;
    while (st == DJ_OK && (de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue; /* hidden, "." and ".." */
        char *full = dj_path_join(dir, de->d_name);
        if (!full) {
            st = dj_error_set(DJ_ERR_NOMEM, dir, "out of memory");
            break;
        }
        struct stat sb;
        int ok = stat(full, &sb) == 0;
        free(full);
        if (!ok)
            continue; /* a dangling link: not a video */
        if (dirs && S_ISDIR(sb.st_mode))
            st = dj_strv_push(dirs, de->d_name);
        else if (files && S_ISREG(sb.st_mode) && dj_has_video_extension(de->d_name))
            st = dj_strv_push(files, de->d_name);
    }
    closedir(d);
    if (st == DJ_OK && dirs && dirs->n > 1)
        qsort(dirs->v, (size_t)dirs->n, sizeof *dirs->v, dj_cmp_str);
    if (st == DJ_OK && files && files->n > 1)
        qsort(files->v, (size_t)files->n, sizeof *files->v, dj_cmp_str);
    return st;
}

/* ---- FOLDERS ------------------------------------------------------------ */

enum { DJ_DATASET_MAX_DEPTH = 32 }; /* folders below a class folder (also stops link loops) */

/* Adds the videos under `dir` (recursively) with `label`; *found counts them. */
static dj_status dj_dataset_add_tree(dj_dataset *ds, const char *dir, int label, int depth, int64_t *found) {
    if (depth > DJ_DATASET_MAX_DEPTH)
        return dj_error_set(DJ_ERR_FORMAT, dir, "folders nested more than %d deep (a link loop?)", DJ_DATASET_MAX_DEPTH);
    dj_strv files = {0}, subdirs = {0};
    dj_status st = dj_list_dir(dir, &subdirs, &files);
    for (int f = 0; f < files.n && st == DJ_OK; f++) {
        st = dj_dataset_push(ds, dj_path_join(dir, files.v[f]), label, -1, -1);
        *found += st == DJ_OK;
    }
    for (int d = 0; d < subdirs.n && st == DJ_OK; d++) {
        char *sub = dj_path_join(dir, subdirs.v[d]);
        st = sub ? dj_dataset_add_tree(ds, sub, label, depth + 1, found) : dj_error_set(DJ_ERR_NOMEM, dir, "out of memory");
        free(sub);
    }
    dj_strv_free(&files);
    dj_strv_free(&subdirs);
    return st;
}

/* A root without class folders, when the caller accepts unlabelled videos. */
static dj_status dj_dataset_read_unlabelled(dj_dataset *ds, const char *root) {
    int64_t found = 0;
    DJ_TRY(dj_dataset_add_tree(ds, root, -1, 0, &found));
    if (found == 0)
        return dj_error_set(DJ_ERR_NOT_FOUND, root, "no video found (expected root/<class>/<video> or videos)");
    return DJ_OK;
}

static dj_status dj_dataset_read_folders(dj_dataset *ds, const char *root, int unlabelled) {
    dj_strv classes = {0};
    dj_status st = dj_list_dir(root, &classes, NULL);
    if (st != DJ_OK) {
        dj_strv_free(&classes);
        return st;
    }
    if (classes.n == 0 && unlabelled) {
        dj_strv_free(&classes);
        return dj_dataset_read_unlabelled(ds, root);
    }
    for (int c = 0; c < classes.n && st == DJ_OK; c++) {
        char *cdir = dj_path_join(root, classes.v[c]);
        int64_t found = 0;
        st = cdir ? dj_dataset_add_tree(ds, cdir, c, 1, &found) : dj_error_set(DJ_ERR_NOMEM, root, "out of memory");
        if (st == DJ_OK && found == 0) {
            dj_log_warn("class folder has no videos: %s", cdir);
            ds->warnings++;
        }
        free(cdir);
    }
    if (st == DJ_OK && classes.n == 0)
        st = dj_error_set(DJ_ERR_FORMAT, root, "no class folders (expected root/<class>/<video>)");
    else if (st == DJ_OK && ds->n == 0)
        st = dj_error_set(DJ_ERR_FORMAT, root, "no videos in any of the %d class folders", classes.n);
    if (st == DJ_OK) {
        ds->classes = classes.v;
        ds->num_classes = classes.n;
    } else {
        dj_strv_free(&classes);
    }
    return st;
}

/* ---- LIST --------------------------------------------------------------- */

/* Parses a whole decimal integer token into [lo, hi]; 0 on failure. */
static int dj_parse_i64(const char *tok, int64_t lo, int64_t hi, int64_t *out) {
    if (!tok || !*tok)
        return 0;
    char *end;
    errno = 0;
    long long v = strtoll(tok, &end, 10);
    if (errno || *end || v < lo || v > hi)
        return 0;
    *out = v;
    return 1;
}

/* One list line into up to 5 tokens; returns the token count (5 = too many). */
static int dj_split_ws(char *line, char **tok) {
    int n = 0;
    for (char *save = NULL, *t = strtok_r(line, " \t\r\n", &save); t; t = strtok_r(NULL, " \t\r\n", &save)) {
        if (n == 5)
            return 5;
        tok[n++] = t;
    }
    return n;
}

static dj_status dj_list_line(dj_dataset *ds, const char *file, long lineno, char *line, const char *base,
                              int *max_label) {
    char *hash = strchr(line, '#');
    if (hash)
        *hash = '\0';
    char *tok[5];
    int n = dj_split_ws(line, tok);
    if (n == 0)
        return DJ_OK;
    char where[1100];
    snprintf(where, sizeof where, "%s:%ld", file, lineno);
    if (n != 2 && n != 4)
        return dj_error_set(DJ_ERR_FORMAT, where, "expected 'path label [start_frame end_frame]', got %d fields", n);
    int64_t label, start = -1, end = -1;
    if (!dj_parse_i64(tok[1], 0, DJ_DATASET_MAX_LABEL - 1, &label))
        return dj_error_set(DJ_ERR_FORMAT, where, "label '%s' is not an integer in [0, %d)", tok[1],
                            DJ_DATASET_MAX_LABEL);
    if (n == 4) {
        if (!dj_parse_i64(tok[2], 0, INT64_MAX / 2, &start) || !dj_parse_i64(tok[3], 0, INT64_MAX / 2, &end))
            return dj_error_set(DJ_ERR_FORMAT, where, "frame range '%s %s' is not two non-negative integers",
                                tok[2], tok[3]);
        if (end <= start)
            return dj_error_set(DJ_ERR_FORMAT, where, "empty frame range [%lld, %lld)", (long long)start,
                                (long long)end);
    }
    if ((int)label > *max_label)
        *max_label = (int)label;
    return dj_dataset_push(ds, dj_path_join(base, tok[0]), (int)label, start, end);
}

static dj_status dj_dataset_name_labels(dj_dataset *ds, int max_label) {
    ds->num_classes = max_label + 1;
    ds->classes = calloc((size_t)ds->num_classes, sizeof *ds->classes);
    if (!ds->classes)
        return dj_error_set(DJ_ERR_NOMEM, "dataset", "out of memory");
    for (int i = 0; i < ds->num_classes; i++)
        if (asprintf(&ds->classes[i], "%d", i) < 0) {
            ds->classes[i] = NULL;
            return dj_error_set(DJ_ERR_NOMEM, "dataset", "out of memory");
        }
    return DJ_OK;
}

static dj_status dj_dataset_read_list(dj_dataset *ds, const char *file, const char *root) {
    FILE *f = fopen(file, "r");
    if (!f)
        return dj_error_set(DJ_ERR_IO, file, "cannot open list file: %s", strerror(errno));
    char *base = root ? dj_strdup_or_null(root) : dj_path_dirname(file);
    char *line = NULL;
    size_t cap = 0;
    long lineno = 0;
    int max_label = -1;
    dj_status st = base ? DJ_OK : dj_error_set(DJ_ERR_NOMEM, file, "out of memory");
    while (st == DJ_OK && getline(&line, &cap, f) >= 0)
        st = dj_list_line(ds, file, ++lineno, line, base, &max_label);
    if (st == DJ_OK && ferror(f))
        st = dj_error_set(DJ_ERR_IO, file, "read error");
    if (st == DJ_OK && ds->n == 0)
        st = dj_error_set(DJ_ERR_FORMAT, file, "list file has no entries");
    if (st == DJ_OK)
        st = dj_dataset_name_labels(ds, max_label);
    free(line);
    free(base);
    fclose(f);
    return st;
}

/* ---- CSV ---------------------------------------------------------------- */

enum { DJ_CSV_MAX_FIELDS = 16 };

/* Splits one CSV line in place ("quoted, fields" and "" escapes); returns the
 * field count, or -1 for an unterminated quote or too many fields. */
static int dj_csv_split(char *line, char **field) {
    int n = 0;
    char *r = line, *w = line;
    for (;;) {
        if (n == DJ_CSV_MAX_FIELDS)
            return -1;
        field[n++] = w;
        if (*r == '"') {
            r++;
            for (;;) {
                if (*r == '\0')
                    return -1;
                if (*r == '"' && r[1] == '"') {
                    *w++ = '"';
                    r += 2;
                } else if (*r == '"') {
                    r++;
                    break;
                } else {
                    *w++ = *r++;
                }
            }
        }
        while (*r && *r != ',' && *r != '\n' && *r != '\r')
            *w++ = *r++;
        int more = *r == ',';
        *w++ = '\0';
        if (!more)
            return n;
        r++;
    }
}

static int dj_parse_time(const char *s, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end || errno || !isfinite(v) || v < 0 || v > 1e6)
        return 0;
    *out = v;
    return 1;
}

typedef struct dj_csv_cols {
    int label, id, start, end;
} dj_csv_cols;

/* Line 1 is a header when it names a label or youtube_id column and its
 * third field is not a time; returns 1 then, with cols set (all -1 when a
 * needed column is absent). */
static int dj_csv_header(char **field, int n, dj_csv_cols *cols) {
    double t;
    int named = 0;
    for (int i = 0; i < n; i++)
        named |= !strcasecmp(field[i], "label") || !strcasecmp(field[i], "youtube_id");
    if (!named || (n > 2 && dj_parse_time(field[2], &t)))
        return 0;
    dj_csv_cols c = {-1, -1, -1, -1};
    for (int i = 0; i < n; i++) {
        if (!strcasecmp(field[i], "label")) c.label = i;
        else if (!strcasecmp(field[i], "youtube_id")) c.id = i;
        else if (!strcasecmp(field[i], "time_start")) c.start = i;
        else if (!strcasecmp(field[i], "time_end")) c.end = i;
    }
    if (c.label < 0 || c.id < 0 || c.start < 0 || c.end < 0)
        c = (dj_csv_cols){-1, -1, -1, -1};
    *cols = c;
    return 1;
}

typedef struct dj_csv_state {
    const char *file, *root;
    dj_csv_cols cols;
    dj_strv labels; /* label of each kept row, in order */
    dj_strv all_labels;
    int missing; /* rows whose video is absent */
} dj_csv_state;

/* The video of a row if it exists (root/label/name or root/name), or NULL. */
static char *dj_csv_find_video(const char *root, const char *label, const char *name) {
    char *p = NULL;
    if (asprintf(&p, "%s/%s/%s", root, label, name) >= 0) {
        if (dj_is_regular_file(p))
            return p;
        free(p);
    }
    p = dj_path_join(root, name);
    if (p && dj_is_regular_file(p))
        return p;
    free(p);
    return NULL;
}

static dj_status dj_csv_row(dj_dataset *ds, dj_csv_state *cs, long lineno, char *line) {
    char *field[DJ_CSV_MAX_FIELDS];
    char where[1100];
    snprintf(where, sizeof where, "%s:%ld", cs->file, lineno);
    if (line[strspn(line, " \t\r\n")] == '\0')
        return DJ_OK;
    int n = dj_csv_split(line, field);
    if (lineno == 1 && n > 0 && dj_csv_header(field, n, &cs->cols)) {
        if (cs->cols.label < 0)
            return dj_error_set(DJ_ERR_FORMAT, where, "header lacks label, youtube_id, time_start or time_end");
        return DJ_OK;
    }
    const dj_csv_cols *c = &cs->cols;
    int need = 1 + (c->label > c->id ? c->label : c->id);
    need = need > c->start + 1 ? need : c->start + 1;
    need = need > c->end + 1 ? need : c->end + 1;
    if (n < 0)
        return dj_error_set(DJ_ERR_FORMAT, where, "unterminated quote or more than %d fields", DJ_CSV_MAX_FIELDS);
    if (n < need)
        return dj_error_set(DJ_ERR_FORMAT, where, "expected 'label,youtube_id,time_start,time_end,split', got %d fields",
                            n);
    double t0, t1;
    if (!dj_parse_time(field[c->start], &t0) || !dj_parse_time(field[c->end], &t1) || t1 <= t0)
        return dj_error_set(DJ_ERR_FORMAT, where, "bad times '%s', '%s'", field[c->start], field[c->end]);
    const char *label = field[c->label], *id = field[c->id];
    if (!label[0] || !id[0] || strchr(id, '/') || strchr(label, '/'))
        return dj_error_set(DJ_ERR_FORMAT, where, "empty or invalid label or youtube_id");
    DJ_TRY(dj_strv_push(&cs->all_labels, label));
    char name[512];
    snprintf(name, sizeof name, "%s_%06d_%06d.mp4", id, (int)t0, (int)t1);
    char *path = dj_csv_find_video(cs->root, label, name);
    if (!path) {
        cs->missing++;
        return DJ_OK;
    }
    DJ_TRY(dj_dataset_push(ds, path, -1, -1, -1));
    return dj_strv_push(&cs->labels, label);
}

/* Label ids by sorted unique name, over every row (present or not). */
static dj_status dj_csv_assign_labels(dj_dataset *ds, dj_csv_state *cs) {
    dj_strv_sort_unique(&cs->all_labels);
    for (int64_t i = 0; i < ds->n; i++) {
        char *key = cs->labels.v[i];
        char **hit = bsearch(&key, cs->all_labels.v, (size_t)cs->all_labels.n, sizeof(char *), dj_cmp_str);
        if (!hit)
            return dj_error_set(DJ_ERR_INTERNAL, cs->file, "label '%s' lost", key);
        ds->entries[i].label = (int)(hit - cs->all_labels.v);
    }
    ds->classes = cs->all_labels.v;
    ds->num_classes = cs->all_labels.n;
    cs->all_labels = (dj_strv){0};
    return DJ_OK;
}

static dj_status dj_dataset_read_csv(dj_dataset *ds, const char *file, const char *root) {
    FILE *f = fopen(file, "r");
    if (!f)
        return dj_error_set(DJ_ERR_IO, file, "cannot open CSV file: %s", strerror(errno));
    char *base = root ? dj_strdup_or_null(root) : dj_path_dirname(file);
    dj_csv_state cs = {.file = file, .root = base, .cols = {0, 1, 2, 3}};
    char *line = NULL;
    size_t cap = 0;
    long lineno = 0;
    dj_status st = base ? DJ_OK : dj_error_set(DJ_ERR_NOMEM, file, "out of memory");
    while (st == DJ_OK && getline(&line, &cap, f) >= 0)
        st = dj_csv_row(ds, &cs, ++lineno, line);
    if (st == DJ_OK && ds->n == 0)
        st = dj_error_set(DJ_ERR_NOT_FOUND, file, "none of the %d rows has its video under %s", cs.missing,
                          base);
    if (st == DJ_OK && cs.missing > 0) {
        dj_log_warn("%d of %d videos listed in %s are missing under %s", cs.missing, cs.missing + (int)ds->n, file,
                    base);
        ds->warnings++;
    }
    if (st == DJ_OK)
        st = dj_csv_assign_labels(ds, &cs);
    dj_strv_free(&cs.labels);
    dj_strv_free(&cs.all_labels);
    free(line);
    free(base);
    fclose(f);
    return st;
}

/* ---- public ------------------------------------------------------------- */

static dj_dataset_format dj_dataset_detect(const char *path) {
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return DJ_DATASET_FOLDERS;
    const char *dot = strrchr(path, '.');
    if (dot && strcasecmp(dot, ".csv") == 0)
        return DJ_DATASET_CSV;
    return DJ_DATASET_LIST;
}

dj_status dj_dataset_open(const char *path, const dj_dataset_options *options, dj_dataset **out) {
    if (!out)
        return dj_error_set(DJ_ERR_INVALID, "dj_dataset_open", "out is NULL");
    *out = NULL;
    if (!path || !path[0])
        return dj_error_set(DJ_ERR_INVALID, "dj_dataset_open", "empty dataset path");
    struct stat sb;
    if (stat(path, &sb) != 0)
        return dj_error_set(DJ_ERR_NOT_FOUND, path, "dataset not found: %s", strerror(errno));
    dj_dataset_options opt = options ? *options : (dj_dataset_options){0};
    dj_dataset *ds = calloc(1, sizeof *ds);
    if (!ds)
        return dj_error_set(DJ_ERR_NOMEM, path, "out of memory");
    ds->format = opt.format == DJ_DATASET_AUTO ? dj_dataset_detect(path) : opt.format;
    dj_status st;
    switch (ds->format) {
    case DJ_DATASET_FOLDERS: st = dj_dataset_read_folders(ds, path, opt.unlabelled); break;
    case DJ_DATASET_LIST: st = dj_dataset_read_list(ds, path, opt.video_root); break;
    case DJ_DATASET_CSV: st = dj_dataset_read_csv(ds, path, opt.video_root); break;
    default: st = dj_error_set(DJ_ERR_INVALID, path, "unknown dataset format %d", (int)opt.format);
    }
    if (st != DJ_OK) {
        dj_dataset_free(ds);
        return st;
    }
    qsort(ds->entries, (size_t)ds->n, sizeof *ds->entries, dj_cmp_entry);
    *out = ds;
    return DJ_OK;
}

void dj_dataset_free(dj_dataset *ds) {
    if (!ds)
        return;
    for (int64_t i = 0; i < ds->n; i++)
        free((char *)ds->entries[i].path);
    free(ds->entries);
    for (int i = 0; i < ds->num_classes; i++)
        free(ds->classes[i]);
    free(ds->classes);
    free(ds);
}

dj_dataset_format dj_dataset_format_of(const dj_dataset *ds) { return ds ? ds->format : DJ_DATASET_AUTO; }
int64_t dj_dataset_size(const dj_dataset *ds) { return ds ? ds->n : 0; }
int dj_dataset_num_classes(const dj_dataset *ds) { return ds ? ds->num_classes : 0; }
int dj_dataset_warning_count(const dj_dataset *ds) { return ds ? ds->warnings : 0; }

const dj_dataset_entry *dj_dataset_entry_at(const dj_dataset *ds, int64_t i) {
    return ds && i >= 0 && i < ds->n ? &ds->entries[i] : NULL;
}

const char *dj_dataset_class_name(const dj_dataset *ds, int id) {
    return ds && id >= 0 && id < ds->num_classes ? ds->classes[id] : NULL;
}

int dj_dataset_class_id(const dj_dataset *ds, const char *name) {
    if (!ds || !name)
        return -1;
    for (int i = 0; i < ds->num_classes; i++)
        if (strcmp(ds->classes[i], name) == 0)
            return i;
    return -1;
}

dj_status dj_dataset_shard(const dj_dataset *ds, uint64_t seed, uint64_t epoch, int shuffle, int rank, int world,
                           int drop_last, int64_t **indices, int64_t *count) {
    if (!ds || !indices || !count)
        return dj_error_set(DJ_ERR_INVALID, "dj_dataset_shard", "NULL argument");
    *indices = NULL;
    *count = 0;
    dj_shard_options so = {.shuffle = shuffle, .rank = rank, .world = world, .drop_last = drop_last};
    int64_t n = dj_shard_count(ds->n, &so);
    if (n < 0)
        return DJ_ERR_INVALID; /* dj_shard_count set the message */
    int64_t *out = malloc((size_t)(n > 0 ? n : 1) * sizeof *out);
    if (!out)
        return dj_error_set(DJ_ERR_NOMEM, "dj_dataset_shard", "out of memory");
    dj_status st = dj_shard_indices(ds->n, seed, epoch, &so, out, NULL);
    if (st != DJ_OK) {
        free(out);
        return st;
    }
    *indices = out;
    *count = n;
    return DJ_OK;
}
