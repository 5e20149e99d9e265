/* comm.c — the communicator: a single-process backend and an MPI backend.
 *
 * The MPI backend's collectives are built on point-to-point messages so that
 * (1) every result is reproducible bit for bit: the all-reduce sums each
 * element in rank order on the rank that owns its slice (reduce-scatter by
 * direct exchange), then sends the slice to every rank (all-gather) — the
 * same bytes on the wire as a ring all-reduce, 2 (size-1)/size of the buffer
 * per rank; and (2) a wait that times out knows which rank is silent. Waits
 * poll with MPI_Testsome under a deadline, so no call blocks forever. */
#include "dojo/dist.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>

#include "dojo/log.h"

#ifdef DJ_HAVE_MPI
#include <mpi.h>
#endif

enum { DJ_COMM_TAG_SLOTS = 8000 }; /* tags cycle; far more than ops in flight */

typedef enum dj_elem { DJ_ELEM_F32, DJ_ELEM_F64, DJ_ELEM_I64, DJ_ELEM_BYTE } dj_elem;
typedef enum dj_req_kind { DJ_REQ_ALLREDUCE, DJ_REQ_BCAST } dj_req_kind;

struct dj_comm {
    int rank, size;
    int is_mpi;
    int broken;
    double timeout;
    unsigned seq;      /* collectives started; gives each its tags */
    void **orphans;    /* receive buffers of abandoned requests, freed with the comm */
    int n_orphans;
#ifdef DJ_HAVE_MPI
    MPI_Comm world;
#endif
};

struct dj_comm_request {
    dj_comm *c;
    dj_req_kind kind;
    dj_elem elem;
    dj_reduce_op op;
    char *buf;   /* the caller's buffer: n elements */
    size_t n;
    int phase;   /* all-reduce: 1 reduce-scatter, 2 all-gather; 3 done */
    int tag;
    char *recv;  /* (size-1) x this rank's slice: the other ranks' parts */
    double start;
#ifdef DJ_HAVE_MPI
    MPI_Request *reqs; /* 2 (size-1): receives first, then sends */
    int *peer;         /* the rank of each request */
    int *is_recv;
    int n_reqs;
#endif
};

static size_t dj_elem_size(dj_elem e) { return e == DJ_ELEM_F32 ? 4 : e == DJ_ELEM_BYTE ? 1 : 8; }

/* ---- environment and lifetime ------------------------------------------ */

static int dj_env_int(const char *name) {
    const char *v = getenv(name);
    return v && *v ? atoi(v) : -1;
}

/* srun sets SLURM_STEP_NUM_TASKS for the tasks of a job step; a batch
 * script (sbatch) has SLURM_PROCID=0 and SLURM_NTASKS of the allocation but
 * no step: `dojo train` run directly there is one process. */
int dj_comm_launched(void) {
    if (dj_env_int("OMPI_COMM_WORLD_SIZE") >= 1 || dj_env_int("PMI_SIZE") >= 1 || getenv("PMIX_RANK"))
        return 1;
    return getenv("SLURM_PROCID") && dj_env_int("SLURM_STEP_NUM_TASKS") > 1;
}

/* The number of processes the launcher says it started (-1: not said). */
static int dj_env_world_size(void) {
    int n = dj_env_int("OMPI_COMM_WORLD_SIZE");
    if (n < 1)
        n = dj_env_int("PMI_SIZE");
    if (n < 1 && getenv("SLURM_PROCID"))
        n = dj_env_int("SLURM_STEP_NUM_TASKS");
    return n;
}

static double dj_comm_default_timeout(void) {
    const char *v = getenv("DOJO_DIST_TIMEOUT");
    double t = v && *v ? atof(v) : 0.0;
    return t > 0 ? t : 45.0;
}

#ifdef DJ_HAVE_MPI
static int dj_mpi_users; /* live MPI comms of this process; the last finalises */
static int dj_mpi_we_initialised;

static dj_status dj_mpi_error(int code, const char *what, int peer) {
    char text[MPI_MAX_ERROR_STRING] = "";
    int len = 0;
    MPI_Error_string(code, text, &len);
    char where[32];
    snprintf(where, sizeof where, "rank %d", peer);
    return dj_error_set(DJ_ERR_IO, peer >= 0 ? where : "mpi", "%s failed: %s", what, text);
}

