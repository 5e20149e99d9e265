/* report.c — `dojo report`: one self-contained HTML page about a run.
 *
 * Reads RUNDIR/metrics.jsonl (metrics.c's reader), RUNDIR/config.json and
 * RUNDIR/summary.json and writes inline SVG line plots (loss, accuracy,
 * learning rate, throughput, data-wait share against step), a heat map of
 * the last validation confusion matrix, the summary and the configuration.
 * No scripts, fonts or links: the file reads the same offline. Every text
 * that comes from a file is HTML-escaped. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "dojo/fs.h"
#include "dojo/metrics.h"

#define DJ_PLOT_MAX_POINTS 1000 /* per line, after downsampling */
#define DJ_REPORT_MAX_JSON (16 << 20)

/* ---- small writers ----------------------------------------------------------- */

/* Writes s with & < > " ' escaped; n < 0: up to the terminator. */
static void dj_html_escape_n(FILE *f, const char *s, long n) {
    for (long i = 0; s[i] && (n < 0 || i < n); i++) {
        switch (s[i]) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&#39;", f); break;
        default: fputc(s[i], f);
        }
    }
}

static void dj_html_escape(FILE *f, const char *s) { dj_html_escape_n(f, s, -1); }

/* A short tick number: 0.001, 12.5, 3e-05, 250k, 1.2M, 1e+15. */
static void dj_report_number(char *buf, size_t n, double v) {
    static const char *const suffix[] = {"k", "M", "G", "T"};
    double a = fabs(v);
    if (v == 0) {
        snprintf(buf, n, "0");
    } else if (a >= 1e15 || a < 1e-3) {
        snprintf(buf, n, "%.3g", v);
    } else if (a >= 1e4) {
        int e = a < 1e6 ? 1 : a < 1e9 ? 2 : a < 1e12 ? 3 : 4;
        snprintf(buf, n, "%.4g%s", v / pow(1000, e), suffix[e - 1]);
    } else {
        snprintf(buf, n, "%.4g", v);
    }
}

/* A table number: whole numbers exact, others to 6 digits. */
static void dj_report_exact(char *buf, size_t n, double v) {
    if (v == floor(v) && fabs(v) < 1e15)
        snprintf(buf, n, "%.0f", v + 0.0);
    else
        snprintf(buf, n, "%.6g", v);
}

/* Reads a whole small file; NULL with *missing = 1 when it does not exist. */
static char *dj_report_slurp(const char *path, int *missing, dj_status *status) {
    *missing = 0;
    *status = DJ_OK;
    FILE *f = fopen(path, "rbe");
    if (!f) {
        if (errno == ENOENT)
            *missing = 1;
        else
            *status = dj_error_set(DJ_ERR_IO, path, "cannot open: %s", strerror(errno));
        return NULL;
    }
    char *buf = malloc(DJ_REPORT_MAX_JSON + 1);
    size_t got = buf ? fread(buf, 1, DJ_REPORT_MAX_JSON + 1, f) : 0;
    int err = ferror(f);
    fclose(f);
    if (!buf || err || got > DJ_REPORT_MAX_JSON) {
        free(buf);
        *status = !buf  ? dj_error_set(DJ_ERR_NOMEM, path, "out of memory")
                  : err ? dj_error_set(DJ_ERR_IO, path, "cannot read")
                        : dj_error_set(DJ_ERR_FORMAT, path, "larger than %d MiB", DJ_REPORT_MAX_JSON >> 20);
        return NULL;
    }
    buf[got] = '\0';
    return buf;
}

/* ---- line plots ------------------------------------------------------------------ */

typedef struct dj_plot_line {
    const char *split, *key, *label, *color;
} dj_plot_line;

typedef struct dj_plot_spec {
    const char *id, *title, *ylabel;
    int unit_range; /* 1: y axis fixed to [0, 1] (shares) */
    dj_plot_line lines[3];
} dj_plot_spec;

