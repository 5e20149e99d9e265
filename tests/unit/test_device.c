/* test_device.c — the host side of the device layer, which runs without a
 * GPU: the --device flag, version strings, device-memory planning, the
 * pinned ring's bookkeeping, the error when no GPU (or no CUDA) is there, and
 * the CUDA operator table covering every CPU graph operator. */
#include <string.h>

#include "dojo/device.h"
#include "dojo/graph.h"
#include "dojo/ops_cuda.h"
#include "support/test.h"

static void test_parse_valid(void) {
    dj_device_spec s;
    char buf[32];
    CHECK_EQ_INT(dj_device_parse("cpu", "--device", &s), DJ_OK);
    CHECK_EQ_INT(s.kind, DJ_DEVICE_CPU);
    CHECK(strcmp(dj_device_spec_string(&s, buf, sizeof buf), "cpu") == 0);
    CHECK_EQ_INT(dj_device_parse("cuda", "--device", &s), DJ_OK);
    CHECK_EQ_INT(s.kind, DJ_DEVICE_CUDA);
    CHECK_EQ_INT(s.index, 0);
    CHECK(strcmp(dj_device_spec_string(&s, buf, sizeof buf), "cuda:0") == 0);
    CHECK_EQ_INT(dj_device_parse("cuda:3", "--device", &s), DJ_OK);
    CHECK_EQ_INT(s.index, 3);
    CHECK_EQ_INT(dj_device_parse("cuda:1023", "--device", &s), DJ_OK);
    CHECK_EQ_INT(s.index, 1023);
    CHECK(strcmp(dj_device_spec_string(&s, buf, sizeof buf), "cuda:1023") == 0);
}

static void test_parse_invalid(void) {
    const char *bad[] = {"gpu", "", "cuda:", "cuda:x", "cuda:-1", "cuda:1024", "cuda:1x", "CUDA", "cuda0",
                         "cpu:0", "cuda:99999", " cuda", "cuda:+1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        dj_device_spec s = {DJ_DEVICE_CUDA, 7};
        CHECK_EQ_INT(dj_device_parse(bad[i], "--device", &s), DJ_ERR_INVALID);
        CHECK_STR_CONTAINS(dj_error_message(), "--device");
        CHECK_STR_CONTAINS(dj_error_message(), "expected cpu, cuda or cuda:N");
    }
    CHECK_EQ_INT(dj_device_parse(NULL, "--device", &(dj_device_spec){0}), DJ_ERR_INVALID);
}

static void test_version_strings(void) {
    char b[32];
    CHECK(strcmp(dj_cuda_version_string(13000, b, sizeof b), "13.0") == 0);
    CHECK(strcmp(dj_cuda_version_string(12040, b, sizeof b), "12.4") == 0);
    CHECK(strcmp(dj_lib_version_string(91900, b, sizeof b), "9.19.0") == 0);  /* cuDNN */
    CHECK(strcmp(dj_lib_version_string(130100, b, sizeof b), "13.1.0") == 0); /* cuBLASLt */
    CHECK(strcmp(dj_lib_version_string(22809, b, sizeof b), "2.28.9") == 0);  /* NCCL */
    CHECK(strcmp(dj_lib_version_string(2708, b, sizeof b), "2.7.8") == 0);    /* NCCL < 2.9 */
}

static void test_mem_plan_aligns(void) {
    dj_mem_plan p = {0};
    size_t o[4];
    CHECK_EQ_INT(dj_mem_plan_add(&p, 10, "a", &o[0]), DJ_OK);
    CHECK_EQ_INT(dj_mem_plan_add(&p, 256, "b", &o[1]), DJ_OK);
    CHECK_EQ_INT(dj_mem_plan_add(&p, 0, "c", &o[2]), DJ_OK);
    CHECK_EQ_INT(dj_mem_plan_add(&p, 1, "d", &o[3]), DJ_OK);
    CHECK(o[0] == 0 && o[1] == 256 && o[2] == 512 && o[3] == 512);
    CHECK(p.total == 513);
    CHECK_EQ_INT(p.count, 4);
    for (int i = 0; i < 4; i++)
        CHECK(o[i] % DJ_DEVICE_ALIGN == 0);
}

