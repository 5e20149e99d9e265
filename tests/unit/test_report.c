/* test_report.c — the HTML report: every plot and the confusion matrix are in
 * the page, hostile strings from config/summary/class names are escaped, long
 * runs are downsampled, single points, NaN/inf, empty and truncated metrics
 * are handled, and missing or garbage inputs fail naming the file. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dojo/dojo.h"
#include "support/test.h"

static const char *run_dir(const char *name) {
    static char buf[8][1024];
    static int next;
    char *p = buf[next++ % 8];
    snprintf(p, 1024, "%s/%s", dj_test_tmpdir(), name);
    return p;
}

static char *read_all(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *p = malloc((size_t)len + 1);
    if (p && fread(p, 1, (size_t)len, f) != (size_t)len) {
        free(p);
        p = NULL;
    }
    fclose(f);
    if (p)
        p[len] = '\0';
    return p;
}

static void write_file(const char *dir, const char *name, const char *text) {
    char path[1100];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static int count(const char *text, const char *needle) {
    int n = 0;
    for (const char *p = text; p && (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

/* The points="..." of the polyline of series "split/key", or NULL. */
static int polyline_points(const char *html, const char *series) {
    char want[128];
    snprintf(want, sizeof want, "data-series=\"%s\"", series);
    const char *p = html ? strstr(html, want) : NULL;
    p = p ? strstr(p, "points=\"") : NULL;
    if (!p)
        return -1;
    p += 8;
    int n = *p == '"' ? 0 : 1;
    for (; *p && *p != '"'; p++)
        n += *p == ' ';
    return n;
}

/* A run of `steps` steps with every key of the report, val every `every`. */
static const char *const hostile = "</script><b>x&y\"'</b>";

static void fake_run(const char *dir, int64_t steps, int every) {
    static const char *const train_keys[] = {"loss", "lr", "top1", "clips_per_s", "data_wait"};
    static const char *const val_keys[] = {"top1", "top5", "loss"};
    const char *classes[] = {"walk", "run", hostile};
    dj_metrics *m = NULL;
    if (dj_metrics_open(dir, &m) != DJ_OK) {
        dj_test_fail_at(__FILE__, __LINE__, "open: %s", dj_error_message());
        return;
    }
    for (int64_t s = 1; s <= steps; s++) {
        double v[5] = {2 * exp(-(double)s / 100) + 0.1, 0.01, 0.5, 90 + (double)(s % 5), 0.1};
        CHECK(dj_metrics_log(m, "train", s / 100, s, (double)s, 5, train_keys, v) == DJ_OK);
        if (s % every == 0) {
            double vv[3] = {0.5, 0.8, 1.0};
            int64_t cm[9] = {5, 1, 0, 0, 6, 1, 2, 0, 4};
            CHECK(dj_metrics_log(m, "val", s / 100, s, (double)s, 3, val_keys, vv) == DJ_OK);
            CHECK(dj_metrics_log_confusion(m, s / 100, s, 3, cm, classes) == DJ_OK);
        }
    }
    dj_metrics_close(m);
}

static char *report(const char *dir) {
    char path[1100];
    snprintf(path, sizeof path, "%s/report.html", dir);
    unlink(path);
    if (dj_report_write(dir, NULL) != DJ_OK) {
        dj_test_fail_at(__FILE__, __LINE__, "report: %s", dj_error_message());
        return NULL;
    }
    return read_all(path);
}