static const dj_plot_spec dj_plots[] = {
    {"loss", "Loss", "loss", 0,
     {{"train", "loss", "train loss", "#1f77b4"}, {"val", "loss", "val loss", "#ff7f0e"}, {0}}},
    {"accuracy", "Accuracy", "accuracy", 0,
     {{"val", "top1", "val top-1", "#2ca02c"},
      {"val", "top5", "val top-5", "#9467bd"},
      {"train", "top1", "train top-1", "#8c8c8c"}}},
    {"lr", "Learning rate", "learning rate", 0, {{"train", "lr", "lr", "#d62728"}, {0}, {0}}},
    {"throughput", "Throughput", "clips/s", 0, {{"train", "clips_per_s", "clips/s", "#17becf"}, {0}, {0}}},
    {"data_wait", "Data-wait share", "share of step time", 1,
     {{"train", "data_wait", "waiting for data", "#bcbd22"}, {0}, {0}}},
};

/* Plot points of one line: at most DJ_PLOT_MAX_POINTS bucket means; when
 * buckets hold several values, lo/hi are their range (drawn as a band). */
typedef struct dj_plot_points {
    int n, banded;
    double xmin, xmax; /* first and last step of the series */
    double x[DJ_PLOT_MAX_POINTS], y[DJ_PLOT_MAX_POINTS];
    double lo[DJ_PLOT_MAX_POINTS], hi[DJ_PLOT_MAX_POINTS];
} dj_plot_points;

static void dj_plot_downsample(const dj_metrics_series *s, dj_plot_points *p) {
    p->n = 0;
    p->banded = s && s->n > DJ_PLOT_MAX_POINTS;
    if (!s)
        return;
    int64_t n = s->n, buckets = n < DJ_PLOT_MAX_POINTS ? n : DJ_PLOT_MAX_POINTS;
    p->xmin = n ? (double)s->step[0] : 0;
    p->xmax = n ? (double)s->step[n - 1] : 0;
    for (int64_t b = 0; b < buckets; b++) {
        int64_t lo = b * n / buckets, hi = (b + 1) * n / buckets, c = 0;
        double sx = 0, sy = 0, vmin = INFINITY, vmax = -INFINITY;
        for (int64_t i = lo; i < hi; i++)
            if (isfinite(s->value[i])) {
                sx += (double)s->step[i];
                sy += s->value[i];
                vmin = fmin(vmin, s->value[i]);
                vmax = fmax(vmax, s->value[i]);
                c++;
            }
        if (c > 0) {
            p->x[p->n] = sx / (double)c;
            p->y[p->n] = sy / (double)c;
            p->lo[p->n] = vmin;
            p->hi[p->n] = vmax;
            p->n++;
        }
    }
}

/* Tick spacing 1, 2 or 5 x 10^k giving about `want` ticks over range. */
static double dj_plot_tick_step(double range, int want) {
    double raw = range / want, mag = pow(10, floor(log10(raw))), f = raw / mag;
    return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * mag;
}

/* Widens [*lo, *hi] to a non-empty range ending on ticks. */
static void dj_plot_range(double *lo, double *hi, int pad) {
    if (*hi - *lo <= 1e-12 * fmax(fabs(*lo), fabs(*hi))) {
        double d = *lo == 0 ? 1 : fabs(*lo) * 0.1;
        *lo -= d;
        *hi += d;
    } else if (pad) {
        double t = dj_plot_tick_step(*hi - *lo, 5);
        *lo = floor(*lo / t) * t;
        *hi = ceil(*hi / t) * t;
    }
}

enum { DJ_PW = 600, DJ_PH = 320, DJ_ML = 72, DJ_MR = 16, DJ_MT = 34, DJ_MB = 46 };

typedef struct dj_plot_frame {
    double x0, x1, y0, y1;
} dj_plot_frame;

static double dj_px(const dj_plot_frame *fr, double x) {
    return DJ_ML + (x - fr->x0) / (fr->x1 - fr->x0) * (DJ_PW - DJ_ML - DJ_MR);
}

static double dj_py(const dj_plot_frame *fr, double y) {
    return DJ_PH - DJ_MB - (y - fr->y0) / (fr->y1 - fr->y0) * (DJ_PH - DJ_MT - DJ_MB);
}