static void test_mem_plan_overflow(void) {
    dj_mem_plan p = {0};
    size_t o = 0;
    CHECK_EQ_INT(dj_mem_plan_add(&p, 100, "a", &o), DJ_OK);
    CHECK_EQ_INT(dj_mem_plan_add(&p, SIZE_MAX - 200, "huge", &o), DJ_ERR_RANGE);
    CHECK_STR_CONTAINS(dj_error_message(), "huge");
    CHECK(p.total == 100); /* unchanged by the failure */
    p.total = SIZE_MAX - 10;
    CHECK_EQ_INT(dj_mem_plan_add(&p, 1, "b", &o), DJ_ERR_RANGE);
}

static void test_slot_ring_order(void) {
    dj_slot_ring r;
    int slot = -1, wait = -1;
    CHECK_EQ_INT(dj_slot_ring_init(&r, 0), DJ_ERR_INVALID);
    CHECK_EQ_INT(dj_slot_ring_init(&r, DJ_RING_MAX_SLOTS + 1), DJ_ERR_INVALID);
    CHECK_EQ_INT(dj_slot_ring_init(&r, 3), DJ_OK);
    for (int round = 0; round < 3; round++)
        for (int i = 0; i < 3; i++) {
            CHECK_EQ_INT(dj_slot_ring_acquire(&r, &slot, &wait), DJ_OK);
            CHECK_EQ_INT(slot, i);
            CHECK_EQ_INT(wait, round > 0); /* a slot's earlier copy may still run */
            CHECK_EQ_INT(dj_slot_ring_submit(&r, slot), DJ_OK);
        }
    CHECK(r.submitted == 9);
}

static void test_slot_ring_misuse(void) {
    dj_slot_ring r;
    int slot = -1, wait = 0;
    CHECK_EQ_INT(dj_slot_ring_init(&r, 1), DJ_OK);
    CHECK_EQ_INT(dj_slot_ring_submit(&r, 0), DJ_ERR_INVALID); /* never acquired */
    CHECK_EQ_INT(dj_slot_ring_acquire(&r, &slot, &wait), DJ_OK);
    CHECK_EQ_INT(dj_slot_ring_acquire(&r, &slot, &wait), DJ_ERR_INVALID); /* still being filled */
    CHECK_STR_CONTAINS(dj_error_message(), "before it was submitted");
    CHECK_EQ_INT(dj_slot_ring_submit(&r, 5), DJ_ERR_INVALID);
    CHECK_EQ_INT(dj_slot_ring_submit(&r, 0), DJ_OK);
    CHECK_EQ_INT(dj_slot_ring_submit(&r, 0), DJ_ERR_INVALID); /* submitted twice */
}

/* Without a GPU every entry point says why; with one, opening works. */
static void test_no_device_error(void) {
    int n = -1;
    dj_status st = dj_cuda_device_count(&n);
    if (st == DJ_OK) {
        CHECK(n >= 1);
        dj_device_spec s = {DJ_DEVICE_CUDA, n}; /* one past the last GPU */
        dj_device *d = NULL;
        CHECK_EQ_INT(dj_device_open(&s, 0, "--device", &d), DJ_ERR_RANGE);
        CHECK(d == NULL);
        return;
    }
    CHECK_EQ_INT(st, DJ_ERR_UNSUPPORTED);
    CHECK_EQ_INT(n, 0);
    const char *want = dj_cuda_built() ? "no CUDA device: " : "built without CUDA";
    CHECK_STR_CONTAINS(dj_error_message(), want);
    dj_device *d = (dj_device *)1;
    CHECK_EQ_INT(dj_device_open(&(dj_device_spec){DJ_DEVICE_CUDA, 0}, 1 << 20, "--device", &d), DJ_ERR_UNSUPPORTED);
    CHECK(d == NULL);
    CHECK_STR_CONTAINS(dj_error_message(), want);
    CHECK_STR_CONTAINS(dj_error_message(), "--device");
    dj_gpu_info info;
    CHECK(dj_cuda_device_info(0, &info) != DJ_OK);
    dj_device_free(NULL);
}