static dj_status dj_comm_mpi_open(dj_comm *c) {
    int inited = 0, finalized = 0;
    MPI_Initialized(&inited);
    MPI_Finalized(&finalized);
    if (finalized)
        return dj_error_set(DJ_ERR_INVALID, "mpi", "MPI was already finalised in this process");
    if (!inited) {
        int provided = 0;
        int rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
        if (rc != MPI_SUCCESS)
            return dj_error_set(DJ_ERR_IO, "mpi", "MPI_Init_thread failed (code %d)", rc);
        dj_mpi_we_initialised = 1;
    }
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    int rc = MPI_Comm_dup(MPI_COMM_WORLD, &c->world);
    if (rc != MPI_SUCCESS)
        return dj_mpi_error(rc, "MPI_Comm_dup", -1);
    MPI_Comm_set_errhandler(c->world, MPI_ERRORS_RETURN);
    MPI_Comm_rank(c->world, &c->rank);
    MPI_Comm_size(c->world, &c->size);
    c->is_mpi = 1;
    dj_mpi_users++;
    /* srun with an MPI that cannot reach its process manager makes every
     * task a job of one: each would train alone into the same folder */
    int declared = dj_env_world_size();
    if (declared > 1 && declared != c->size)
        return dj_error_set(DJ_ERR_UNSUPPORTED, "mpi",
                            "the launcher started %d processes but MPI joined %d: this MPI cannot reach the "
                            "launcher's process manager (under Slurm: srun --mpi=pmix, see srun --mpi=list; or "
                            "start the job with mpirun)",
                            declared, c->size);
    return DJ_OK;
}
#endif

dj_status dj_comm_create(dj_comm_kind kind, dj_comm **out) {
    *out = NULL;
    if (kind != DJ_COMM_AUTO && kind != DJ_COMM_SINGLE && kind != DJ_COMM_MPI)
        return dj_error_set(DJ_ERR_INVALID, "comm", "unknown communicator kind %d", (int)kind);
#ifndef DJ_HAVE_MPI
    if (kind == DJ_COMM_AUTO && dj_comm_launched() && dj_env_world_size() <= 1)
        kind = DJ_COMM_SINGLE; /* a launcher with one rank: nothing to talk to */
#endif
    if (kind == DJ_COMM_AUTO)
        kind = dj_comm_launched() ? DJ_COMM_MPI : DJ_COMM_SINGLE;
#ifndef DJ_HAVE_MPI
    if (kind == DJ_COMM_MPI)
        return dj_error_set(DJ_ERR_UNSUPPORTED, "comm",
                            "this dojo was built without MPI, but %d ranks were launched (rebuild with "
                            "libopenmpi-dev installed)",
                            dj_env_world_size());
#endif
    dj_comm *c = calloc(1, sizeof *c);
    if (!c)
        return dj_error_set(DJ_ERR_NOMEM, "comm", "cannot allocate a communicator");
    c->size = 1;
    c->timeout = dj_comm_default_timeout();
#ifdef DJ_HAVE_MPI
    if (kind == DJ_COMM_MPI) {
        dj_status s = dj_comm_mpi_open(c);
        if (s != DJ_OK) {
            if (c->is_mpi)
                dj_comm_free(c); /* opened, then refused: MPI is finalised */
            else
                free(c);
            return s;
        }
    }
#endif
    *out = c;
    return DJ_OK;
}

void dj_comm_free(dj_comm *c) {
    if (!c)
        return;
#ifdef DJ_HAVE_MPI
    if (c->is_mpi && !c->broken) {
        MPI_Comm_free(&c->world);
        if (--dj_mpi_users == 0 && dj_mpi_we_initialised)
            MPI_Finalize();
    }
#endif
    for (int i = 0; i < c->n_orphans; i++)
        free(c->orphans[i]);
    free(c->orphans);
    free(c);
}

