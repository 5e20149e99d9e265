/* device.c — the parts of dojo/device.h that need no GPU: the --device flag,
 * version strings, device-memory planning and the pinned ring's bookkeeping;
 * and, in a build without CUDA, the GPU functions answering "built without
 * CUDA". The CUDA side is src/kernels/cuda/device_cuda.c. */
#include "dojo/device.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

dj_status dj_device_parse(const char *text, const char *where, dj_device_spec *out) {
    const char *w = where ? where : "--device";
    if (!text || !out)
        return dj_error_set(DJ_ERR_INVALID, w, "no device given");
    if (strcmp(text, "cpu") == 0) {
        *out = (dj_device_spec){DJ_DEVICE_CPU, 0};
        return DJ_OK;
    }
    if (strcmp(text, "cuda") == 0) {
        *out = (dj_device_spec){DJ_DEVICE_CUDA, 0};
        return DJ_OK;
    }
    if (strncmp(text, "cuda:", 5) == 0) {
        const char *d = text + 5;
        size_t n = strlen(d);
        if (n >= 1 && n <= 4 && strspn(d, "0123456789") == n) {
            int index = atoi(d);
            if (index < 1024) {
                *out = (dj_device_spec){DJ_DEVICE_CUDA, index};
                return DJ_OK;
            }
        }
    }
    return dj_error_set(DJ_ERR_INVALID, w, "unknown device '%s': expected cpu, cuda or cuda:N", text);
}

char *dj_device_spec_string(const dj_device_spec *spec, char *buf, size_t size) {
    if (spec->kind == DJ_DEVICE_CUDA)
        snprintf(buf, size, "cuda:%d", spec->index);
    else
        snprintf(buf, size, "cpu");
    return buf;
}

int dj_cuda_built(void) {
#ifdef DJ_HAVE_CUDA
    return 1;
#else
    return 0;
#endif
}

int dj_nccl_built(void) {
#ifdef DJ_HAVE_NCCL
    return 1;
#else
    return 0;
#endif
}

char *dj_cuda_version_string(int v, char *buf, size_t size) {
    snprintf(buf, size, "%d.%d", v / 1000, (v % 1000) / 10);
    return buf;
}

char *dj_lib_version_string(int v, char *buf, size_t size) {
    if (v < 10000) /* NCCL before 2.9: major*1000 + minor*100 + patch */
        snprintf(buf, size, "%d.%d.%d", v / 1000, (v % 1000) / 100, v % 100);
    else
        snprintf(buf, size, "%d.%d.%d", v / 10000, (v % 10000) / 100, v % 100);
    return buf;
}

dj_status dj_mem_plan_add(dj_mem_plan *plan, size_t bytes, const char *what, size_t *offset) {
    size_t start = plan->total;
    size_t pad = (DJ_DEVICE_ALIGN - start % DJ_DEVICE_ALIGN) % DJ_DEVICE_ALIGN;
    if (start > SIZE_MAX - pad || bytes > SIZE_MAX - (start + pad))
        return dj_error_set(DJ_ERR_RANGE, what, "device memory plan overflows: %zu + %zu bytes", start, bytes);
    *offset = start + pad;
    plan->total = start + pad + bytes;
    plan->count++;
    return DJ_OK;
}

dj_status dj_slot_ring_init(dj_slot_ring *r, int slots) {
    if (slots < 1 || slots > DJ_RING_MAX_SLOTS)
        return dj_error_set(DJ_ERR_INVALID, "pinned ring", "%d slots: expected 1 to %d", slots, DJ_RING_MAX_SLOTS);
    memset(r, 0, sizeof *r);
    r->slots = slots;
    return DJ_OK;
}