/* Grid lines, tick labels and axis titles. */
static void dj_plot_axes(FILE *f, const dj_plot_frame *fr, const char *ylabel, int percent) {
    char num[32];
    double tx = fmax(1, dj_plot_tick_step(fr->x1 - fr->x0, 6)), ty = dj_plot_tick_step(fr->y1 - fr->y0, 5);
    fprintf(f, "<g class=\"axes\">\n");
    /* at most 50 ticks, counted: x += t would stall where t is below x's precision */
    double i0 = ceil(fr->x0 / tx - 1e-9), i1 = floor(fr->x1 / tx + 1e-9);
    for (int c = 0; c < 50 && i0 + c <= i1; c++) {
        double x = (i0 + c) * tx, px = dj_px(fr, x);
        dj_report_number(num, sizeof num, x);
        fprintf(f, "<line class=\"grid\" x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\"/>", px, DJ_MT, px, DJ_PH - DJ_MB);
        fprintf(f, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s</text>\n", px, DJ_PH - DJ_MB + 16, num);
    }
    i0 = ceil(fr->y0 / ty - 1e-9);
    i1 = floor(fr->y1 / ty + 1e-9);
    for (int c = 0; c < 50 && i0 + c <= i1; c++) {
        double y = (i0 + c) * ty + 0.0, py = dj_py(fr, y); /* + 0.0: no "-0" */
        if (percent)
            snprintf(num, sizeof num, "%.0f%%", y * 100);
        else
            dj_report_number(num, sizeof num, y);
        fprintf(f, "<line class=\"grid\" x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\"/>", DJ_ML, py, DJ_PW - DJ_MR, py);
        fprintf(f, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n", DJ_ML - 6, py + 4, num);
    }
    fprintf(f, "<rect class=\"frame\" x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\"/>\n", DJ_ML, DJ_MT,
            DJ_PW - DJ_ML - DJ_MR, DJ_PH - DJ_MT - DJ_MB);
    fprintf(f, "<text class=\"label\" x=\"%d\" y=\"%d\" text-anchor=\"middle\">step</text>\n",
            (DJ_ML + DJ_PW - DJ_MR) / 2, DJ_PH - 8);
    fprintf(f, "<text class=\"label\" transform=\"translate(16,%d) rotate(-90)\" text-anchor=\"middle\">",
            (DJ_MT + DJ_PH - DJ_MB) / 2);
    dj_html_escape(f, ylabel);
    fprintf(f, "</text>\n</g>\n");
}

/* One polyline (markers too when there are few points) and its legend entry. */
static void dj_plot_draw_line(FILE *f, const dj_plot_frame *fr, const dj_plot_points *p, const dj_plot_line *l,
                              int slot) {
    if (p->banded) { /* min..max of each bucket: the spread the mean line hides */
        fprintf(f, "<polygon class=\"band\" fill=\"%s\" points=\"", l->color);
        for (int i = 0; i < p->n; i++)
            fprintf(f, "%.1f,%.1f ", dj_px(fr, p->x[i]), dj_py(fr, p->hi[i]));
        for (int i = p->n - 1; i >= 0; i--)
            fprintf(f, "%.1f,%.1f%s", dj_px(fr, p->x[i]), dj_py(fr, p->lo[i]), i ? " " : "");
        fprintf(f, "\"/>\n");
    }
    fprintf(f, "<polyline class=\"series\" data-series=\"%s/%s\" stroke=\"%s\" points=\"", l->split, l->key, l->color);
    for (int i = 0; i < p->n; i++)
        fprintf(f, "%s%.1f,%.1f", i ? " " : "", dj_px(fr, p->x[i]), dj_py(fr, p->y[i]));
    fprintf(f, "\"/>\n");
    if (p->n <= 40)
        for (int i = 0; i < p->n; i++)
            fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>", dj_px(fr, p->x[i]),
                    dj_py(fr, p->y[i]), l->color);
    int lx = DJ_ML + 8 + slot * 150;
    fprintf(f, "\n<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" stroke-width=\"3\"/>", lx, DJ_MT - 12,
            lx + 18, DJ_MT - 12, l->color);
    fprintf(f, "<text x=\"%d\" y=\"%d\">%s</text>\n", lx + 24, DJ_MT - 8, l->label);
}

/* One plot card; returns 1 when it had data. */
static int dj_plot_write(FILE *f, const dj_metrics_data *d, const dj_plot_spec *spec, dj_plot_points *pts) {
    int nlines = 0, any = 0;
    dj_plot_frame fr = {INFINITY, -INFINITY, INFINITY, -INFINITY};
    for (int l = 0; l < 3 && spec->lines[l].split; l++, nlines++) {
        dj_plot_downsample(dj_metrics_find(d, spec->lines[l].split, spec->lines[l].key), &pts[l]);
        for (int i = 0; i < pts[l].n; i++) {
            fr.x0 = fmin(fr.x0, pts[l].xmin);
            fr.x1 = fmax(fr.x1, pts[l].xmax);
            fr.y0 = fmin(fr.y0, pts[l].lo[i]);
            fr.y1 = fmax(fr.y1, pts[l].hi[i]);
            any = 1;
        }
    }
    fprintf(f, "<figure class=\"plot\" id=\"plot-%s\">\n<figcaption>%s</figcaption>\n", spec->id, spec->title);
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
               "role=\"img\" aria-label=\"%s against step\">\n",
            DJ_PW, DJ_PH, DJ_PW, DJ_PH, spec->title);
    if (!any) {
        fprintf(f, "<rect class=\"frame\" x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\"/>\n", DJ_ML, DJ_MT,
                DJ_PW - DJ_ML - DJ_MR, DJ_PH - DJ_MT - DJ_MB);
        fprintf(f, "<text class=\"nodata\" x=\"%d\" y=\"%d\" text-anchor=\"middle\">no data logged (", DJ_PW / 2,
                DJ_PH / 2);
        for (int l = 0; l < nlines; l++)
            fprintf(f, "%s%s/%s", l ? ", " : "", spec->lines[l].split, spec->lines[l].key);
        fprintf(f, ")</text>\n</svg>\n</figure>\n");
        return 0;
    }
    if (!isfinite(fr.y1 - fr.y0) || fabs(fr.y0) > 1e300 || fabs(fr.y1) > 1e300) {
        fprintf(f, "<rect class=\"frame\" x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\"/>\n", DJ_ML, DJ_MT,
                DJ_PW - DJ_ML - DJ_MR, DJ_PH - DJ_MT - DJ_MB);
        fprintf(f, "<text class=\"nodata\" x=\"%d\" y=\"%d\" text-anchor=\"middle\">values too large to plot</text>\n"
                   "</svg>\n</figure>\n", DJ_PW / 2, DJ_PH / 2);
        return 0;
    }
    if (spec->unit_range) {
        fr.y0 = 0;
        fr.y1 = fmax(1, fr.y1);
    }
    if (fr.x1 - fr.x0 < 2) { /* steps are whole numbers: at least one step either side */
        fr.x0 -= 1;
        fr.x1 += 1;
    }
    dj_plot_range(&fr.y0, &fr.y1, !spec->unit_range);
    dj_plot_axes(f, &fr, spec->ylabel, spec->unit_range);
    for (int l = 0, slot = 0; l < nlines; l++)
        if (pts[l].n > 0)
            dj_plot_draw_line(f, &fr, &pts[l], &spec->lines[l], slot++);
    fprintf(f, "</svg>\n</figure>\n");
    return 1;
}

