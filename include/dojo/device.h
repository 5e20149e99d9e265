/* dojo/device.h — where computation runs: the CPU or a CUDA GPU.
 *
 * `--device cpu|cuda|cuda:N` is parsed here (dj_device_parse). A GPU is
 * opened once (dj_device_open): the CUDA stream every kernel of dojo is
 * queued on, the cuDNN and cuBLASLt handles and their workspace. Device
 * memory follows the CPU design: one cudaMalloc per run (dj_device_arena),
 * buffers at offsets planned in advance (dj_mem_plan), nothing allocated in
 * a step. Batches reach the GPU through a ring of pinned host buffers copied
 * asynchronously on a second stream (dj_pinned_ring).
 *
 * Every function works in every build: built without CUDA, those that need a
 * GPU return DJ_ERR_UNSUPPORTED "built without CUDA"; built with CUDA on a
 * machine without a GPU or driver they return DJ_ERR_UNSUPPORTED
 * "no CUDA device: <the CUDA runtime's reason>". */
#ifndef DOJO_DEVICE_H
#define DOJO_DEVICE_H

#include <stddef.h>
#include <stdint.h>

#include "dojo/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- the --device flag ---------------------------------------------------- */
typedef enum dj_device_kind { DJ_DEVICE_CPU = 0, DJ_DEVICE_CUDA = 1 } dj_device_kind;

typedef struct dj_device_spec {
    dj_device_kind kind;
    int index; /* GPU ordinal for CUDA (0 for plain "cuda"); 0 for the CPU */
} dj_device_spec;

/* Parses "cpu", "cuda" or "cuda:N" (N a decimal ordinal below 1024);
 * anything else is DJ_ERR_INVALID naming `where` (the flag, "--device"). */
dj_status dj_device_parse(const char *text, const char *where, dj_device_spec *out);
/* "cpu", "cuda:0" into buf; returns buf. */
char *dj_device_spec_string(const dj_device_spec *spec, char *buf, size_t size);

/* ---- what was compiled in and what the machine has ------------------------ */
int dj_cuda_built(void); /* 1 when the CUDA backend is compiled in */
int dj_nccl_built(void); /* 1 when NCCL is compiled in */

/* Library versions as the libraries encode them; 0 = not available. */
typedef struct dj_cuda_versions {
    int runtime;  /* cudaRuntimeGetVersion: 13000 is 13.0 */
    int driver;   /* cudaDriverGetVersion: 0 when no driver is installed */
    int cudnn;    /* cudnnGetVersion: 91900 is 9.19.0 */
    int cublaslt; /* cublasLtGetVersion: 130100 is 13.1.0 (0 if libcublasLt cannot be opened) */
    int nccl;     /* ncclGetVersion: 22809 is 2.28.9 */
} dj_cuda_versions;

/* Fills *out (zeros where a library is absent). Built without CUDA:
 * DJ_ERR_UNSUPPORTED "built without CUDA". Needs no GPU. */
dj_status dj_cuda_versions_get(dj_cuda_versions *out);
/* "13.0" from a CUDA runtime/driver number (major*1000 + minor*10). */
char *dj_cuda_version_string(int v, char *buf, size_t size);
/* "9.19.0" from a cuDNN, cuBLASLt or NCCL number (major*10000 + minor*100 + patch;
 * NCCL before 2.9 used major*1000 + minor*100 + patch, recognised below 10000). */
char *dj_lib_version_string(int v, char *buf, size_t size);

typedef struct dj_gpu_info {
    int index;
    char name[256];     /* "NVIDIA H100 80GB HBM3" */
    size_t total_bytes; /* device memory */
    int cc_major, cc_minor; /* compute capability: 9.0 on H100/H200 */
    int sm_count;
} dj_gpu_info;

/* Number of usable GPUs (>= 1), or DJ_ERR_UNSUPPORTED "no CUDA device: ..."
 * (where "cuda") when none can be reached. */
dj_status dj_cuda_device_count(int *count);
dj_status dj_cuda_device_info(int index, dj_gpu_info *out);

/* ---- an opened GPU ---------------------------------------------------------- */
typedef struct dj_device dj_device;

/* Opens the GPU spec names (spec->kind must be DJ_DEVICE_CUDA): selects it,
 * creates the compute stream, the cuDNN and cuBLASLt handles and a
 * `workspace_bytes` GEMM/convolution workspace. `where` names the flag in
 * errors ("--device"); an ordinal beyond the GPUs present is DJ_ERR_RANGE. */
