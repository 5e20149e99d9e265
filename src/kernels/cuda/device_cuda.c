/* device_cuda.c — dojo/device.h on the CUDA runtime: versions, device
 * enumeration, opening a GPU (streams, cuDNN, cuBLASLt), the device arena and
 * the pinned host ring. Compiled only when the CUDA backend is built. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef DJ_HAVE_NCCL
#include <nccl.h>
#endif

#include "cuda_internal.h"

/* ---- errors ---- */
dj_status dj_cuda_check(cudaError_t e, const char *where, const char *what) {
    if (e == cudaSuccess)
        return DJ_OK;
    dj_status st = e == cudaErrorMemoryAllocation ? DJ_ERR_NOMEM : DJ_ERR_INTERNAL;
    return dj_error_set(st, where, "%s: %s (%s)", what, cudaGetErrorString(e), cudaGetErrorName(e));
}

dj_status dj_cudnn_check(cudnnStatus_t s, const char *where, const char *what) {
    if (s == CUDNN_STATUS_SUCCESS)
        return DJ_OK;
    dj_status st = s == CUDNN_STATUS_NOT_SUPPORTED ? DJ_ERR_UNSUPPORTED : DJ_ERR_INTERNAL;
    return dj_error_set(st, where, "%s: cuDNN %s", what, cudnnGetErrorString(s));
}

dj_status dj_cublaslt_check(cublasStatus_t s, const char *where, const char *what) {
    if (s == CUBLAS_STATUS_SUCCESS)
        return DJ_OK;
    const dj_cublaslt_api *api = dj_cublaslt();
    dj_status st = s == CUBLAS_STATUS_NOT_SUPPORTED ? DJ_ERR_UNSUPPORTED : DJ_ERR_INTERNAL;
    return dj_error_set(st, where, "%s: cuBLASLt %s", what, api ? api->status_string(s) : "error");
}

dj_status dj_cuda_launched(const char *where) {
    return dj_cuda_check(cudaGetLastError(), where, "kernel launch");
}

/* ---- cuBLASLt through dlopen ---- */
static dj_cublaslt_api dj_lt_api;
static int dj_lt_loaded; /* 1 loaded, -1 failed */
static char dj_lt_error[256];
static pthread_once_t dj_lt_once = PTHREAD_ONCE_INIT;