/* ---- confusion matrix ----------------------------------------------------------- */

/* A class name cut to 24 characters for an axis label. */
static void dj_confusion_label(FILE *f, const char *name) {
    size_t n = strlen(name);
    dj_html_escape_n(f, name, n > 24 ? 23 : (long)n);
    if (n > 24)
        fputs("&#8230;", f);
}

static void dj_confusion_cell(FILE *f, const dj_metrics_data *d, int i, int j, int cell, int left, int top,
                              int64_t rowsum) {
    int64_t c = d->confusion[(int64_t)i * d->k + j];
    double share = rowsum > 0 ? (double)c / (double)rowsum : 0;
    if (c == 0 && d->k > 60)
        return; /* white background shows through: keeps big matrices small */
    int r = (int)lround(255 - share * (255 - 8)), g = (int)lround(255 - share * (255 - 48)),
        b = (int)lround(255 - share * (255 - 107));
    int x = left + j * cell, y = top + i * cell;
    fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"rgb(%d,%d,%d)\"><title>true ", x, y, cell,
            cell, r, g, b);
    dj_html_escape(f, d->classes[i]);
    fputs(", predicted ", f);
    dj_html_escape(f, d->classes[j]);
    fprintf(f, ": %lld (%.1f%% of the row)</title></rect>", (long long)c, share * 100);
    if (cell >= 24)
        fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" fill=\"%s\">%lld</text>", x + cell / 2,
                y + cell / 2 + 4, share > 0.5 ? "#fff" : "#222", (long long)c);
    fputc('\n', f);
}