static void test_report_has_every_plot_and_matrix(void) {
    const char *dir = run_dir("full");
    mkdir(dir, 0755);
    fake_run(dir, 400, 100);
    write_file(dir, "summary.json",
               "{\"val_top1\":0.75,\"val_top5\":0.95,\"epochs\":4,\"steps\":400,\"wall_s\":3725,"
               "\"clips_per_s\":92.5,\"checkpoint\":\"ckpt/last.safetensors\"}");
    char *html = report(dir);
    CHECK(html != NULL);
    if (!html)
        return;
    CHECK(strncmp(html, "<!DOCTYPE html>", 15) == 0);
    static const char *const plots[] = {"plot-loss", "plot-accuracy", "plot-lr", "plot-throughput", "plot-data_wait"};
    for (int i = 0; i < 5; i++)
        CHECK_STR_CONTAINS(html, plots[i]);
    CHECK_EQ_INT(count(html, "<svg "), 6); /* five plots and the heat map */
    CHECK_EQ_INT(count(html, "</svg>"), 6);
    static const char *const series[] = {"train/loss", "val/loss", "val/top1", "val/top5", "train/top1",
                                         "train/lr", "train/clips_per_s", "train/data_wait"};
    for (int i = 0; i < 8; i++) {
        int n = polyline_points(html, series[i]);
        CHECK_MSG(n == (i < 1 || i > 3 ? 400 : 4), "%s: %d points", series[i], n);
    }
    CHECK_EQ_INT(count(html, "<polyline"), 8);
    CHECK_EQ_INT(count(html, "<polygon"), 0); /* 400 points: drawn as they are */
    CHECK_EQ_INT(count(html, "no data logged"), 0);
    /* axes: tick labels, axis titles; data-wait as percent */
    CHECK_STR_CONTAINS(html, ">step</text>");
    CHECK_STR_CONTAINS(html, ">clips/s</text>");
    CHECK_STR_CONTAINS(html, ">100%</text>");
    CHECK_STR_CONTAINS(html, ">400</text>");
    /* the confusion matrix: 9 cells with counts, class names, the accuracy */
    CHECK_STR_CONTAINS(html, "id=\"confusion\"");
    CHECK_EQ_INT(count(html, "<title>true "), 9);
    CHECK_STR_CONTAINS(html, "step 400, 3 classes, 19 clips, 78.95% on the diagonal");
    CHECK_STR_CONTAINS(html, ">walk</text>");
    CHECK_STR_CONTAINS(html, "true walk, predicted run: 1 (16.7% of the row)");
    /* the summary, in order, wall time readable */
    CHECK_STR_CONTAINS(html, "<tr><th>val_top1</th><td>0.75</td></tr>\n<tr><th>val_top5</th><td>0.95</td></tr>");
    CHECK_STR_CONTAINS(html, "3725 (1h 02m 05s)");
    CHECK_STR_CONTAINS(html, "ckpt/last.safetensors");
    CHECK_STR_CONTAINS(html, "No config.json in the run folder.");
    /* self-contained */
    CHECK(!strstr(html, "<script"));
    CHECK(!strstr(html, "http://") || count(html, "http://") == count(html, "xmlns=\"http://www.w3.org/2000/svg\""));
    CHECK(!strstr(html, "https://"));
    CHECK(!strstr(html, "<link"));
    CHECK(!strstr(html, "nan") && !strstr(html, "inf\""));
    free(html);
}

static void test_report_escapes_hostile_strings(void) {
    const char *dir = run_dir("hostile");
    mkdir(dir, 0755);
    fake_run(dir, 20, 10);
    write_file(dir, "config.json",
               "{\"model\":\"r3d_mini\",\"note\":\"</script><b>x&y\\\"'</b>\",\"</pre><i>key\":1,\"lr\":0.1}");
    write_file(dir, "summary.json", "{\"val_top1\":0.5,\"<img src=x>\":\"<script>alert(1)</script>\",\"list\":[1,\"<u>\"]}");
    char *html = report(dir);
    CHECK(html != NULL);
    if (!html)
        return;
    CHECK(!strstr(html, "<b>"));
    CHECK(!strstr(html, "<i>"));
    CHECK(!strstr(html, "<img"));
    CHECK(!strstr(html, "<script"));
    CHECK(!strstr(html, "<u>"));
    CHECK_EQ_INT(count(html, "</pre>"), 1); /* only our own */
    CHECK_STR_CONTAINS(html, "&lt;/script&gt;&lt;b&gt;x&amp;y&quot;&#39;&lt;/b&gt;");   /* class names */
    CHECK_STR_CONTAINS(html, "&quot;note&quot;:\t&quot;&lt;/script&gt;&lt;b&gt;x&amp;y\\&quot;&#39;&lt;/b&gt;&quot;");
    CHECK_STR_CONTAINS(html, "&quot;&lt;/pre&gt;&lt;i&gt;key&quot;:\t1");
    CHECK_STR_CONTAINS(html, "<th>&lt;img src=x&gt;</th><td>&lt;script&gt;alert(1)&lt;/script&gt;</td>");
    CHECK_STR_CONTAINS(html, "[1,&quot;&lt;u&gt;&quot;]");
    /* the configuration is pretty-printed */
    CHECK_STR_CONTAINS(html, "<pre>{\n\t&quot;model&quot;:\t&quot;r3d_mini&quot;,\n");
    free(html);
}

