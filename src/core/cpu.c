/* cpu.c — run-time CPU feature detection (cpuid/xgetbv on x86-64). */
#include "dojo/cpu.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

static unsigned long long dj_xgetbv0(void) {
    unsigned int eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((unsigned long long)edx << 32) | eax;
}

static void dj_cpu_detect_x86(dj_cpu_features *f) {
    unsigned int a, b, c, d;
    unsigned int max_leaf = __get_cpuid_max(0, NULL);
    if (max_leaf == 0)
        return;
    __cpuid(0, a, b, c, d);
    memcpy(f->vendor + 0, &b, 4);
    memcpy(f->vendor + 4, &d, 4);
    memcpy(f->vendor + 8, &c, 4);
    f->vendor[12] = '\0';

    __cpuid(1, a, b, c, d);
    int osxsave = (c >> 27) & 1;
    f->sse42 = (c >> 20) & 1;
    int avx_hw = (c >> 28) & 1;
    int fma_hw = (c >> 12) & 1;
    int f16c_hw = (c >> 29) & 1;
    unsigned long long xcr0 = osxsave ? dj_xgetbv0() : 0;
    int ymm_os = (xcr0 & 0x6) == 0x6;    /* SSE + AVX state */
    int zmm_os = (xcr0 & 0xe6) == 0xe6;  /* + opmask, ZMM_Hi256, Hi16_ZMM */
    f->avx = avx_hw && ymm_os;
    f->fma = fma_hw && ymm_os;
    f->f16c = f16c_hw && ymm_os;

    if (max_leaf >= 7) {
        __cpuid_count(7, 0, a, b, c, d);
        unsigned int leaf7_max_sub = a;
        f->avx2 = ((b >> 5) & 1) && ymm_os;
        f->avx512f = ((b >> 16) & 1) && zmm_os;
        f->avx512dq = ((b >> 17) & 1) && zmm_os;
        f->avx512bw = ((b >> 30) & 1) && zmm_os;
        f->avx512vl = ((b >> 31) & 1) && zmm_os;
        f->avx512_vnni = ((c >> 11) & 1) && zmm_os;
        if (leaf7_max_sub >= 1) {
            __cpuid_count(7, 1, a, b, c, d);
            f->avx512_bf16 = ((a >> 5) & 1) && zmm_os;
        }
    }
    unsigned int ext_max = __get_cpuid_max(0x80000000, NULL);
    if (ext_max >= 0x80000004) {
        unsigned int regs[12];
        for (unsigned int i = 0; i < 3; i++)
            __cpuid(0x80000002 + i, regs[4 * i], regs[4 * i + 1], regs[4 * i + 2], regs[4 * i + 3]);
        memcpy(f->brand, regs, 48);
        f->brand[48] = '\0';
        /* brand strings are padded with leading/trailing spaces */
        char *s = f->brand;
        while (*s == ' ')
            s++;
        memmove(f->brand, s, strlen(s) + 1);
        size_t n = strlen(f->brand);
        while (n > 0 && f->brand[n - 1] == ' ')
            f->brand[--n] = '\0';
    }
}
#endif

static dj_cpu_features dj_cpu_cached;
static pthread_once_t dj_cpu_once = PTHREAD_ONCE_INIT;

static void dj_cpu_detect_once(void) {
    dj_cpu_features *f = &dj_cpu_cached;
    memset(f, 0, sizeof *f);
#if defined(__x86_64__) || defined(__i386__)
    dj_cpu_detect_x86(f);
#elif defined(__aarch64__)
    f->neon = 1;
    strcpy(f->vendor, "arm");
#endif
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    f->logical_cores = n > 0 ? (int)n : 1;
}

const dj_cpu_features *dj_cpu_detect(void) {
    pthread_once(&dj_cpu_once, dj_cpu_detect_once);
    return &dj_cpu_cached;
}

char *dj_cpu_features_string(const dj_cpu_features *f, char *buf, int size) {
    struct {
        const char *name;
        int on;
    } items[] = {
        {"sse4.2", f->sse42},       {"avx", f->avx},           {"avx2", f->avx2},
        {"fma", f->fma},            {"f16c", f->f16c},         {"avx512f", f->avx512f},
        {"avx512bw", f->avx512bw},  {"avx512dq", f->avx512dq}, {"avx512vl", f->avx512vl},
        {"avx512_vnni", f->avx512_vnni}, {"avx512_bf16", f->avx512_bf16}, {"neon", f->neon},
    };
    int used = 0;
    if (size > 0)
        buf[0] = '\0';
    for (size_t i = 0; i < sizeof items / sizeof items[0]; i++) {
        if (!items[i].on)
            continue;
        int w = snprintf(buf + used, (size_t)(size - used), "%s%s", used ? " " : "", items[i].name);
        if (w < 0 || w >= size - used)
            break;
        used += w;
    }
    if (used == 0 && size > 5)
        strcpy(buf, "none");
    return buf;
}

dj_cpu_isa dj_cpu_best_isa(void) {
    const dj_cpu_features *f = dj_cpu_detect();
    dj_cpu_isa best = DJ_CPU_ISA_SCALAR;
    if (f->avx2 && f->fma)
        best = DJ_CPU_ISA_AVX2;
    if (best == DJ_CPU_ISA_AVX2 && f->avx512f && f->avx512bw && f->avx512dq && f->avx512vl)
        best = DJ_CPU_ISA_AVX512;
    const char *cap = getenv("DOJO_CPU");
    if (cap) {
        dj_cpu_isa limit = best;
        if (strcmp(cap, "scalar") == 0)
            limit = DJ_CPU_ISA_SCALAR;
        else if (strcmp(cap, "avx2") == 0)
            limit = DJ_CPU_ISA_AVX2;
        else if (strcmp(cap, "avx512") == 0 || strcmp(cap, "avx512-nobf16") == 0)
            limit = DJ_CPU_ISA_AVX512;
        if (limit < best)
            best = limit;
    }
    return best;
}

int dj_cpu_bf16_native(void) {
    const char *cap = getenv("DOJO_CPU");
    if (cap && strcmp(cap, "avx512-nobf16") == 0)
        return 0;
    return dj_cpu_best_isa() == DJ_CPU_ISA_AVX512 && dj_cpu_detect()->avx512_bf16;
}

const char *dj_cpu_isa_name(dj_cpu_isa isa) {
    switch (isa) {
    case DJ_CPU_ISA_SCALAR: return "scalar";
    case DJ_CPU_ISA_AVX2: return "avx2";
    case DJ_CPU_ISA_AVX512: return "avx512";
    }
    return "?";
}