dj_status dj_device_open(const dj_device_spec *spec, size_t workspace_bytes, const char *where, dj_device **out);
void dj_device_free(dj_device *dev);
int dj_device_index(const dj_device *dev);
/* Waits for everything queued on the device's streams. */
dj_status dj_device_sync(dj_device *dev);
/* Plain device memory (tests, small buffers); the training step uses the arena. */
dj_status dj_device_malloc(dj_device *dev, size_t bytes, void **out);
void dj_device_mfree(dj_device *dev, void *ptr);
/* Synchronous copies host <-> device on the compute stream (queue order kept). */
dj_status dj_device_upload(dj_device *dev, void *dst, const void *src, size_t bytes);
dj_status dj_device_download(dj_device *dev, void *dst, const void *src, size_t bytes);
dj_status dj_device_memset(dj_device *dev, void *dst, int value, size_t bytes);

/* ---- CUDA graphs: a training step recorded once its shapes are fixed ----
 * Between capture_begin and capture_end, work queued on the device's stream
 * is recorded, not run; the recorded graph is then replayed with one launch
 * per step (no per-kernel launch cost). Buffers are the same addresses at
 * every replay (the device arena), so new inputs are copied into place
 * before each launch. Calls that wait for the GPU (the losses' read-back,
 * dj_device_upload/download, the max-pool backward's index check) cannot be
 * recorded: use dj_cuda_cross_entropy_forward_async inside a capture. */
typedef struct dj_step_graph dj_step_graph;
dj_status dj_device_capture_begin(dj_device *dev);
/* Ends the capture and instantiates it; on failure the capture is abandoned. */
dj_status dj_device_capture_end(dj_device *dev, dj_step_graph **out);
dj_status dj_step_graph_launch(dj_step_graph *g);
void dj_step_graph_free(dj_step_graph *g);

/* ---- device memory planning (host-side, works without a GPU) ---------------- */
enum { DJ_DEVICE_ALIGN = 256 }; /* cuBLASLt/cuDNN want 256-byte aligned buffers */

typedef struct dj_mem_plan {
    size_t total; /* bytes planned so far: the arena size to allocate */
    int count;    /* buffers placed */
} dj_mem_plan;

/* Places a buffer of `bytes` at the next DJ_DEVICE_ALIGN boundary; writes its
 * offset. Overflow of size_t is DJ_ERR_RANGE naming `what`. */
dj_status dj_mem_plan_add(dj_mem_plan *plan, size_t bytes, const char *what, size_t *offset);

typedef struct dj_device_arena dj_device_arena;
/* One cudaMalloc of `bytes` (a plan's total), zero-filled. */
dj_status dj_device_arena_create(dj_device *dev, size_t bytes, dj_device_arena **out);
void dj_device_arena_free(dj_device_arena *a);
/* The device address of [offset, offset+bytes); DJ_ERR_RANGE outside the arena. */
dj_status dj_device_arena_at(const dj_device_arena *a, size_t offset, size_t bytes, void **out);
size_t dj_device_arena_size(const dj_device_arena *a);

/* ---- the pinned host ring (batches to the GPU) ------------------------------
 * Slots are used in order 0, 1, ..., n-1, 0, ...: acquire gives the next slot
 * to fill on the host, submit queues its asynchronous copy to a device buffer
 * (on the copy stream; the compute stream then waits for it, so kernels
 * queued afterwards see the batch without a host synchronisation). A slot is
 * acquired again only after its copy has finished. dj_slot_ring is the
 * bookkeeping alone, tested without a GPU. */
enum { DJ_RING_MAX_SLOTS = 16 };
typedef enum dj_slot_state { DJ_SLOT_FREE = 0, DJ_SLOT_FILLING = 1, DJ_SLOT_COPYING = 2 } dj_slot_state;

typedef struct dj_slot_ring {
    int slots;
    int next;                             /* the slot acquire hands out next */
    dj_slot_state state[DJ_RING_MAX_SLOTS];
    uint64_t submitted;                   /* copies queued so far */
} dj_slot_ring;

dj_status dj_slot_ring_init(dj_slot_ring *r, int slots);
/* The next slot in order; *must_wait is 1 when its previous copy may still be
 * running (the caller waits for it before reuse). Fails (DJ_ERR_INVALID)
 * when that slot is still being filled. */
dj_status dj_slot_ring_acquire(dj_slot_ring *r, int *slot, int *must_wait);
/* FILLING -> COPYING; any other state is DJ_ERR_INVALID. */
dj_status dj_slot_ring_submit(dj_slot_ring *r, int slot);

typedef struct dj_pinned_ring dj_pinned_ring;
dj_status dj_pinned_ring_create(dj_device *dev, int slots, size_t slot_bytes, dj_pinned_ring **out);
void dj_pinned_ring_free(dj_pinned_ring *r);
/* The next slot's pinned host memory (slot_bytes), after its last copy ended. */
dj_status dj_pinned_ring_acquire(dj_pinned_ring *r, void **host, int *slot);
/* Queues the copy of `bytes` from the slot to device memory `dst`. */
dj_status dj_pinned_ring_submit(dj_pinned_ring *r, int slot, void *dst, size_t bytes);

#ifdef __cplusplus
}
#endif
#endif
