/* test_forward_parity.c — `dojo forward` (dj_checkpoint_forward) on full-width
 * torchvision networks: r3d_18, mc3_18 and r2plus1d_18 state dicts, written
 * here from the whole-network fixtures' hash init exactly as torchvision
 * names and shapes them (num_batches_tracked included), must give the eval
 * logits PyTorch computed for the same weights and input
 * (tests/fixtures/nets: "logits_eval"). The weights are made at test time,
 * so full-size networks are checked without committing 130 MB of fixtures. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dojo/dojo.h"
#include "support/fixture.h"
#include "support/test.h"

/* The fixture's state dict as a torchvision-style safetensors file. */
static int write_state_dict(const dj_fixture_param *params, int n, const char *path) {
    dj_st_writer *w = NULL;
    if (dj_safetensors_writer_create(&w) != DJ_OK)
        return 0;
    int ok = 1;
    for (int i = 0; i < n && ok; i++) {
        const dj_fixture_param *p = &params[i];
        if (p->is_int) {
            int64_t tracked = 1; /* torchvision's counter: present, ignored in eval */
            ok = dj_safetensors_writer_add(w, p->name, DJ_ST_I64, p->ndim, p->shape, &tracked, DJ_ST_COPY) == DJ_OK;
            continue;
        }
        float *data = malloc((size_t)(p->numel ? p->numel : 1) * sizeof *data);
        if (!data) {
            ok = 0;
            break;
        }
        if (!strcmp(p->init, "hash"))
            dj_fixture_hash_init(p->name, data, p->numel, p->scale);
        else
            for (int64_t k = 0; k < p->numel; k++)
                data[k] = !strcmp(p->init, "ones") ? 1.0f : 0.0f;
        ok = dj_safetensors_writer_add(w, p->name, DJ_ST_F32, p->ndim, p->shape, data, DJ_ST_COPY) == DJ_OK;
        free(data);
    }
    ok = ok && dj_safetensors_write_atomic(w, path) == DJ_OK;
    dj_safetensors_writer_free(w);
    return ok;
}

static int write_input(const dj_safetensors *st, const char *path) {
    dj_st_view v;
    if (dj_safetensors_find(st, "input", &v) != DJ_OK || v.ndim != 5)
        return 0;
    int64_t n = 1;
    for (int d = 0; d < 5; d++)
        n *= v.shape[d];
    float *x = malloc((size_t)n * sizeof *x);
    dj_st_writer *w = NULL;
    int ok = x && dj_safetensors_read_f32(st, "input", 5, v.shape, x) == DJ_OK &&
             dj_safetensors_writer_create(&w) == DJ_OK &&
             dj_safetensors_writer_add(w, "input", DJ_ST_F32, 5, v.shape, x, DJ_ST_COPY) == DJ_OK &&
             dj_safetensors_write_atomic(w, path) == DJ_OK;
    dj_safetensors_writer_free(w);
    free(x);
    return ok;
}

static void forward_parity(const char *net, double rtol) {
    char rel[64], weights[1024], input[1024], output[1024];
    snprintf(rel, sizeof rel, "nets/%s.safetensors", net);
    dj_safetensors *st = dj_fixture_open(rel);
    if (!st)
        return;
    int n = 0;
    dj_fixture_param *params = dj_fixture_params(st, &n);
    snprintf(weights, sizeof weights, "%s/%s_tv.safetensors", dj_test_tmpdir(), net);
    snprintf(input, sizeof input, "%s/%s_input.safetensors", dj_test_tmpdir(), net);
    snprintf(output, sizeof output, "%s/%s_logits.safetensors", dj_test_tmpdir(), net);
    CHECK_MSG(params && write_state_dict(params, n, weights), "%s: %s", net, dj_error_message());
    CHECK_MSG(write_input(st, input), "%s: %s", net, dj_error_message());
    CHECK_MSG(dj_checkpoint_forward(net, weights, input, output, 2) == DJ_OK, "%s: %s", net, dj_error_message());
    dj_safetensors *out = NULL;
    if (dj_safetensors_open(output, &out) == DJ_OK) {
        float logits[20];
        CHECK_MSG(dj_safetensors_read_f32(out, "logits", 2, (int64_t[]){2, 10}, logits) == DJ_OK, "%s",
                  dj_error_message());
        dj_fixture_check_close(st, "logits_eval", logits, 20, rtol, 1e-7); /* logits are ~0.05 */
        dj_safetensors_close(out);
    } else {
        CHECK_MSG(0, "%s: no logits: %s", net, dj_error_message());
    }
    free(params);
    dj_safetensors_close(st);
}

static void test_r3d_18(void) { forward_parity("r3d_18", 1e-4); }
static void test_mc3_18(void) { forward_parity("mc3_18", 1e-4); }
static void test_r2plus1d_18(void) { forward_parity("r2plus1d_18", 1e-4); }

int main(void) {
    DJ_RUN(test_r3d_18);
    DJ_RUN(test_mc3_18);
    DJ_RUN(test_r2plus1d_18);
    return dj_test_finish();
}