int dj_comm_rank(const dj_comm *c) { return c->rank; }
int dj_comm_size(const dj_comm *c) { return c->size; }
const char *dj_comm_backend(const dj_comm *c) { return c->is_mpi ? "mpi" : "single"; }
void dj_comm_set_timeout(dj_comm *c, double seconds) { c->timeout = seconds > 0 ? seconds : dj_comm_default_timeout(); }
int dj_comm_broken(const dj_comm *c) { return c->broken; }

/* ---- the slices of a buffer ------------------------------------------------ */

/* Rank j owns elements [lo(j), lo(j+1)) of n. */
static size_t dj_slice_lo(size_t n, int j, int size) { return (size_t)((unsigned __int128)n * (unsigned)j / (unsigned)size); }

/* Sums the parts of this rank's slice in rank order into mine; the others'
 * parts are in recv, slot p (p < rank) or p - 1 (p > rank). Each pass adds
 * one rank's part to the running sum (x0 + x1) + x2 ..., so the loops
 * vectorise and the order stays that of the ranks. */
#define DJ_DEFINE_SUM(NAME, T)                                                                   \
    static void NAME(T *restrict mine, T *restrict recv, size_t count, int rank, int size, int mean) { \
        if (count == 0)                                                                          \
            return;                                                                              \
        T *acc = rank == 0 ? mine : recv; /* holds rank 0's part */                             \
        for (int p = 1; p < size; p++) {                                                         \
            const T *part = p == rank ? mine : recv + (size_t)(p < rank ? p : p - 1) * count;    \
            for (size_t i = 0; i < count; i++)                                                   \
                acc[i] += part[i];                                                               \
        }                                                                                        \
        if (mean)                                                                                \
            for (size_t i = 0; i < count; i++)                                                   \
                acc[i] /= (T)size;                                                               \
        if (acc != mine)                                                                         \
            memcpy(mine, acc, count * sizeof(T));                                                \
    }
DJ_DEFINE_SUM(dj_sum_f32, float)
DJ_DEFINE_SUM(dj_sum_f64, double)
DJ_DEFINE_SUM(dj_sum_i64, int64_t)

static void dj_request_free(dj_comm_request *r) {
    if (!r)
        return;
#ifdef DJ_HAVE_MPI
    free(r->reqs);
    free(r->peer);
    free(r->is_recv);
#endif
    free(r->recv);
    free(r);
}

#ifdef DJ_HAVE_MPI
static dj_status dj_post(dj_comm_request *r, int recv, void *buf, size_t bytes, int peer, int tag) {
    if (bytes == 0)
        return DJ_OK;
    if (bytes > INT_MAX)
        return dj_error_set(DJ_ERR_RANGE, "comm", "a message of %zu bytes is over MPI's 2 GiB limit", bytes);
    int i = r->n_reqs++;
    r->peer[i] = peer;
    r->is_recv[i] = recv;
    int rc = recv ? MPI_Irecv(buf, (int)bytes, MPI_BYTE, peer, tag, r->c->world, &r->reqs[i])
                  : MPI_Isend(buf, (int)bytes, MPI_BYTE, peer, tag, r->c->world, &r->reqs[i]);
    if (rc != MPI_SUCCESS) {
        r->reqs[i] = MPI_REQUEST_NULL;
        return dj_mpi_error(rc, recv ? "MPI_Irecv" : "MPI_Isend", peer);
    }
    return DJ_OK;
}

/* Posts the messages of the request's current phase. */
static dj_status dj_post_phase(dj_comm_request *r) {
    dj_comm *c = r->c;
    const size_t es = dj_elem_size(r->elem);
    const int me = c->rank, size = c->size;
    r->n_reqs = 0;
    if (r->kind == DJ_REQ_BCAST) {
        for (int p = 0; p < size; p++)
            if (me == 0 && p != 0)
                DJ_TRY(dj_post(r, 0, r->buf, r->n * es, p, r->tag));
            else if (me != 0 && p == 0)
                DJ_TRY(dj_post(r, 1, r->buf, r->n * es, 0, r->tag));
        return DJ_OK;
    }
    const size_t lo = dj_slice_lo(r->n, me, size), count = dj_slice_lo(r->n, me + 1, size) - lo;
    for (int p = 0; p < size; p++) {
        if (p == me)
            continue;
        const size_t plo = dj_slice_lo(r->n, p, size), pcount = dj_slice_lo(r->n, p + 1, size) - plo;
        if (r->phase == 1) { /* their part of my slice in; my part of their slice out */
            char *slot = r->recv + (size_t)(p < me ? p : p - 1) * count * es;
            DJ_TRY(dj_post(r, 1, slot, count * es, p, r->tag));
            DJ_TRY(dj_post(r, 0, r->buf + plo * es, pcount * es, p, r->tag));
        } else { /* their finished slice in; my finished slice out */
            DJ_TRY(dj_post(r, 1, r->buf + plo * es, pcount * es, p, r->tag + 1));
            DJ_TRY(dj_post(r, 0, r->buf + lo * es, count * es, p, r->tag + 1));
        }
    }
    return DJ_OK;
}

