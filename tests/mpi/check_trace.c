/* check_trace.c — checks a timeline written by `dojo train --trace`:
 *   check_trace FILE RANK RANKS [--full]
 * The file must parse as JSON (cJSON) with a "traceEvents" array of
 * well-formed events: metadata ("M") naming the process and lanes, and
 * complete events ("X") with a name, ts >= 0, dur >= 0, pid = RANK and an
 * integer tid. Every event of a step lies within that step's "step" event;
 * the names step, data wait, forward, backward and optimizer occur, and with
 * RANKS > 1 also gradient wait and "all-reduce" events carrying their bucket
 * index and bytes on the bucket's lane. otherData holds rank, ranks and the
 * counts; --full expects dropped > 0 (a buffer that filled up). Exit 0 and
 * "trace ok: ..." when all holds, 1 with the first problem otherwise. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "dojo/trace.h"

static int fail(const char *what, int index) {
    printf("trace bad: %s (event %d)\n", what, index);
    return 1;
}

static char *read_all(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    if (buf)
        buf[n] = '\0';
    fclose(f);
    return buf;
}

static double num(const cJSON *o, const char *key, double dflt) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}

/* Checks one complete event; returns 0 when well formed. */
static int check_event(const cJSON *e, int i, int rank, int ranks) {
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(e, "name");
    if (!cJSON_IsString(name) || !name->valuestring[0])
        return fail("no name", i);
    if (!(num(e, "ts", -1) >= 0) || !(num(e, "dur", -1) >= 0))
        return fail("ts or dur missing or negative", i);
    if (num(e, "pid", -1) != rank)
        return fail("pid is not the rank", i);
    double tid = num(e, "tid", -1);
    if (!(tid >= 0) || tid != floor(tid))
        return fail("tid missing or not an integer", i);
    const cJSON *args = cJSON_GetObjectItemCaseSensitive(e, "args");
    if (!cJSON_IsObject(args) || !(num(args, "step", -1) >= 0))
        return fail("no args.step", i);
    if (!strcmp(name->valuestring, "all-reduce")) {
        double b = num(args, "bucket", -1);
        if (ranks < 2)
            return fail("an all-reduce in a one-rank run", i);
        if (!(b >= 0) || !(num(args, "bytes", 0) > 0) || tid != DJ_LANE_BUCKET0 + b)
            return fail("all-reduce without bucket, bytes or its bucket's lane", i);
    }
    return 0;
}

/* Every event lies inside the step event with its step number (a step
 * number may repeat with gradient accumulation: any one of them). */
static int check_nesting(const cJSON *events) {
    const double slack = 0.002; /* ts and dur are each printed to 0.001 us */
    int i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, events) {
        i++;
        const cJSON *ph = cJSON_GetObjectItemCaseSensitive(e, "ph");
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(e, "name");
        if (!cJSON_IsString(ph) || strcmp(ph->valuestring, "X") || !strcmp(name->valuestring, "step"))
            continue;
        double step = num(cJSON_GetObjectItemCaseSensitive(e, "args"), "step", -1);
        double t0 = num(e, "ts", 0), t1 = t0 + num(e, "dur", 0);
        int inside = 0;
        const cJSON *s;
        cJSON_ArrayForEach(s, events) {
            const cJSON *sn = cJSON_GetObjectItemCaseSensitive(s, "name");
            if (!cJSON_IsString(sn) || strcmp(sn->valuestring, "step") ||
                num(cJSON_GetObjectItemCaseSensitive(s, "args"), "step", -2) != step)
                continue;
            double s0 = num(s, "ts", 0), s1 = s0 + num(s, "dur", 0);
            inside |= t0 >= s0 - slack && t1 <= s1 + slack;
        }
        if (!inside)
            return fail("not within its step", i - 1);
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: check_trace FILE RANK RANKS [--full]\n");
        return 2;
    }
    const int rank = atoi(argv[2]), ranks = atoi(argv[3]), want_full = argc > 4 && !strcmp(argv[4], "--full");
    char *text = read_all(argv[1]);
    if (!text) {
        printf("trace bad: cannot read %s\n", argv[1]);
        return 1;
    }
    cJSON *root = cJSON_Parse(text);
    free(text);
    const cJSON *events = cJSON_GetObjectItemCaseSensitive(root, "traceEvents");
    if (!root || !cJSON_IsArray(events)) {
        cJSON_Delete(root);
        return fail("not JSON with a traceEvents array", -1);
    }
    const char *need[] = {"step", "data wait", "forward", "backward", "optimizer", "gradient wait", "all-reduce"};
    const int n_need = ranks > 1 ? 7 : 5;
    int found[7] = {0}, n_x = 0, n_meta = 0, i = 0, bad = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, events) {
        const cJSON *ph = cJSON_GetObjectItemCaseSensitive(e, "ph");
        if (!bad && cJSON_IsString(ph) && !strcmp(ph->valuestring, "M")) {
            const cJSON *an = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(e, "args"), "name");
            bad = !cJSON_IsString(an) ? fail("metadata without args.name", i) : 0;
            n_meta++;
        } else if (!bad && cJSON_IsString(ph) && !strcmp(ph->valuestring, "X")) {
            bad = check_event(e, i, rank, ranks);
            const char *name = cJSON_GetObjectItemCaseSensitive(e, "name")->valuestring;
            for (int k = 0; !bad && k < 7; k++)
                found[k] += !strcmp(name, need[k]);
            n_x++;
        } else if (!bad) {
            bad = fail("neither a complete (X) nor a metadata (M) event", i);
        }
        i++;
    }
    for (int k = 0; !bad && k < n_need; k++)
        if (!found[k]) {
            printf("trace bad: no '%s' event\n", need[k]);
            bad = 1;
        }
    if (!bad)
        bad = check_nesting(events);
    const cJSON *other = cJSON_GetObjectItemCaseSensitive(root, "otherData");
    if (!bad && (num(other, "rank", -1) != rank || num(other, "ranks", -1) != ranks || num(other, "events", -1) != n_x))
        bad = fail("otherData does not give this rank, the ranks and the event count", -1);
    if (!bad && (num(other, "dropped", -1) > 0) != want_full)
        bad = fail(want_full ? "expected a full buffer (dropped > 0)" : "events were dropped", -1);
    if (!bad)
        printf("trace ok: %d events (%d steps, %d all-reduces), %d lanes named, %.0f dropped\n", n_x, found[0],
               found[6], n_meta - 1, num(other, "dropped", 0));
    cJSON_Delete(root);
    return bad;
}