static void dj_confusion_write(FILE *f, const dj_metrics_data *d) {
    fprintf(f, "<section id=\"confusion\">\n<h2>Confusion matrix</h2>\n");
    if (d->k == 0) {
        fprintf(f, "<p class=\"note\">No validation confusion matrix was logged.</p>\n</section>\n");
        return;
    }
    int k = d->k, cell = 560 / k;
    cell = cell < 4 ? 4 : cell > 40 ? 40 : cell;
    int labels = cell >= 9;
    size_t maxlen = 0;
    for (int i = 0; labels && i < k; i++)
        maxlen = strlen(d->classes[i]) > maxlen ? strlen(d->classes[i]) : maxlen;
    int margin = 30 + (int)((maxlen > 24 ? 24 : maxlen) * 7);
    /* column labels lean right by cos(60 deg) of their length */
    int left = margin, top = margin, w = left + k * cell + 10 + (margin - 30) / 2, h = top + k * cell + 10;
    int64_t correct = 0, total = 0;
    for (int64_t i = 0; i < (int64_t)k * k; i++)
        total += d->confusion[i];
    for (int i = 0; i < k; i++)
        correct += d->confusion[(int64_t)i * k + i];
    fprintf(f, "<p>Last validation: epoch %lld, step %lld, %d classes, %lld clips, %.2f%% on the diagonal. "
               "Rows: true class; columns: predicted class; colour: share of the row.</p>\n",
            (long long)d->confusion_epoch, (long long)d->confusion_step, k, (long long)total,
            total ? 100.0 * (double)correct / (double)total : 0.0);
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"heatmap\" width=\"%d\" height=\"%d\" "
               "viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"confusion matrix\">\n",
            w, h, w, h);
    fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"#fff\" stroke=\"#888\"/>\n", left, top,
            k * cell, k * cell);
    for (int i = 0; i < k; i++) {
        int64_t rowsum = 0;
        for (int j = 0; j < k; j++)
            rowsum += d->confusion[(int64_t)i * k + j];
        for (int j = 0; j < k; j++)
            dj_confusion_cell(f, d, i, j, cell, left, top, rowsum);
    }
    fprintf(f, "<path class=\"diagonal\" d=\"M%d %d L%d %d\"/>\n", left, top, left + k * cell, top + k * cell);
    for (int i = 0; labels && i < k; i++) {
        int c = top + i * cell + cell / 2 + 4;
        fprintf(f, "<text class=\"cls\" x=\"%d\" y=\"%d\" text-anchor=\"end\">", left - 4, c);
        dj_confusion_label(f, d->classes[i]);
        fprintf(f, "</text><text class=\"cls\" transform=\"translate(%d,%d) rotate(-60)\">", left + i * cell + cell / 2 + 4,
                top - 4);
        dj_confusion_label(f, d->classes[i]);
        fprintf(f, "</text>\n");
    }
    fprintf(f, "<text class=\"label\" x=\"10\" y=\"14\">true \xe2\x86\x93 / predicted \xe2\x86\x92</text>\n");
    fprintf(f, "</svg>\n</section>\n");
}

/* ---- summary, glance and configuration ------------------------------------------ */

static void dj_report_value(FILE *f, const cJSON *v) {
    char num[32];
    if (cJSON_IsNumber(v)) {
        dj_report_exact(num, sizeof num, v->valuedouble);
        fputs(num, f);
    } else if (cJSON_IsString(v)) {
        dj_html_escape(f, v->valuestring);
    } else {
        char *text = cJSON_PrintUnformatted(v);
        if (text)
            dj_html_escape(f, text);
        free(text);
    }
}