/* Gives up on the request's messages: the comm is broken from now on. */
static void dj_request_abandon(dj_comm_request *r) {
    for (int i = 0; i < r->n_reqs; i++)
        if (r->reqs[i] != MPI_REQUEST_NULL) {
            if (r->is_recv[i])
                MPI_Cancel(&r->reqs[i]);
            MPI_Request_free(&r->reqs[i]);
        }
    r->n_reqs = 0;
    dj_comm *c = r->c;
    c->broken = 1;
    if (r->recv) { /* a late message may still land there: keep it until the comm goes */
        void **o = realloc(c->orphans, (size_t)(c->n_orphans + 1) * sizeof *o);
        if (o) {
            c->orphans = o;
            c->orphans[c->n_orphans++] = r->recv;
            r->recv = NULL;
        }
    }
}

/* One round of progress: completes what it can; *phase_done when all of the
 * phase's messages are through. */
static dj_status dj_comm_progress(dj_comm_request *r, int *phase_done) {
    *phase_done = 1;
    if (r->n_reqs == 0)
        return DJ_OK;
    int outcount = 0;
    int idx[2 * 1024];
    int *indices = r->n_reqs <= 2048 ? idx : malloc((size_t)r->n_reqs * sizeof *indices);
    if (!indices)
        return dj_error_set(DJ_ERR_NOMEM, "comm", "cannot allocate %d request indices", r->n_reqs);
    MPI_Status *st = MPI_STATUSES_IGNORE;
    int rc = MPI_Testsome(r->n_reqs, r->reqs, &outcount, indices, st);
    if (indices != idx)
        free(indices);
    if (rc != MPI_SUCCESS) {
        int peer = -1;
        for (int i = 0; i < r->n_reqs; i++)
            if (r->reqs[i] != MPI_REQUEST_NULL) {
                peer = r->peer[i];
                break;
            }
        return dj_mpi_error(rc, "a message exchange", peer);
    }
    *phase_done = outcount == MPI_UNDEFINED;
    return DJ_OK;
}

static dj_status dj_timed_out(dj_comm_request *r) {
    int peer = -1, sending = 0;
    for (int i = 0; i < r->n_reqs && peer < 0; i++)
        if (r->reqs[i] != MPI_REQUEST_NULL && r->is_recv[i])
            peer = r->peer[i];
    for (int i = 0; i < r->n_reqs && peer < 0; i++)
        if (r->reqs[i] != MPI_REQUEST_NULL) {
            peer = r->peer[i];
            sending = 1;
        }
    char where[32];
    snprintf(where, sizeof where, "rank %d", peer);
    return dj_error_set(DJ_ERR_IO, where,
                        "rank %d got no %s from rank %d within %.0f s (%s of %zu values): that rank died, hung "
                        "or is in a different step; stopping",
                        r->c->rank, sending ? "acknowledgement" : "data", peer, r->c->timeout,
                        r->kind == DJ_REQ_BCAST ? "broadcast" : "all-reduce", r->n);
}
#endif