#define DJ_LT_SYM(field, name)                                                        \
    do {                                                                              \
        *(void **)(&dj_lt_api.field) = dlsym(h, #name);                               \
        if (!dj_lt_api.field) {                                                       \
            snprintf(dj_lt_error, sizeof dj_lt_error, "libcublasLt lacks %s", #name); \
            return;                                                                   \
        }                                                                             \
    } while (0)

static void dj_lt_load(void) {
    dj_lt_loaded = -1;
    void *h = dlopen("libcublasLt.so." DJ_STR(CUBLAS_VER_MAJOR), RTLD_NOW | RTLD_LOCAL);
    if (!h)
        h = dlopen("libcublasLt.so", RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        snprintf(dj_lt_error, sizeof dj_lt_error, "cannot open libcublasLt: %s", dlerror());
        return;
    }
    DJ_LT_SYM(create, cublasLtCreate);
    DJ_LT_SYM(destroy, cublasLtDestroy);
    DJ_LT_SYM(get_version, cublasLtGetVersion);
    DJ_LT_SYM(status_string, cublasLtGetStatusString);
    DJ_LT_SYM(desc_create, cublasLtMatmulDescCreate);
    DJ_LT_SYM(desc_destroy, cublasLtMatmulDescDestroy);
    DJ_LT_SYM(desc_set, cublasLtMatmulDescSetAttribute);
    DJ_LT_SYM(layout_create, cublasLtMatrixLayoutCreate);
    DJ_LT_SYM(layout_destroy, cublasLtMatrixLayoutDestroy);
    DJ_LT_SYM(pref_create, cublasLtMatmulPreferenceCreate);
    DJ_LT_SYM(pref_destroy, cublasLtMatmulPreferenceDestroy);
    DJ_LT_SYM(pref_set, cublasLtMatmulPreferenceSetAttribute);
    DJ_LT_SYM(heuristic, cublasLtMatmulAlgoGetHeuristic);
    DJ_LT_SYM(matmul, cublasLtMatmul);
    dj_lt_loaded = 1; /* the handle stays open for the life of the process */
}

const dj_cublaslt_api *dj_cublaslt(void) {
    pthread_once(&dj_lt_once, dj_lt_load);
    if (dj_lt_loaded != 1) {
        dj_error_set(DJ_ERR_UNSUPPORTED, "cuBLASLt", "%s", dj_lt_error);
        return NULL;
    }
    return &dj_lt_api;
}

/* ---- versions and devices ---- */
dj_status dj_cuda_versions_get(dj_cuda_versions *out) {
    memset(out, 0, sizeof *out);
    if (cudaRuntimeGetVersion(&out->runtime) != cudaSuccess)
        out->runtime = 0;
    if (cudaDriverGetVersion(&out->driver) != cudaSuccess)
        out->driver = 0;
    out->cudnn = (int)cudnnGetVersion();
    const dj_cublaslt_api *lt = dj_cublaslt();
    out->cublaslt = lt ? (int)lt->get_version() : 0;
    dj_error_clear();
#ifdef DJ_HAVE_NCCL
    if (ncclGetVersion(&out->nccl) != ncclSuccess)
        out->nccl = 0;
#endif
    return DJ_OK;
}

/* The GPUs present, or "no CUDA device: REASON (where)". */
static dj_status dj_count(const char *where, int *count) {
    *count = 0;
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess)
        return dj_error_set(DJ_ERR_UNSUPPORTED, where, "no CUDA device: %s", cudaGetErrorString(e));
    if (n < 1)
        return dj_error_set(DJ_ERR_UNSUPPORTED, where, "no CUDA device: the driver lists none");
    *count = n;
    return DJ_OK;
}

dj_status dj_cuda_device_count(int *count) { return dj_count("cuda", count); }

dj_status dj_cuda_device_info(int index, dj_gpu_info *out) {
    memset(out, 0, sizeof *out);
    int n = 0;
    DJ_TRY(dj_cuda_device_count(&n));
    if (index < 0 || index >= n)
        return dj_error_set(DJ_ERR_RANGE, "cuda", "no GPU %d: %d present", index, n);
    struct cudaDeviceProp prop;
    DJ_TRY(dj_cuda_check(cudaGetDeviceProperties(&prop, index), "cuda", "cudaGetDeviceProperties"));
    out->index = index;
    snprintf(out->name, sizeof out->name, "%s", prop.name);
    out->total_bytes = prop.totalGlobalMem;
    out->cc_major = prop.major;
    out->cc_minor = prop.minor;
    out->sm_count = prop.multiProcessorCount;
    return DJ_OK;
}

/* ---- an opened device ---- */
static dj_status dj_device_init(dj_device *d, size_t workspace_bytes, const char *w) {
    DJ_TRY(dj_cuda_check(cudaSetDevice(d->index), w, "cudaSetDevice"));
    DJ_TRY(dj_cuda_check(cudaStreamCreateWithFlags(&d->stream, cudaStreamNonBlocking), w, "cudaStreamCreate"));
    DJ_TRY(dj_cuda_check(cudaStreamCreateWithFlags(&d->copy_stream, cudaStreamNonBlocking), w, "cudaStreamCreate"));
    DJ_TRY(dj_cudnn_check(cudnnCreate(&d->cudnn), w, "cudnnCreate"));
    DJ_TRY(dj_cudnn_check(cudnnSetStream(d->cudnn, d->stream), w, "cudnnSetStream"));
    d->lt_api = dj_cublaslt();
    if (!d->lt_api)
        return DJ_ERR_UNSUPPORTED;
    DJ_TRY(dj_cublaslt_check(d->lt_api->create(&d->lt), w, "cublasLtCreate"));
    d->workspace_bytes = workspace_bytes;
    if (workspace_bytes)
        DJ_TRY(dj_cuda_check(cudaMalloc(&d->workspace, workspace_bytes), w, "workspace"));
    return dj_cuda_check(cudaMalloc((void **)&d->scalar, 4 * sizeof(float)), w, "cudaMalloc");
}

dj_status dj_device_open(const dj_device_spec *spec, size_t workspace_bytes, const char *where, dj_device **out) {
    const char *w = where ? where : "cuda";
    *out = NULL;
    if (spec->kind != DJ_DEVICE_CUDA)
        return dj_error_set(DJ_ERR_INVALID, w, "not a CUDA device");
    int n = 0;
    DJ_TRY(dj_count(w, &n));
    if (spec->index >= n)
        return dj_error_set(DJ_ERR_RANGE, w, "no GPU cuda:%d: %d present", spec->index, n);
    dj_device *d = calloc(1, sizeof *d);
    if (!d)
        return dj_error_set(DJ_ERR_NOMEM, w, "out of memory");
    d->index = spec->index;
    dj_status st = dj_device_init(d, workspace_bytes, w);
    if (st != DJ_OK) {
        dj_device_free(d);
        return st;
    }
    *out = d;
    return DJ_OK;
}

void dj_device_free(dj_device *d) {
    if (!d)
        return;
    cudaSetDevice(d->index);
    if (d->stream)
        cudaStreamSynchronize(d->stream);
    cudaFree(d->workspace);
    cudaFree(d->scalar);
    if (d->lt)
        d->lt_api->destroy(d->lt);
    if (d->cudnn)
        cudnnDestroy(d->cudnn);
    if (d->copy_stream)
        cudaStreamDestroy(d->copy_stream);
    if (d->stream)
        cudaStreamDestroy(d->stream);
    free(d);
}

int dj_device_index(const dj_device *d) { return d ? d->index : -1; }

dj_status dj_device_sync(dj_device *d) {
    DJ_TRY(dj_cuda_check(cudaStreamSynchronize(d->copy_stream), "cuda", "copy stream"));
    return dj_cuda_check(cudaStreamSynchronize(d->stream), "cuda", "stream");
}

dj_status dj_device_malloc(dj_device *d, size_t bytes, void **out) {
    *out = NULL;
    return dj_cuda_check(cudaMalloc(out, bytes ? bytes : 1), "cuda", "cudaMalloc");
}

void dj_device_mfree(dj_device *d, void *ptr) { cudaFree(ptr); }

dj_status dj_device_upload(dj_device *d, void *dst, const void *src, size_t bytes) {
    DJ_TRY(dj_cuda_check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, d->stream), "cuda", "upload"));
    return dj_cuda_check(cudaStreamSynchronize(d->stream), "cuda", "upload");
}