static void dj_report_summary(FILE *f, const char *rundir) {
    static const char *const order[] = {"val_top1", "val_top5", "epochs", "steps", "wall_s", "clips_per_s",
                                        "checkpoint"};
    char path[4096];
    snprintf(path, sizeof path, "%s/summary.json", rundir);
    int missing;
    dj_status s;
    char *text = dj_report_slurp(path, &missing, &s);
    cJSON *o = text ? cJSON_Parse(text) : NULL;
    free(text);
    fprintf(f, "<section id=\"summary\">\n<h2>Summary</h2>\n");
    if (!cJSON_IsObject(o)) {
        fprintf(f, "<p class=\"note\">%s</p>\n",
                missing ? "No summary.json: the run has not finished, or was interrupted."
                        : "summary.json could not be read as a JSON object.");
        cJSON_Delete(o);
        fprintf(f, "</section>\n");
        return;
    }
    fprintf(f, "<table class=\"kv\">\n");
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, order[i]);
        if (!v)
            continue;
        fprintf(f, "<tr><th>%s</th><td>", order[i]);
        dj_report_value(f, v);
        if (strcmp(order[i], "wall_s") == 0 && cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble < 1e9) {
            long t = (long)v->valuedouble;
            fprintf(f, " (%ldh %02ldm %02lds)", t / 3600, t / 60 % 60, t % 60);
        }
        fprintf(f, "</td></tr>\n");
    }
    const cJSON *v;
    cJSON_ArrayForEach(v, o) {
        int known = 0;
        for (size_t i = 0; i < sizeof order / sizeof order[0]; i++)
            known |= v->string && strcmp(v->string, order[i]) == 0;
        if (known || !v->string)
            continue;
        fputs("<tr><th>", f);
        dj_html_escape(f, v->string);
        fputs("</th><td>", f);
        dj_report_value(f, v);
        fputs("</td></tr>\n", f);
    }
    fprintf(f, "</table>\n</section>\n");
    cJSON_Delete(o);
}

/* Last values and best validation accuracy, from the metrics themselves. */
static void dj_report_glance(FILE *f, const dj_metrics_data *d) {
    static const char *const rows[][2] = {{"train", "loss"}, {"train", "lr"}, {"train", "clips_per_s"},
                                          {"val", "loss"},   {"val", "top1"}, {"val", "top5"}};
    char num[32];
    fprintf(f, "<table class=\"kv\"><tr><th>records</th><td>%lld</td></tr>\n", (long long)d->records);
    for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
        const dj_metrics_series *s = dj_metrics_find(d, rows[r][0], rows[r][1]);
        if (!s || s->n == 0)
            continue;
        dj_report_number(num, sizeof num, s->value[s->n - 1]);
        fprintf(f, "<tr><th>last %s/%s</th><td>%s at step %lld", rows[r][0], rows[r][1], num,
                (long long)s->step[s->n - 1]);
        if (strcmp(rows[r][0], "val") == 0 && strncmp(rows[r][1], "top", 3) == 0) {
            int64_t best = 0;
            for (int64_t i = 1; i < s->n; i++)
                best = s->value[i] > s->value[best] ? i : best;
            dj_report_number(num, sizeof num, s->value[best]);
            fprintf(f, "; best %s at step %lld", num, (long long)s->step[best]);
        }
        fprintf(f, "</td></tr>\n");
    }
    fprintf(f, "</table>\n");
}

static void dj_report_config(FILE *f, const char *rundir) {
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", rundir);
    int missing;
    dj_status s;
    char *text = dj_report_slurp(path, &missing, &s);
    fprintf(f, "<section id=\"config\">\n<h2>Configuration</h2>\n");
    if (!text) {
        fprintf(f, "<p class=\"note\">%s</p>\n</section>\n",
                missing ? "No config.json in the run folder." : "config.json could not be read.");
        return;
    }
    cJSON *o = cJSON_Parse(text);
    char *pretty = o ? cJSON_Print(o) : NULL;
    if (!pretty)
        fprintf(f, "<p class=\"warn\">config.json is not valid JSON; shown as it is.</p>\n");
    fputs("<pre>", f);
    dj_html_escape(f, pretty ? pretty : text);
    fputs("</pre>\n</section>\n", f);
    free(pretty);
    cJSON_Delete(o);
    free(text);
}

/* ---- the page ---------------------------------------------------------------------- */

