/* rng.c — xoshiro256** for sequences, a splitmix64-style mixer for counters.
 * Both are a few lines from the published algorithms (public domain
 * descriptions by Blackman and Vigna, and Steele et al.), written here. */
#include "dojo/rng.h"

#include <math.h>

static uint64_t dj_mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t dj_rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void dj_rng_seed(dj_rng *r, uint64_t seed, uint64_t stream) {
    uint64_t x = dj_mix64(seed ^ dj_mix64(stream + 0x9e3779b97f4a7c15ull));
    for (int i = 0; i < 4; i++) {
        x += 0x9e3779b97f4a7c15ull;
        r->s[i] = dj_mix64(x);
    }
    if ((r->s[0] | r->s[1] | r->s[2] | r->s[3]) == 0)
        r->s[0] = 1; /* the all-zero state is a fixed point */
}

uint64_t dj_rng_u64(dj_rng *r) {
    uint64_t *s = r->s;
    uint64_t result = dj_rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = dj_rotl(s[3], 45);
    return result;
}

float dj_rng_float(dj_rng *r) { return (float)(dj_rng_u64(r) >> 40) * (1.0f / 16777216.0f); }

double dj_rng_double(dj_rng *r) { return (double)(dj_rng_u64(r) >> 11) * (1.0 / 9007199254740992.0); }

uint64_t dj_rng_below(dj_rng *r, uint64_t n) {
    if (n == 0)
        return 0;
    uint64_t limit = UINT64_MAX - UINT64_MAX % n; /* reject the biased tail */
    uint64_t x;
    do
        x = dj_rng_u64(r);
    while (x >= limit);
    return x % n;
}

double dj_rng_normal(dj_rng *r) {
    double u1 = dj_rng_double(r);
    double u2 = dj_rng_double(r);
    if (u1 < 1e-300)
        u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

uint64_t dj_hash_u64(uint64_t seed, uint64_t stream, uint64_t counter) {
    uint64_t k = dj_mix64(seed + 0x9e3779b97f4a7c15ull * (stream + 1));
    return dj_mix64(k ^ dj_mix64(counter + 0x632be59bd9b4e019ull));
}

float dj_hash_float(uint64_t seed, uint64_t stream, uint64_t counter) {
    return (float)(dj_hash_u64(seed, stream, counter) >> 40) * (1.0f / 16777216.0f);
}