dj_status dj_device_download(dj_device *d, void *dst, const void *src, size_t bytes) {
    DJ_TRY(dj_cuda_check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, d->stream), "cuda", "download"));
    return dj_cuda_check(cudaStreamSynchronize(d->stream), "cuda", "download");
}

dj_status dj_device_memset(dj_device *d, void *dst, int value, size_t bytes) {
    return dj_cuda_check(cudaMemsetAsync(dst, value, bytes, d->stream), "cuda", "memset");
}

/* ---- the device arena ---- */
struct dj_device_arena {
    dj_device *dev;
    void *base;
    size_t bytes;
};

dj_status dj_device_arena_create(dj_device *dev, size_t bytes, dj_device_arena **out) {
    *out = NULL;
    dj_device_arena *a = calloc(1, sizeof *a);
    if (!a)
        return dj_error_set(DJ_ERR_NOMEM, "device arena", "out of memory");
    a->dev = dev;
    a->bytes = bytes;
    dj_status st = dj_cuda_check(cudaMalloc(&a->base, bytes ? bytes : 1), "device arena", "cudaMalloc");
    if (st == DJ_OK)
        st = dj_device_memset(dev, a->base, 0, bytes);
    if (st == DJ_OK)
        st = dj_cuda_check(cudaStreamSynchronize(dev->stream), "device arena", "zero-fill");
    if (st != DJ_OK) {
        dj_device_arena_free(a);
        return st;
    }
    *out = a;
    return DJ_OK;
}

void dj_device_arena_free(dj_device_arena *a) {
    if (!a)
        return;
    cudaFree(a->base);
    free(a);
}

dj_status dj_device_arena_at(const dj_device_arena *a, size_t offset, size_t bytes, void **out) {
    *out = NULL;
    if (offset > a->bytes || bytes > a->bytes - offset)
        return dj_error_set(DJ_ERR_RANGE, "device arena", "[%zu, +%zu) outside the %zu-byte arena", offset, bytes,
                            a->bytes);
    *out = (char *)a->base + offset;
    return DJ_OK;
}

size_t dj_device_arena_size(const dj_device_arena *a) { return a ? a->bytes : 0; }

/* ---- the pinned ring ---- */
struct dj_pinned_ring {
    dj_device *dev;
    dj_slot_ring order;
    size_t slot_bytes;
    void *host[DJ_RING_MAX_SLOTS];          /* cudaHostAlloc'd */
    cudaEvent_t copied[DJ_RING_MAX_SLOTS];  /* recorded after each slot's copy */
};

