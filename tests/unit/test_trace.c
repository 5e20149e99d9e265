/* test_trace.c — the Chrome trace timeline: events as recorded (ts/dur in
 * microseconds from the trace's start, pid, lanes, args), valid JSON (names
 * escaped), lane names, a full buffer that stops recording and counts the
 * rest, no allocation while recording, bad sizes and unwritable paths. */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "dojo/trace.h"
#include "support/test.h"

static cJSON *load(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return cJSON_Parse(buf);
}

static const cJSON *event_named(const cJSON *events, const char *name, int nth) {
    const cJSON *e;
    cJSON_ArrayForEach(e, events) {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(e, "name");
        if (cJSON_IsString(n) && !strcmp(n->valuestring, name) && nth-- == 0)
            return e;
    }
    return NULL;
}

static double num(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : -12345;
}

static void test_events_written_as_recorded(void) {
    dj_trace *t = NULL;
    double before = dj_trace_now();
    CHECK(dj_trace_create(3, 16, &t) == DJ_OK);
    if (!t)
        return;
    double t0 = dj_trace_now();
    dj_trace_add(t, "step", DJ_LANE_COMPUTE, t0 + 0.001, t0 + 0.004, 7, -1, -1);
    dj_trace_add(t, "all-reduce", DJ_LANE_BUCKET0 + 2, t0 + 0.002, t0 + 0.003, 7, 2, 4096);
    dj_trace_add(t, "odd \"name\"\\", DJ_LANE_DATA, t0 + 0.003, t0 + 0.001, -1, -1, -1); /* ends before it starts */
    CHECK_EQ_INT((int)dj_trace_count(t), 3);
    CHECK_EQ_INT((int)dj_trace_dropped(t), 0);
    char path[1024];
    snprintf(path, sizeof path, "%s/t.json", dj_test_tmpdir());
    CHECK(dj_trace_write(t, path, 4) == DJ_OK);
    cJSON *root = load(path);
    CHECK(root != NULL);
    const cJSON *ev = cJSON_GetObjectItemCaseSensitive(root, "traceEvents");
    CHECK(cJSON_IsArray(ev));
    const cJSON *step = event_named(ev, "step", 0), *ar = event_named(ev, "all-reduce", 0);
    const cJSON *odd = event_named(ev, "odd \"name\"\\", 0);
    CHECK(step && ar && odd);
    if (step && ar && odd) {
        /* us since creation, which came between `before` and t0: however
         * long that took (a loaded machine), 1000 <= ts <= 1000 + (t0 - before) */
        double ts = num(step, "ts"), slack = (t0 - before) * 1e6;
        CHECK_MSG(ts >= 1000.0 - 0.01 && ts <= 1000.0 + slack + 0.01, "step ts %.3f us, expected 1000 .. %.3f", ts,
                  1000.0 + slack);
        CHECK_CLOSE(num(step, "dur"), 3000.0, 1e-6, 0.01);
        CHECK_EQ_INT((int)num(step, "pid"), 3);
        CHECK_EQ_INT((int)num(step, "tid"), DJ_LANE_COMPUTE);
        CHECK_EQ_INT((int)num(cJSON_GetObjectItemCaseSensitive(step, "args"), "step"), 7);
        CHECK(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(step, "args"), "bucket") == NULL);
        const cJSON *args = cJSON_GetObjectItemCaseSensitive(ar, "args");
        CHECK_EQ_INT((int)num(args, "bucket"), 2);
        CHECK_EQ_INT((int)num(args, "bytes"), 4096);
        CHECK_EQ_INT((int)num(ar, "tid"), DJ_LANE_BUCKET0 + 2);
        CHECK_STR_CONTAINS(cJSON_GetObjectItemCaseSensitive(ar, "ph")->valuestring, "X");
        CHECK(num(odd, "dur") == 0.0); /* clamped, never negative */
    }
    /* metadata: the process and every lane used are named */
    const cJSON *proc = event_named(ev, "process_name", 0);
    CHECK(proc && !strcmp(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(proc, "args"), "name")
                              ->valuestring,
                          "rank 3 of 4"));
    int lanes = 0;
    for (int k = 0; event_named(ev, "thread_name", k); k++)
        lanes++;
    CHECK_EQ_INT(lanes, 3);
    const cJSON *other = cJSON_GetObjectItemCaseSensitive(root, "otherData");
    CHECK_EQ_INT((int)num(other, "ranks"), 4);
    CHECK_EQ_INT((int)num(other, "events"), 3);
    CHECK_EQ_INT((int)num(other, "dropped"), 0);
    cJSON_Delete(root);
    dj_trace_free(t);
}

