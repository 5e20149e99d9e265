/* dojo/dojo.h — the whole public API of libdojo, one header per subsystem. */
#ifndef DOJO_DOJO_H
#define DOJO_DOJO_H

#include "dojo/error.h"   /* status codes, per-thread error message */
#include "dojo/log.h"     /* leveled logging, progress line */
#include "dojo/cpu.h"     /* run-time CPU features */
#include "dojo/version.h" /* version and build information */
#include "dojo/fs.h"      /* folders with parents, atomic file writes */
#include "dojo/rng.h"     /* seeded generators, counter-based hashes */
#include "dojo/config.h"  /* YAML/JSON configs with strict keys */
#include "dojo/tensor.h"  /* dense tensors up to 5-D, dtypes, bf16 */
#include "dojo/threadpool.h" /* compute threads */
#include "dojo/gemm.h"    /* matrix multiply */
#include "dojo/ops.h"     /* operator conventions and context */
#include "dojo/arena.h"   /* one mapped block per model */
#include "dojo/graph.h"   /* operator graph, memory plan, passes */
#include "dojo/layers.h"  /* operators as graph nodes, layer builders */
#include "dojo/optim.h"   /* SGD, AdamW, clipping, schedules */
#include "dojo/dataset.h" /* labelled video lists: class folders, list files, Kinetics CSV */
#include "dojo/transform.h" /* decoded frame -> cropped, resized, normalised batch slice */
#include "dojo/sampling.h" /* epoch order, shards, clip frames, crops, batch plans */
#include "dojo/video.h"   /* probe, frame index, exact-seek reader, data-set index */
#include "dojo/safetensors.h" /* .safetensors reader and atomic writer */
#include "dojo/checkpoint.h" /* training checkpoints: save, resume, load weights, rotate */
#include "dojo/synth.h"   /* video writer, synthetic motion data set, test clips */
#include "dojo/ops_spatial.h" /* conv3d, linear, norms, pools, patch embedding */
#include "dojo/ops_pointwise.h" /* activations, softmax, dropout, add/mul, permute, attention, losses */
#include "dojo/metrics.h" /* run metrics: metrics.jsonl, TensorBoard events, HTML report */
#include "dojo/dist.h"    /* communicator (single process, MPI), bucketed gradient all-reduce */
#include "dojo/trace.h"   /* per-process timeline in Chrome's trace event format */
#include "dojo/device.h"  /* --device, GPU enumeration and versions, device arena, pinned ring */
#include "dojo/ops_cuda.h" /* the CUDA operators (functions exist in CUDA builds) and their table */
#include "dojo/nccl.h"    /* GPU all-reduce through NCCL */

#endif