dj_status dj_pinned_ring_create(dj_device *dev, int slots, size_t slot_bytes, dj_pinned_ring **out) {
    *out = NULL;
    dj_pinned_ring *r = calloc(1, sizeof *r);
    if (!r)
        return dj_error_set(DJ_ERR_NOMEM, "pinned ring", "out of memory");
    r->dev = dev;
    r->slot_bytes = slot_bytes;
    dj_status st = dj_slot_ring_init(&r->order, slots);
    for (int i = 0; st == DJ_OK && i < slots; i++) {
        st = dj_cuda_check(cudaHostAlloc(&r->host[i], slot_bytes ? slot_bytes : 1, cudaHostAllocDefault),
                           "pinned ring", "cudaHostAlloc");
        if (st == DJ_OK)
            st = dj_cuda_check(cudaEventCreateWithFlags(&r->copied[i], cudaEventDisableTiming), "pinned ring",
                               "cudaEventCreate");
    }
    if (st != DJ_OK) {
        dj_pinned_ring_free(r);
        return st;
    }
    *out = r;
    return DJ_OK;
}

void dj_pinned_ring_free(dj_pinned_ring *r) {
    if (!r)
        return;
    for (int i = 0; i < DJ_RING_MAX_SLOTS; i++) {
        if (r->copied[i]) {
            cudaEventSynchronize(r->copied[i]);
            cudaEventDestroy(r->copied[i]);
        }
        if (r->host[i])
            cudaFreeHost(r->host[i]);
    }
    free(r);
}

dj_status dj_pinned_ring_acquire(dj_pinned_ring *r, void **host, int *slot) {
    int s = 0, must_wait = 0;
    DJ_TRY(dj_slot_ring_acquire(&r->order, &s, &must_wait));
    if (must_wait)
        DJ_TRY(dj_cuda_check(cudaEventSynchronize(r->copied[s]), "pinned ring", "waiting for a copy"));
    *host = r->host[s];
    *slot = s;
    return DJ_OK;
}

dj_status dj_pinned_ring_submit(dj_pinned_ring *r, int slot, void *dst, size_t bytes) {
    if (bytes > r->slot_bytes)
        return dj_error_set(DJ_ERR_RANGE, "pinned ring", "%zu bytes do not fit a %zu-byte slot", bytes, r->slot_bytes);
    DJ_TRY(dj_slot_ring_submit(&r->order, slot));
    cudaStream_t cs = r->dev->copy_stream;
    DJ_TRY(dj_cuda_check(cudaMemcpyAsync(dst, r->host[slot], bytes, cudaMemcpyHostToDevice, cs), "pinned ring",
                         "cudaMemcpyAsync"));
    DJ_TRY(dj_cuda_check(cudaEventRecord(r->copied[slot], cs), "pinned ring", "cudaEventRecord"));
    return dj_cuda_check(cudaStreamWaitEvent(r->dev->stream, r->copied[slot], 0), "pinned ring", "cudaStreamWaitEvent");
}

/* ---- CUDA graphs ---- */
struct dj_step_graph {
    dj_device *dev;
    cudaGraph_t graph;
    cudaGraphExec_t exec;
};

dj_status dj_device_capture_begin(dj_device *dev) {
    return dj_cuda_check(cudaStreamBeginCapture(dev->stream, cudaStreamCaptureModeThreadLocal), "cuda graph",
                         "cudaStreamBeginCapture");
}

dj_status dj_device_capture_end(dj_device *dev, dj_step_graph **out) {
    *out = NULL;
    cudaGraph_t graph = NULL;
    DJ_TRY(dj_cuda_check(cudaStreamEndCapture(dev->stream, &graph), "cuda graph", "cudaStreamEndCapture"));
    dj_step_graph *g = calloc(1, sizeof *g);
    if (!g) {
        cudaGraphDestroy(graph);
        return dj_error_set(DJ_ERR_NOMEM, "cuda graph", "out of memory");
    }
    g->dev = dev;
    g->graph = graph;
    dj_status st = dj_cuda_check(cudaGraphInstantiate(&g->exec, graph, 0), "cuda graph", "cudaGraphInstantiate");
    if (st != DJ_OK) {
        dj_step_graph_free(g);
        return st;
    }
    *out = g;
    return DJ_OK;
}

dj_status dj_step_graph_launch(dj_step_graph *g) {
    return dj_cuda_check(cudaGraphLaunch(g->exec, g->dev->stream), "cuda graph", "cudaGraphLaunch");
}

void dj_step_graph_free(dj_step_graph *g) {
    if (!g)
        return;
    if (g->exec)
        cudaGraphExecDestroy(g->exec);
    if (g->graph)
        cudaGraphDestroy(g->graph);
    free(g);
}