/* Finishes this rank's slice and starts the all-gather. */
__attribute__((unused)) static dj_status dj_reduce_slice(dj_comm_request *r) {
    dj_comm *c = r->c;
    const size_t es = dj_elem_size(r->elem);
    const size_t lo = dj_slice_lo(r->n, c->rank, c->size), count = dj_slice_lo(r->n, c->rank + 1, c->size) - lo;
    void *mine = r->buf + lo * es;
    const int mean = r->op == DJ_REDUCE_MEAN;
    if (r->elem == DJ_ELEM_F32)
        dj_sum_f32(mine, (float *)r->recv, count, c->rank, c->size, mean);
    else if (r->elem == DJ_ELEM_F64)
        dj_sum_f64(mine, (double *)r->recv, count, c->rank, c->size, mean);
    else
        dj_sum_i64(mine, (int64_t *)r->recv, count, c->rank, c->size, mean);
    return DJ_OK;
}

/* Advances r; *done when it completed (r is then freed). On failure r is
 * freed and the comm marked broken. */
static dj_status dj_advance(dj_comm_request *r, int *done) {
    *done = 0;
    if (r->phase == 3) {
        *done = 1;
        dj_request_free(r);
        return DJ_OK;
    }
#ifdef DJ_HAVE_MPI
    dj_status s = DJ_OK;
    for (;;) {
        int phase_done = 0;
        s = dj_comm_progress(r, &phase_done);
        if (s != DJ_OK || !phase_done)
            break;
        if (r->kind == DJ_REQ_BCAST || r->phase == 2) {
            r->phase = 3;
            *done = 1;
            dj_request_free(r);
            return DJ_OK;
        }
        dj_reduce_slice(r);
        r->phase = 2;
        s = dj_post_phase(r);
        if (s != DJ_OK)
            break;
    }
    if (s == DJ_OK && r->c->timeout > 0 && dj_time_now() - r->start > r->c->timeout)
        s = dj_timed_out(r);
    if (s != DJ_OK) {
        dj_request_abandon(r);
        dj_request_free(r);
    }
    return s;
#else
    return dj_error_set(DJ_ERR_INTERNAL, "comm", "a pending request in a build without MPI");
#endif
}

/* ---- starting collectives ----------------------------------------------- */

static dj_status dj_start(dj_comm *c, dj_req_kind kind, dj_elem elem, void *buf, size_t n, dj_reduce_op op,
                          dj_comm_request **out) {
    *out = NULL;
    if (c->broken)
        return dj_error_set(DJ_ERR_IO, "comm", "the communicator failed earlier: no more collectives");
    if (n > 0 && !buf)
        return dj_error_set(DJ_ERR_INVALID, "comm", "NULL buffer for %zu values", n);
    if (op != DJ_REDUCE_SUM && op != DJ_REDUCE_MEAN)
        return dj_error_set(DJ_ERR_INVALID, "comm", "unknown reduction %d", (int)op);
    dj_comm_request *r = calloc(1, sizeof *r);
    if (!r)
        return dj_error_set(DJ_ERR_NOMEM, "comm", "cannot allocate a request");
    r->c = c;
    r->kind = kind;
    r->elem = elem;
    r->op = op;
    r->buf = buf;
    r->n = n;
    r->phase = c->is_mpi && c->size > 1 ? 1 : 3; /* one rank: nothing to exchange */
    r->start = dj_time_now();
    r->tag = (int)(c->seq++ % DJ_COMM_TAG_SLOTS) * 2;
#ifdef DJ_HAVE_MPI
    if (r->phase == 1) {
        const size_t es = dj_elem_size(elem);
        const size_t count = dj_slice_lo(n, c->rank + 1, c->size) - dj_slice_lo(n, c->rank, c->size);
        int m = 2 * (c->size - 1);
        r->reqs = malloc((size_t)m * sizeof *r->reqs);
        r->peer = calloc((size_t)m, sizeof *r->peer);
        r->is_recv = calloc((size_t)m, sizeof *r->is_recv);
        r->recv = kind == DJ_REQ_ALLREDUCE && count ? malloc((size_t)(c->size - 1) * count * es) : NULL;
        if (!r->reqs || !r->peer || !r->is_recv || (kind == DJ_REQ_ALLREDUCE && count && !r->recv)) {
            dj_request_free(r);
            return dj_error_set(DJ_ERR_NOMEM, "comm", "cannot allocate buffers to reduce %zu values", n);
        }
        for (int i = 0; i < m; i++)
            r->reqs[i] = MPI_REQUEST_NULL;
        dj_status s = dj_post_phase(r);
        if (s != DJ_OK) {
            dj_request_abandon(r);
            dj_request_free(r);
            return s;
        }
    }
#endif
    *out = r;
    return DJ_OK;
}

