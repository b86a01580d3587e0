/* kernels/cpu.c — run-time CPU feature detection and the portable/AVX-512 switch. */
#include "cpu.h"

#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#if defined(__x86_64__) && !defined(DV_NO_AVX512)
#include <cpuid.h>
static int detect_avx512(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    int osxsave = (c >> 27) & 1, fma = (c >> 12) & 1, f16c = (c >> 29) & 1;
    if (!osxsave || !fma || !f16c) return 0;
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    if ((lo & 0xe6) != 0xe6) return 0; /* XMM, YMM, opmask, ZMM_Hi256, Hi16_ZMM saved by OS */
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    int f = (b >> 16) & 1, dq = (b >> 17) & 1, bw = (b >> 30) & 1, vl = (b >> 31) & 1;
    return f && dq && bw && vl;
}
#else
static int detect_avx512(void) { return 0; }
#endif

static int g_has = -1;
static int g_isa = -1;

int dv_cpu_has_avx512(void) {
    if (g_has < 0) g_has = detect_avx512();
    return g_has;
}

dv_isa dv_cpu_isa(void) {
    if (g_isa < 0) {
        const char *e = getenv("DV_FORCE_PORTABLE");
        int force = e && *e && strcmp(e, "0") != 0;
        g_isa = (!force && dv_cpu_has_avx512()) ? DV_ISA_AVX512 : DV_ISA_PORTABLE;
    }
    return (dv_isa)g_isa;
}

void dv_cpu_set_isa(dv_isa isa) {
    g_isa = (isa == DV_ISA_AVX512 && dv_cpu_has_avx512()) ? DV_ISA_AVX512 : DV_ISA_PORTABLE;
}

const char *dv_isa_name(dv_isa isa) { return isa == DV_ISA_AVX512 ? "avx512" : "portable"; }

int dv_cpu_threads(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}