dj_status dj_slot_ring_acquire(dj_slot_ring *r, int *slot, int *must_wait) {
    int s = r->next;
    if (r->state[s] == DJ_SLOT_FILLING)
        return dj_error_set(DJ_ERR_INVALID, "pinned ring", "slot %d acquired again before it was submitted", s);
    *must_wait = r->state[s] == DJ_SLOT_COPYING;
    r->state[s] = DJ_SLOT_FILLING;
    r->next = (s + 1) % r->slots;
    *slot = s;
    return DJ_OK;
}

dj_status dj_slot_ring_submit(dj_slot_ring *r, int slot) {
    if (slot < 0 || slot >= r->slots || r->state[slot] != DJ_SLOT_FILLING)
        return dj_error_set(DJ_ERR_INVALID, "pinned ring", "slot %d submitted without being acquired", slot);
    r->state[slot] = DJ_SLOT_COPYING;
    r->submitted++;
    return DJ_OK;
}

#ifndef DJ_HAVE_CUDA
/* Built without CUDA: every GPU entry point says so. */
static dj_status dj_no_cuda(void) { return dj_error_set(DJ_ERR_UNSUPPORTED, "cuda", "built without CUDA"); }

dj_status dj_cuda_versions_get(dj_cuda_versions *out) {
    memset(out, 0, sizeof *out);
    return dj_no_cuda();
}
dj_status dj_cuda_device_count(int *count) {
    *count = 0;
    return dj_no_cuda();
}
dj_status dj_cuda_device_info(int index, dj_gpu_info *out) {
    memset(out, 0, sizeof *out);
    return dj_no_cuda();
}
dj_status dj_device_open(const dj_device_spec *spec, size_t workspace_bytes, const char *where, dj_device **out) {
    *out = NULL;
    return dj_error_set(DJ_ERR_UNSUPPORTED, where ? where : "cuda", "built without CUDA");
}
void dj_device_free(dj_device *dev) {}
int dj_device_index(const dj_device *dev) { return -1; }
dj_status dj_device_sync(dj_device *dev) { return dj_no_cuda(); }
dj_status dj_device_malloc(dj_device *dev, size_t bytes, void **out) {
    *out = NULL;
    return dj_no_cuda();
}
void dj_device_mfree(dj_device *dev, void *ptr) {}
dj_status dj_device_upload(dj_device *dev, void *dst, const void *src, size_t bytes) { return dj_no_cuda(); }
dj_status dj_device_download(dj_device *dev, void *dst, const void *src, size_t bytes) { return dj_no_cuda(); }
dj_status dj_device_memset(dj_device *dev, void *dst, int value, size_t bytes) { return dj_no_cuda(); }
dj_status dj_device_arena_create(dj_device *dev, size_t bytes, dj_device_arena **out) {
    *out = NULL;
    return dj_no_cuda();
}
void dj_device_arena_free(dj_device_arena *a) {}
dj_status dj_device_arena_at(const dj_device_arena *a, size_t offset, size_t bytes, void **out) {
    *out = NULL;
    return dj_no_cuda();
}
size_t dj_device_arena_size(const dj_device_arena *a) { return 0; }
dj_status dj_pinned_ring_create(dj_device *dev, int slots, size_t slot_bytes, dj_pinned_ring **out) {
    *out = NULL;
    return dj_no_cuda();
}
dj_status dj_device_capture_begin(dj_device *dev) { return dj_no_cuda(); }
dj_status dj_device_capture_end(dj_device *dev, dj_step_graph **out) {
    *out = NULL;
    return dj_no_cuda();
}
dj_status dj_step_graph_launch(dj_step_graph *g) { return dj_no_cuda(); }
void dj_step_graph_free(dj_step_graph *g) {}
void dj_pinned_ring_free(dj_pinned_ring *r) {}
dj_status dj_pinned_ring_acquire(dj_pinned_ring *r, void **host, int *slot) { return dj_no_cuda(); }
dj_status dj_pinned_ring_submit(dj_pinned_ring *r, int slot, void *dst, size_t bytes) { return dj_no_cuda(); }
#endif
