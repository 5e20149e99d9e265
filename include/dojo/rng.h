/* dojo/rng.h — seeded random numbers that make runs reproducible.
 *
 * Two kinds, both pure functions of the seed:
 * - dj_rng: a sequential generator (xoshiro256**) whose whole state is four
 *   words, saved in checkpoints so a resumed run draws the same numbers;
 * - dj_hash_*: counter-based draws, a function of (seed, stream, counter)
 *   only, for work split across threads (dropout masks, per-clip choices):
 *   element i gets the same number whichever thread computes it. */
#ifndef DOJO_RNG_H
#define DOJO_RNG_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dj_rng {
    uint64_t s[4];
} dj_rng;

/* Seeds the generator; different (seed, stream) pairs give independent
 * sequences (the stream separates uses: data order, augmentation, init...). */
void dj_rng_seed(dj_rng *r, uint64_t seed, uint64_t stream);
uint64_t dj_rng_u64(dj_rng *r);
/* Uniform in [0, 1) with 24 (float) or 53 (double) random bits. */
float dj_rng_float(dj_rng *r);
double dj_rng_double(dj_rng *r);
/* Uniform integer in [0, n), without modulo bias; 0 when n == 0. */
uint64_t dj_rng_below(dj_rng *r, uint64_t n);
/* Standard normal (Box-Muller on two draws). */
double dj_rng_normal(dj_rng *r);

/* Counter-based: a well-mixed 64-bit value of (seed, stream, counter). */
uint64_t dj_hash_u64(uint64_t seed, uint64_t stream, uint64_t counter);
/* Uniform in [0, 1) from the same triple. */
float dj_hash_float(uint64_t seed, uint64_t stream, uint64_t counter);

#ifdef __cplusplus
}
#endif
#endif
