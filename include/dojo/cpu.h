/* dojo/cpu.h — CPU features detected at run time (cpuid + xgetbv on x86-64).
 *
 * Kernels pick their variant from these flags, so one binary built for
 * baseline x86-64 runs everywhere and uses AVX-512 where the CPU and the OS
 * allow it. A feature counts only when the OS saves its registers. */
#ifndef DOJO_CPU_H
#define DOJO_CPU_H

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dj_cpu_features {
    int sse42;
    int avx;
    int avx2;
    int fma;
    int f16c;
    int avx512f;
    int avx512bw;
    int avx512dq;
    int avx512vl;
    int avx512_vnni;
    int avx512_bf16;
    int neon; /* aarch64 */
    int logical_cores;
    char vendor[16];
    char brand[64];
} dj_cpu_features;

/* The features of this machine, detected once and cached (thread-safe). */
const dj_cpu_features *dj_cpu_detect(void);

/* Writes a space-separated list of the features found ("avx2 fma avx512f
 * ...") into buf; returns buf. */
char *dj_cpu_features_string(const dj_cpu_features *f, char *buf, int size);

/* The widest kernel family usable here and not disabled by the environment
 * variable DOJO_CPU (values: "avx512", "avx512-nobf16", "avx2", "scalar"; a
 * lower value caps the choice, for testing the fallbacks). */
typedef enum dj_cpu_isa {
    DJ_CPU_ISA_SCALAR = 0,
    DJ_CPU_ISA_AVX2 = 1, /* AVX2 + FMA */
    DJ_CPU_ISA_AVX512 = 2, /* AVX-512 F/BW/DQ/VL */
} dj_cpu_isa;

dj_cpu_isa dj_cpu_best_isa(void);
const char *dj_cpu_isa_name(dj_cpu_isa isa);

/* 1 when bf16 matrix products run on vdpbf16ps (AVX-512 allowed, the CPU has
 * avx512_bf16, and DOJO_CPU is not "avx512-nobf16", which keeps AVX-512 but
 * takes the converted bf16 path, for testing it). */
int dj_cpu_bf16_native(void);

#ifdef __cplusplus
}
#endif
#endif