static void test_full_buffer_stops_recording(void) {
    dj_trace *t = NULL;
    CHECK(dj_trace_create(0, 4, &t) == DJ_OK);
    if (!t)
        return;
    double now = dj_trace_now();
    for (int i = 0; i < 10; i++)
        dj_trace_add(t, "forward", DJ_LANE_COMPUTE, now, now + 1e-3, i, -1, -1);
    CHECK_EQ_INT((int)dj_trace_count(t), 4);
    CHECK_EQ_INT((int)dj_trace_dropped(t), 6);
    char path[1024];
    snprintf(path, sizeof path, "%s/full.json", dj_test_tmpdir());
    CHECK(dj_trace_write(t, path, 1) == DJ_OK);
    cJSON *root = load(path);
    const cJSON *other = cJSON_GetObjectItemCaseSensitive(root, "otherData");
    CHECK_EQ_INT((int)num(other, "dropped"), 6);
    CHECK_EQ_INT((int)num(other, "capacity"), 4);
    CHECK(event_named(cJSON_GetObjectItemCaseSensitive(root, "traceEvents"), "forward", 3) != NULL);
    CHECK(event_named(cJSON_GetObjectItemCaseSensitive(root, "traceEvents"), "forward", 4) == NULL);
    cJSON_Delete(root);
    dj_trace_free(t);
    dj_trace_add(NULL, "x", 0, 0, 0, -1, -1, -1); /* no trace: nothing happens */
}

static void test_recording_allocates_nothing(void) {
#if defined(__SANITIZE_ADDRESS__)
    SKIP("malloc statistics are not meaningful under AddressSanitizer");
#else
    dj_trace *t = NULL;
    CHECK(dj_trace_create(0, 512, &t) == DJ_OK);
    if (!t)
        return;
    struct mallinfo2 before = mallinfo2();
    for (int i = 0; i < 1000; i++) /* fills the buffer, then drops (one warning) */
        dj_trace_add(t, "backward", DJ_LANE_COMPUTE, dj_trace_now(), dj_trace_now(), i, -1, -1);
    struct mallinfo2 after = mallinfo2();
    CHECK_EQ_INT((int)after.uordblks, (int)before.uordblks);
    CHECK_EQ_INT((int)after.hblkhd, (int)before.hblkhd);
    CHECK_EQ_INT((int)dj_trace_dropped(t), 488);
    dj_trace_free(t);
#endif
}

static void test_bad_sizes_and_paths(void) {
    dj_trace *t = (dj_trace *)1;
    CHECK(dj_trace_create(0, 0, &t) == DJ_ERR_INVALID);
    CHECK(t == NULL);
    CHECK_STR_CONTAINS(dj_error_message(), "capacity 0");
    CHECK(dj_trace_create(0, (int64_t)1 << 40, &t) == DJ_ERR_INVALID);
    CHECK(dj_trace_create(0, 2, &t) == DJ_OK);
    CHECK(dj_trace_write(t, "/nonexistent-dir/trace.json", 1) == DJ_ERR_IO);
    CHECK_STR_CONTAINS(dj_error_message(), "/nonexistent-dir/trace.json");
    dj_trace_free(t);
}

int main(void) {
    DJ_RUN(test_events_written_as_recorded);
    DJ_RUN(test_full_buffer_stops_recording);
    DJ_RUN(test_recording_allocates_nothing);
    DJ_RUN(test_bad_sizes_and_paths);
    return dj_test_finish();
}
