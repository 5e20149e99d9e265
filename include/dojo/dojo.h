/* dojo/dojo.h — the whole public API of libdojo, one header per subsystem. */
#ifndef DOJO_DOJO_H
#define DOJO_DOJO_H

#include "dojo/error.h"   /* status codes, per-thread error message */
#include "dojo/log.h"     /* leveled logging, progress line */
#include "dojo/cpu.h"     /* run-time CPU features */
#include "dojo/version.h" /* version and build information */
#include "dojo/rng.h"     /* seeded generators, counter-based hashes */
#include "dojo/tensor.h"  /* dense tensors up to 5-D, dtypes, bf16 */
#include "dojo/threadpool.h" /* compute threads */
#include "dojo/gemm.h"    /* matrix multiply */
#include "dojo/ops.h"     /* operator conventions and context */
#include "dojo/ops_pointwise.h" /* activations, softmax, dropout, add/mul, permute, attention, losses */

#endif