static void test_report_invalid_config_shown_as_text(void) {
    const char *dir = run_dir("badcfg");
    mkdir(dir, 0755);
    fake_run(dir, 5, 5);
    write_file(dir, "config.json", "model: <r3d>\n");
    write_file(dir, "summary.json", "[1,2]");
    char *html = report(dir);
    CHECK_STR_CONTAINS(html, "config.json is not valid JSON; shown as it is.");
    CHECK_STR_CONTAINS(html, "<pre>model: &lt;r3d&gt;\n</pre>");
    CHECK_STR_CONTAINS(html, "summary.json could not be read as a JSON object.");
    free(html);
}

static void test_report_downsamples_long_runs(void) {
    const char *dir = run_dir("long");
    mkdir(dir, 0755);
    fake_run(dir, 5000, 1000);
    char *html = report(dir);
    int n = polyline_points(html, "train/loss");
    CHECK_MSG(n == 1000, "train/loss has %d points", n);
    CHECK_EQ_INT(polyline_points(html, "val/top1"), 5);
    CHECK_EQ_INT(count(html, "<circle"), 3 * 5 + 0); /* markers only on short lines */
    CHECK_EQ_INT(count(html, "<polygon class=\"band\""), 5); /* the five downsampled train lines */
    /* the x axis spans the run, not just the bucket means: the last tick of all five plots */
    CHECK_EQ_INT(count(html, "text-anchor=\"middle\">5000</text>"), 5);
    free(html);
}

static void test_report_single_point_and_nonfinite(void) {
    const char *dir = run_dir("single");
    mkdir(dir, 0755);
    dj_metrics *m = NULL;
    CHECK(dj_metrics_open(dir, &m) == DJ_OK);
    const char *keys[] = {"loss", "lr", "clips_per_s"};
    double v1[] = {NAN, INFINITY, -INFINITY}, v2[] = {1.5, 0.1, NAN}, v3[] = {INFINITY, NAN, NAN};
    CHECK(dj_metrics_log(m, "train", 0, 1, 0, 3, keys, v1) == DJ_OK);
    CHECK(dj_metrics_log(m, "train", 0, 2, 0, 3, keys, v2) == DJ_OK);
    CHECK(dj_metrics_log(m, "train", 0, 3, 0, 3, keys, v3) == DJ_OK);
    dj_metrics_close(m);
    char *html = report(dir);
    CHECK(html != NULL);
    CHECK_EQ_INT(polyline_points(html, "train/loss"), 1);
    CHECK_EQ_INT(polyline_points(html, "train/lr"), 1);
    CHECK_EQ_INT(polyline_points(html, "train/clips_per_s"), -1); /* nothing finite */
    CHECK_EQ_INT(count(html, "<circle"), 2);
    /* whole steps on the x axis around the single point at step 2 */
    CHECK_EQ_INT(count(html, "text-anchor=\"middle\">3</text>"), 2);
    CHECK_EQ_INT(count(html, "text-anchor=\"middle\">1.5</text>"), 0);
    CHECK_STR_CONTAINS(html, "no data logged (train/clips_per_s)");
    CHECK_STR_CONTAINS(html, "no data logged (val/top1, val/top5, train/top1)");
    CHECK(!strstr(html, "nan") && !strstr(html, "NaN") && !strstr(html, "inf"));
    CHECK_STR_CONTAINS(html, "No validation confusion matrix was logged.");
    free(html);
}