static void test_versions(void) {
    dj_cuda_versions v;
    dj_status st = dj_cuda_versions_get(&v);
    if (!dj_cuda_built()) {
        CHECK_EQ_INT(st, DJ_ERR_UNSUPPORTED);
        CHECK_STR_CONTAINS(dj_error_message(), "built without CUDA");
        CHECK(v.runtime == 0 && v.cudnn == 0);
        CHECK_EQ_INT(dj_nccl_built(), 0);
        return;
    }
    CHECK_EQ_INT(st, DJ_OK);
    CHECK(v.runtime >= 11000);  /* the runtime answers without a driver */
    CHECK(v.cudnn >= 80000);
    CHECK(v.cublaslt >= 110000); /* opened with dlopen */
    CHECK(dj_nccl_built() ? v.nccl > 0 : v.nccl == 0);
}

/* Every operator of the CPU graph has an entry, and no entry names an
 * operator that does not exist. (tests/cli/test_cuda_table.sh checks the
 * same against the source, so a new operator cannot be forgotten.) */
extern const dj_op_def dj_op_conv3d, dj_op_batchnorm, dj_op_batchnorm_relu, dj_op_layernorm, dj_op_act, dj_op_add,
    dj_op_mul, dj_op_add_relu, dj_op_global_avgpool, dj_op_adaptive_avgpool, dj_op_maxpool3d, dj_op_linear, dj_op_reshape,
    dj_op_permute, dj_op_dropout, dj_op_patch_embed, dj_op_attention, dj_op_mean_tokens, dj_op_cross_entropy;

static void test_op_table_complete(void) {
    const dj_op_def *ops[] = {&dj_op_conv3d,         &dj_op_batchnorm,       &dj_op_batchnorm_relu,
                              &dj_op_layernorm,      &dj_op_act,             &dj_op_add,
                              &dj_op_mul,            &dj_op_add_relu,        &dj_op_global_avgpool,
                              &dj_op_adaptive_avgpool, &dj_op_maxpool3d,     &dj_op_linear,
                              &dj_op_reshape,        &dj_op_permute,         &dj_op_dropout,
                              &dj_op_patch_embed,    &dj_op_attention,       &dj_op_mean_tokens,
                              &dj_op_cross_entropy};
    int nops = (int)(sizeof ops / sizeof ops[0]), entries = 0, cuda = 0;
    for (const dj_cuda_op_entry *e = dj_cuda_op_table; e->name; e++) {
        int found = 0;
        for (int i = 0; i < nops; i++)
            found += strcmp(ops[i]->name, e->name) == 0;
        CHECK_MSG(found == 1, "table entry %s is not a CPU operator", e->name);
        for (const dj_cuda_op_entry *f = e + 1; f->name; f++)
            CHECK_MSG(strcmp(e->name, f->name) != 0, "%s listed twice", e->name);
        entries++;
        cuda += e->cuda != NULL;
    }
    CHECK_EQ_INT(entries, nops);
    CHECK(cuda >= 13); /* the ResNet-style networks' operators all have CUDA kernels */
    const char *resnet[] = {"conv3d",         "batch_norm", "batch_norm_relu", "activation",   "add_relu",
                            "max_pool3d",     "global_avgpool", "linear",      "cross_entropy"};
    for (size_t i = 0; i < sizeof resnet / sizeof resnet[0]; i++)
        for (const dj_cuda_op_entry *e = dj_cuda_op_table; e->name; e++)
            if (strcmp(e->name, resnet[i]) == 0)
                CHECK_MSG(e->cuda != NULL, "%s has no CUDA kernel", e->name);
}

int main(void) {
    DJ_RUN(test_parse_valid);
    DJ_RUN(test_parse_invalid);
    DJ_RUN(test_version_strings);
    DJ_RUN(test_mem_plan_aligns);
    DJ_RUN(test_mem_plan_overflow);
    DJ_RUN(test_slot_ring_order);
    DJ_RUN(test_slot_ring_misuse);
    DJ_RUN(test_no_device_error);
    DJ_RUN(test_versions);
    DJ_RUN(test_op_table_complete);
    return dj_test_finish();
}