dj_status dj_comm_test(dj_comm_request *r, int *done) {
    if (!r) {
        *done = 1;
        return DJ_OK;
    }
    return dj_advance(r, done);
}

/* Polls until done (MPI moves data only inside calls); after a while each
 * poll yields the core, so that ranks sharing cores (mpirun
 * --oversubscribe) leave them to the ones still computing. */
dj_status dj_comm_wait(dj_comm_request *r) {
    int done = 0, idle = 0;
    for (;;) {
        DJ_TRY(dj_comm_test(r, &done));
        if (done)
            return DJ_OK;
        if (++idle > 1000)
            sched_yield();
    }
}

void dj_comm_request_drop(dj_comm_request *r) {
    if (!r)
        return;
#ifdef DJ_HAVE_MPI
    if (r->phase != 3)
        dj_request_abandon(r);
#endif
    dj_request_free(r);
}

dj_status dj_comm_iallreduce_f32(dj_comm *c, float *buf, size_t n, dj_reduce_op op, dj_comm_request **out) {
    return dj_start(c, DJ_REQ_ALLREDUCE, DJ_ELEM_F32, buf, n, op, out);
}

static dj_status dj_run(dj_comm *c, dj_req_kind kind, dj_elem elem, void *buf, size_t n, dj_reduce_op op,
                        const char *what) {
    dj_comm_request *r;
    dj_status s = dj_start(c, kind, elem, buf, n, op, &r);
    if (s == DJ_OK)
        s = dj_comm_wait(r);
    if (s != DJ_OK)
        dj_error_prefix("%s", what);
    return s;
}

dj_status dj_comm_allreduce_f32(dj_comm *c, float *buf, size_t n, dj_reduce_op op) {
    return dj_run(c, DJ_REQ_ALLREDUCE, DJ_ELEM_F32, buf, n, op, "all-reduce");
}

dj_status dj_comm_allreduce_f64(dj_comm *c, double *buf, size_t n, dj_reduce_op op) {
    return dj_run(c, DJ_REQ_ALLREDUCE, DJ_ELEM_F64, buf, n, op, "all-reduce");
}

dj_status dj_comm_allreduce_i64(dj_comm *c, int64_t *buf, size_t n) {
    return dj_run(c, DJ_REQ_ALLREDUCE, DJ_ELEM_I64, buf, n, DJ_REDUCE_SUM, "all-reduce");
}

dj_status dj_comm_broadcast_bytes(dj_comm *c, void *buf, size_t bytes) {
    return dj_run(c, DJ_REQ_BCAST, DJ_ELEM_BYTE, buf, bytes, DJ_REDUCE_SUM, "broadcast");
}

dj_status dj_comm_broadcast_f32(dj_comm *c, float *buf, size_t n) {
    if (n > SIZE_MAX / sizeof(float))
        return dj_error_set(DJ_ERR_RANGE, "comm", "broadcast of %zu values is too large", n);
    return dj_comm_broadcast_bytes(c, buf, n * sizeof(float));
}

/* Every rank sends to the last one and hears back from it. */
dj_status dj_comm_barrier(dj_comm *c) {
    int64_t token = 0;
    dj_status s = dj_run(c, DJ_REQ_ALLREDUCE, DJ_ELEM_I64, &token, 1, DJ_REDUCE_SUM, "barrier");
    return s;
}

dj_status dj_comm_batch_weight(dj_comm *c, int64_t local_rows, float *weight) {
    if (local_rows < 0)
        return dj_error_set(DJ_ERR_INVALID, "comm", "negative batch size %lld", (long long)local_rows);
    int64_t total = local_rows;
    DJ_TRY(dj_comm_allreduce_i64(c, &total, 1));
    if (total <= 0)
        return dj_error_set(DJ_ERR_INVALID, "comm", "no rank has any rows in this batch");
    *weight = (float)((double)local_rows * c->size / (double)total);
    return DJ_OK;
}