static void test_report_empty_run(void) {
    const char *dir = run_dir("empty");
    mkdir(dir, 0755);
    write_file(dir, "metrics.jsonl", "");
    char *html = report(dir);
    CHECK(html != NULL);
    CHECK_STR_CONTAINS(html, "id=\"empty\">This run has no metrics yet");
    CHECK_EQ_INT(count(html, "no data logged"), 5);
    CHECK_EQ_INT(count(html, "<svg "), 5);
    CHECK_EQ_INT(count(html, "<polyline"), 0);
    CHECK_STR_CONTAINS(html, "No summary.json");
    free(html);
}

static void test_report_truncated_metrics(void) {
    const char *dir = run_dir("trunc");
    mkdir(dir, 0755);
    fake_run(dir, 30, 10);
    char path[1100];
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    FILE *f = fopen(path, "ab");
    fputs("{\"split\":\"train\",\"epoch\":0,\"step\":31,\"lo", f);
    fclose(f);
    char *html = report(dir);
    CHECK_STR_CONTAINS(html, "id=\"truncated\"");
    CHECK_EQ_INT(polyline_points(html, "train/loss"), 30);
    free(html);
}

static void test_report_errors_name_the_file(void) {
    const char *missing = run_dir("no-such-run");
    CHECK(dj_report_write(missing, NULL) == DJ_ERR_NOT_FOUND);
    CHECK_STR_CONTAINS(dj_error_message(), "no-such-run");
    CHECK_STR_CONTAINS(dj_error_message(), "run folder not found");
    const char *bare = run_dir("bare");
    mkdir(bare, 0755);
    CHECK(dj_report_write(bare, NULL) == DJ_ERR_NOT_FOUND);
    CHECK_STR_CONTAINS(dj_error_message(), "no metrics.jsonl in the run folder");
    CHECK(dj_report_write("", NULL) == DJ_ERR_INVALID);
    char *long_path = malloc(5000);
    memset(long_path, 'a', 4999);
    long_path[4999] = '\0';
    CHECK(dj_report_write(long_path, NULL) == DJ_ERR_INVALID);
    CHECK(dj_report_write(bare, long_path) == DJ_ERR_INVALID);
    free(long_path);
    /* garbage: an error naming file:line, and no page left behind */
    const char *bad = run_dir("garbage");
    mkdir(bad, 0755);
    write_file(bad, "metrics.jsonl", "{\"split\":\"train\",\"step\":1,\"loss\":1}\n<html>\n");
    CHECK(dj_report_write(bad, NULL) == DJ_ERR_FORMAT);
    CHECK_STR_CONTAINS(dj_error_message(), "garbage/metrics.jsonl:2");
    char path[1100];
    snprintf(path, sizeof path, "%s/report.html", bad);
    CHECK(access(path, F_OK) != 0);
    /* an output folder that does not exist */
    const char *ok = run_dir("okrun");
    mkdir(ok, 0755);
    write_file(ok, "metrics.jsonl", "{\"split\":\"train\",\"step\":1,\"loss\":1}\n");
    CHECK(dj_report_write(ok, run_dir("nodir/x.html")) == DJ_ERR_IO);
    CHECK_STR_CONTAINS(dj_error_message(), "nodir/x.html");
}

static void test_report_out_path(void) {
    const char *dir = run_dir("outp");
    mkdir(dir, 0755);
    fake_run(dir, 10, 5);
    const char *out = run_dir("elsewhere.html");
    CHECK(dj_report_write(dir, out) == DJ_OK);
    char *html = read_all(out);
    CHECK_EQ_INT(polyline_points(html, "train/loss"), 10);
    free(html);
    char path[1100];
    snprintf(path, sizeof path, "%s/report.html", dir);
    CHECK(access(path, F_OK) != 0);
    /* no temporary file left */
    snprintf(path, sizeof path, "%s.tmp.%ld", out, (long)getpid());
    CHECK(access(path, F_OK) != 0);
}