static const char dj_report_css[] =
    "body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;margin:24px;color:#222;"
    "background:#fafafa}\n"
    "h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}\n"
    ".plots{display:flex;flex-wrap:wrap;gap:16px}\n"
    "figure.plot{margin:0;background:#fff;border:1px solid #ddd;border-radius:6px;padding:8px}\n"
    "figcaption{font-weight:600;margin:0 0 4px 6px}\n"
    "svg text{font:12px system-ui,Helvetica,Arial,sans-serif;fill:#333}\n"
    "svg .label{font-size:13px;fill:#111}svg .nodata{font-size:15px;fill:#999}\n"
    "svg .grid{stroke:#e6e6e6;stroke-width:1}svg .frame{fill:none;stroke:#999}\n"
    "svg .series{fill:none;stroke-width:1.8;stroke-linejoin:round}svg .band{fill-opacity:.18;stroke:none}\n"
    "svg .diagonal{stroke:#d62728;stroke-width:1;stroke-dasharray:4 3;fill:none;opacity:.5}\n"
    "svg .cls{font-size:11px}\n"
    ".heatmap{background:#fff;border:1px solid #ddd;border-radius:6px}\n"
    "table.kv{border-collapse:collapse;background:#fff}table.kv th,table.kv td{border:1px solid #ddd;"
    "padding:4px 10px;text-align:left;vertical-align:top}table.kv th{background:#f1f1f1;font-weight:600}\n"
    "pre{background:#fff;border:1px solid #ddd;border-radius:6px;padding:10px;overflow:auto;max-height:600px;tab-size:4}\n"
    ".warn{background:#fff3cd;border:1px solid #e0c060;padding:8px 12px;border-radius:6px}\n"
    ".note{color:#666}\n";

static void dj_report_page(FILE *f, const char *rundir, const char *metrics_path, const dj_metrics_data *d) {
    fprintf(f, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>dojo report: ");
    dj_html_escape(f, rundir);
    fprintf(f, "</title>\n<style>\n%s</style>\n</head>\n<body>\n<h1>dojo run report</h1>\n<p class=\"note\">",
            dj_report_css);
    dj_html_escape(f, rundir);
    fprintf(f, "</p>\n");
    if (d->records == 0) {
        fprintf(f, "<p class=\"warn\" id=\"empty\">This run has no metrics yet: ");
        dj_html_escape(f, metrics_path);
        fprintf(f, " holds no records. The plots below are empty.</p>\n");
    }
    if (d->truncated)
        fprintf(f, "<p class=\"warn\" id=\"truncated\">The last line of metrics.jsonl was cut short (the run was "
                   "interrupted) and is not shown.</p>\n");
    dj_report_summary(f, rundir);
    fprintf(f, "<section id=\"glance\">\n<h2>From the metrics</h2>\n");
    dj_report_glance(f, d);
    fprintf(f, "</section>\n<section id=\"plots\">\n<h2>Training curves</h2>\n<div class=\"plots\">\n");
    dj_plot_points *pts = malloc(3 * sizeof *pts);
    for (size_t i = 0; pts && i < sizeof dj_plots / sizeof dj_plots[0]; i++)
        dj_plot_write(f, d, &dj_plots[i], pts);
    free(pts);
    fprintf(f, "</div>\n</section>\n");
    dj_confusion_write(f, d);
    dj_report_config(f, rundir);
    fprintf(f, "<p class=\"note\">Written by dojo report. Self-contained: no scripts, no network.</p>\n"
               "</body>\n</html>\n");
}

dj_status dj_report_write(const char *rundir, const char *out_path) {
    struct stat st;
    if (!rundir || !rundir[0])
        return dj_error_set(DJ_ERR_INVALID, "dj_report_write", "empty run folder name");
    if (strlen(rundir) > 4000 || (out_path && strlen(out_path) > 4000))
        return dj_error_set(DJ_ERR_INVALID, "dj_report_write", "path longer than 4000 bytes");
    if (stat(rundir, &st) != 0 || !S_ISDIR(st.st_mode))
        return dj_error_set(DJ_ERR_NOT_FOUND, rundir, "run folder not found");
    char metrics[4096], out[4096];
    snprintf(metrics, sizeof metrics, "%s/metrics.jsonl", rundir);
    if (out_path)
        snprintf(out, sizeof out, "%s", out_path);
    else
        snprintf(out, sizeof out, "%s/report.html", rundir);
    if (access(metrics, F_OK) != 0)
        return dj_error_set(DJ_ERR_NOT_FOUND, rundir, "no metrics.jsonl in the run folder");
    dj_metrics_data *d;
    DJ_TRY(dj_metrics_read(metrics, &d));
    dj_fs_temp t;
    dj_status s = dj_fs_temp_open(&t, out);
    if (s != DJ_OK) {
        dj_metrics_data_free(d);
        return s;
    }
    dj_report_page(t.f, rundir, metrics, d);
    dj_metrics_data_free(d);
    return dj_fs_temp_commit(&t);
}
