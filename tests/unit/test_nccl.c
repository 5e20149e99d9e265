/* test_nccl.c — the NCCL communicator with one rank: created over the
 * single-process dj_comm, its all-reduce is the identity (sum) on device
 * memory. Without a GPU, or built without NCCL, the errors say so. The
 * multi-GPU case runs under mpirun (see README: what remains to run). */
#include <string.h>

#include "dojo/device.h"
#include "dojo/dist.h"
#include "dojo/nccl.h"
#include "support/test.h"

static void test_needs_a_device(void) {
    dj_comm *c = NULL;
    CHECK_EQ_INT(dj_comm_create(DJ_COMM_SINGLE, &c), DJ_OK);
    dj_nccl *n = (dj_nccl *)1;
    dj_status st = dj_nccl_create(c, NULL, &n);
    CHECK(n == NULL);
    if (dj_nccl_built()) {
        CHECK_EQ_INT(st, DJ_ERR_INVALID);
        CHECK_STR_CONTAINS(dj_error_message(), "--device cuda");
    } else {
        CHECK_EQ_INT(st, DJ_ERR_UNSUPPORTED);
        CHECK_STR_CONTAINS(dj_error_message(), "built without NCCL");
    }
    dj_nccl_free(NULL);
    dj_comm_free(c);
}

static void test_single_rank_allreduce(void) {
    if (!dj_nccl_built())
        SKIP("built without NCCL");
    dj_device *dev = NULL;
    dj_device_spec spec = {DJ_DEVICE_CUDA, 0};
    if (dj_device_open(&spec, 0, "test_nccl", &dev) != DJ_OK)
        SKIP(dj_error_message());
    dj_comm *c = NULL;
    dj_nccl *n = NULL;
    CHECK_EQ_INT(dj_comm_create(DJ_COMM_SINGLE, &c), DJ_OK);
    CHECK_EQ_INT(dj_nccl_create(c, dev, &n), DJ_OK);
    CHECK_EQ_INT(dj_nccl_rank(n), 0);
    CHECK_EQ_INT(dj_nccl_size(n), 1);
    float h[1000], back[1000];
    for (int i = 0; i < 1000; i++)
        h[i] = (float)i * 0.5f - 100.f;
    void *d = NULL;
    CHECK_EQ_INT(dj_device_malloc(dev, sizeof h, &d), DJ_OK);
    CHECK_EQ_INT(dj_device_upload(dev, d, h, sizeof h), DJ_OK);
    CHECK_EQ_INT(dj_nccl_allreduce_f32(n, d, 1000, DJ_REDUCE_SUM), DJ_OK);
    CHECK_EQ_INT(dj_nccl_allreduce_f32(n, d, 1000, DJ_REDUCE_MEAN), DJ_OK);
    CHECK_EQ_INT(dj_device_sync(dev), DJ_OK);
    CHECK_EQ_INT(dj_device_download(dev, back, d, sizeof back), DJ_OK);
    CHECK(memcmp(h, back, sizeof h) == 0);
    dj_device_mfree(dev, d);
    dj_nccl_free(n);
    dj_comm_free(c);
    dj_device_free(dev);
}

int main(void) {
    DJ_RUN(test_needs_a_device);
    DJ_RUN(test_single_rank_allreduce);
    return dj_test_finish();
}