static void test_report_many_classes(void) {
    const char *dir = run_dir("k100");
    dj_metrics *m = NULL;
    CHECK(dj_metrics_open(dir, &m) == DJ_OK);
    if (!m)
        return;
    int k = 100;
    int64_t *cm = calloc((size_t)k * k, sizeof *cm);
    for (int i = 0; i < k; i++) {
        cm[i * k + i] = 7;
        cm[i * k + (i + 1) % k] = 2;
    }
    CHECK(dj_metrics_log_confusion(m, 1, 10, k, cm, NULL) == DJ_OK);
    free(cm);
    dj_metrics_close(m);
    char *html = report(dir);
    CHECK_EQ_INT(count(html, "<title>true "), 200); /* zero cells left out */
    CHECK_STR_CONTAINS(html, "100 classes, 900 clips, 77.78% on the diagonal");
    CHECK_EQ_INT(count(html, "class=\"cls\""), 0); /* 5-pixel cells: no labels */
    free(html);
}

/* Numbers on the axes: nice ticks for small and large ranges. */
static void test_report_axis_ticks(void) {
    const char *dir = run_dir("ticks");
    mkdir(dir, 0755);
    write_file(dir, "metrics.jsonl",
               "{\"split\":\"train\",\"step\":0,\"lr\":0.0001,\"clips_per_s\":1200000}\n"
               "{\"split\":\"train\",\"step\":1000,\"lr\":0.0005,\"clips_per_s\":2500000}\n");
    char *html = report(dir);
    CHECK_STR_CONTAINS(html, ">0.0005</text>");
    CHECK_STR_CONTAINS(html, ">0.0001</text>");
    CHECK_STR_CONTAINS(html, ">2.4M</text>");
    CHECK_STR_CONTAINS(html, ">2.6M</text>");
    CHECK_STR_CONTAINS(html, ">1000</text>");
    CHECK_STR_CONTAINS(html, ">0</text>");
    free(html);
    /* extreme numbers: no hang, no NaN, a note instead of a plot */
    write_file(dir, "metrics.jsonl",
               "{\"split\":\"train\",\"step\":1000000000000000,\"loss\":1e20,\"lr\":-1e308,\"clips_per_s\":3}\n"
               "{\"split\":\"train\",\"step\":1000000000000001,\"loss\":1.0000000000001e20,\"lr\":1e308,"
               "\"clips_per_s\":-0.0}\n");
    html = report(dir);
    CHECK(html && !strstr(html, "nan") && !strstr(html, "inf") && !strstr(html, ">-0<"));
    CHECK_EQ_INT(polyline_points(html, "train/loss"), 2);
    CHECK_EQ_INT(polyline_points(html, "train/lr"), -1);
    CHECK_STR_CONTAINS(html, "values too large to plot");
    CHECK_STR_CONTAINS(html, ">1e+15</text>");
    free(html);
    write_file(dir, "metrics.jsonl",
               "{\"split\":\"train\",\"step\":0,\"loss\":1}\n{\"split\":\"train\",\"step\":250000,\"loss\":0.5}\n");
    write_file(dir, "summary.json", "{\"steps\":250000,\"wall_s\":12345.678,\"clips_per_s\":0.000123}");
    html = report(dir);
    CHECK_STR_CONTAINS(html, ">50k</text>");
    CHECK_STR_CONTAINS(html, ">250k</text>");
    CHECK_STR_CONTAINS(html, "<th>steps</th><td>250000</td>");
    CHECK_STR_CONTAINS(html, "<th>wall_s</th><td>12345.7 (3h 25m 45s)</td>");
    CHECK_STR_CONTAINS(html, "<th>clips_per_s</th><td>0.000123</td>");
    free(html);
}

int main(void) {
    DJ_RUN(test_report_has_every_plot_and_matrix);
    DJ_RUN(test_report_escapes_hostile_strings);
    DJ_RUN(test_report_invalid_config_shown_as_text);
    DJ_RUN(test_report_downsamples_long_runs);
    DJ_RUN(test_report_single_point_and_nonfinite);
    DJ_RUN(test_report_empty_run);
    DJ_RUN(test_report_truncated_metrics);
    DJ_RUN(test_report_errors_name_the_file);
    DJ_RUN(test_report_out_path);
    DJ_RUN(test_report_many_classes);
    DJ_RUN(test_report_axis_ticks);
    return dj_test_finish();
}
