/* tests/test_vmath.c — accuracy of the AVX-512 vector math (kernels/avx512/vmath.h) against libm,
 * and AVX-512 vs portable elementwise kernels called directly (no tensors) on odd lengths,
 * special values and the multi-threaded / streaming-store paths.
 *
 * Accuracy is measured in ulp of the exact result (libm in double, rounded to f32 only to find
 * the ulp size; below FLT_MIN the ulp is the denormal spacing 2^-149). Each function is swept
 * over a stride of all 2^32 bit patterns plus a dense sweep of its interesting range and a list
 * of edge values; NaN, infinities and signed zeros must match exactly. The worst case of each
 * function is printed.
 * Everything here is skipped on a CPU (or a build) without AVX-512.
 */
#include "kernels/cpu.h"
#include "kernels/elementwise.h"
#include "tests/test.h"

#include <float.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifndef DV_NO_AVX512

/* the vector functions, one array at a time (compiled for AVX-512 here only; called only after
 * the CPUID check) */
#pragma GCC push_options
#pragma GCC target("avx512f,avx512dq,avx512bw,avx512vl,fma")
#include "kernels/avx512/vmath.h"

#define VM_MAP(name, fn)                                                                \
    static void name(int64_t n, const float *x, float *y) {                             \
        int64_t i = 0;                                                                  \
        for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, fn(_mm512_loadu_ps(x + i))); \
        if (i < n) {                                                                    \
            __mmask16 m = (__mmask16)((1u << (n - i)) - 1);                             \
            _mm512_mask_storeu_ps(y + i, m, fn(_mm512_maskz_loadu_ps(m, x + i)));       \
        }                                                                               \
    }
VM_MAP(map_exp, vm_exp)
VM_MAP(map_log, vm_log)
VM_MAP(map_tanh, vm_tanh)
VM_MAP(map_sigmoid, vm_sigmoid)
VM_MAP(map_erf, vm_erf)
VM_MAP(map_normcdf, vm_normcdf)
#undef VM_MAP

static void hsum_hmax(const float *x, float *sum, float *max) {
    __m512 v = _mm512_loadu_ps(x);
    *sum = vm_hsum(v);
    *max = vm_hmax(v);
}
#pragma GCC pop_options

static bool have_avx512(void) {
    if (dv_cpu_has_avx512()) return true;
    printf("  (no AVX-512 on this CPU: skipped)\n");
    return false;
}

static float from_bits(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static uint32_t to_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }

/* a small deterministic generator: uniform in [0, 1) */
static uint64_t g_rng;
static double urand(void) {
    g_rng = g_rng * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(g_rng >> 11) * 0x1p-53;
}

/* ---------------------------------------------------------------------------------------------
 * vmath accuracy
 */
static double ref_sigmoid(double x) { return 1 / (1 + exp(-x)); }
static double ref_normcdf(double x) { return 0.5 * erfc(-x * 0.70710678118654752440); }

typedef struct {
    const char *name;
    void (*map)(int64_t n, const float *x, float *y);
    double (*ref)(double);
    double lo, hi;    /* the dense sweep */
    double max_ulp;   /* the bound the test holds it to */
} vm_case;

static const vm_case k_vm_cases[] = {
    {"exp", map_exp, exp, -104.5, 89.0, 1.5},
    {"log", map_log, log, 0.0, 4.0, 1.5},
    {"tanh", map_tanh, tanh, -10.0, 10.0, 2.0},
    {"sigmoid", map_sigmoid, ref_sigmoid, -105.0, 20.0, 2.5},
    {"erf", map_erf, erf, -5.0, 5.0, 2.0},
    {"normcdf", map_normcdf, ref_normcdf, -14.0, 6.0, 10.0},
};

static double ulp_size(double r) {
    float f = (float)fabs(r);
    if (f < FLT_MIN) return 0x1p-149;
    int e;
    frexpf(f, &e); /* f in [2^(e-1), 2^e) */
    return ldexp(1.0, e - 24);
}

/* error of y against the exact r in ulp; inf when the kinds differ (NaN, inf, signed zero) */
static double ulp_error(float y, double r) {
    if (isnan(r)) return isnan(y) ? 0 : INFINITY;
    if (isnan(y)) return INFINITY;
    float rf = (float)r; /* rounds to inf beyond FLT_MAX */
    if (isinf(rf) || isinf(y)) return y == rf ? 0 : INFINITY;
    if (r == 0) return (y == 0 && !signbit(y) == !signbit(r)) ? 0 : INFINITY;
    return fabs((double)y - r) / ulp_size(r);
}

static const float k_edges[] = {
    0.0f, -0.0f, 1.0f, -1.0f, 0.5f, -0.5f, 2.0f, 1e-45f, -1e-45f, 1e-40f, -1e-40f, FLT_MIN, -FLT_MIN,
    1e-30f, -1e-30f, 1e-8f, -1e-8f, 1e-4f, -1e-4f, 0.625f, -0.625f, 0.875f, -0.875f, 1.2374369f,
    -1.2374369f, 3.92f, -3.92f, 10.0f, -10.0f, 14.2f, -14.2f, 20.0f, -20.0f, 87.33f, -87.33f,
    88.7228f, 88.72284f, 88.7229f, 89.0f, -103.27f, -103.97f, -103.98f, -104.0f, -150.0f, 1e10f,
    -1e10f, FLT_MAX, -FLT_MAX, 0.75f, 0.7499999f, 1.5f, 1.4999999f, 0.99999994f, 1.0000001f,
};

TEST(vmath_ulp_vs_libm) {
    if (!have_avx512()) return;
    enum { NB = 1 << 16 };
    float *x = malloc(NB * sizeof *x), *y = malloc(NB * sizeof *y);
    for (size_t k = 0; k < sizeof k_vm_cases / sizeof k_vm_cases[0]; k++) {
        const vm_case *c = &k_vm_cases[k];
        double worst = 0;
        float worst_x = 0, worst_y = 0;
        int64_t nvals = 0;
        /* pass 0: every 4099th bit pattern (all signs, exponents, denormals, inf, NaN);
         * pass 1: a dense uniform sweep of [lo, hi]; pass 2: the edge values and their specials */
        for (int pass = 0; pass < 3; pass++) {
            int64_t total = pass == 0 ? (int64_t)(0x100000000ull / 4099) + 1 : pass == 1 ? 1 << 19 : 0;
            if (pass == 2) {
                int m = 0;
                for (size_t i = 0; i < sizeof k_edges / sizeof k_edges[0]; i++) x[m++] = k_edges[i];
                x[m++] = INFINITY;
                x[m++] = -INFINITY;
                x[m++] = NAN;
                x[m++] = -NAN;
                total = m;
            }
            for (int64_t done = 0; done < total; done += NB) {
                int64_t n = total - done < NB ? total - done : NB;
                if (pass == 0)
                    for (int64_t i = 0; i < n; i++) x[i] = from_bits((uint32_t)((done + i) * 4099));
                else if (pass == 1)
                    for (int64_t i = 0; i < n; i++) x[i] = (float)(c->lo + (c->hi - c->lo) * (double)(done + i) / total);
                c->map(n, x, y);
                for (int64_t i = 0; i < n; i++) {
                    double e = ulp_error(y[i], c->ref((double)x[i]));
                    if (e > worst || e != e) { worst = e; worst_x = x[i]; worst_y = y[i]; }
                }
                nvals += n;
            }
        }
        printf("  vm_%-8s max %.3f ulp (at x = %.9g) over %lld values\n", c->name, worst, worst_x,
               (long long)nvals);
        CHECK_MSG(worst <= c->max_ulp, "vm_%s: %.3f ulp at x = %a (%.9g): got %.9g, exact %.9g",
                  c->name, worst, worst_x, worst_x, worst_y, c->ref(worst_x));
    }
    free(x);
    free(y);
}

/* exact values that are worth pinning down one by one */
TEST(vmath_special_values) {
    if (!have_avx512()) return;
    float x[16], y[16];
#define ONE(map, in) (x[0] = (in), map(1, x, y), y[0])
    CHECK(ONE(map_exp, 0.0f) == 1.0f);
    CHECK(ONE(map_exp, -0.0f) == 1.0f);
    CHECK(ONE(map_exp, INFINITY) == INFINITY);
    CHECK(ONE(map_exp, -INFINITY) == 0.0f);
    CHECK(isnan(ONE(map_exp, NAN)));
    CHECK(ONE(map_exp, 89.0f) == INFINITY);
    CHECK(ONE(map_exp, -104.0f) == 0.0f);
    CHECK(ONE(map_exp, -100.0f) > 0.0f && y[0] < FLT_MIN); /* a denormal */
    CHECK(ONE(map_log, 1.0f) == 0.0f && !signbit(y[0]));
    CHECK(ONE(map_log, 0.0f) == -INFINITY);
    CHECK(ONE(map_log, -0.0f) == -INFINITY);
    CHECK(isnan(ONE(map_log, -1.0f)));
    CHECK(isnan(ONE(map_log, -INFINITY)));
    CHECK(ONE(map_log, INFINITY) == INFINITY);
    CHECK(isnan(ONE(map_log, NAN)));
    CHECK_CLOSE(ONE(map_log, 1e-45f), log((double)1e-45f), 1e-6);
    CHECK(ONE(map_tanh, -0.0f) == 0.0f && signbit(y[0]));
    CHECK(ONE(map_tanh, INFINITY) == 1.0f);
    CHECK(ONE(map_tanh, -INFINITY) == -1.0f);
    CHECK(isnan(ONE(map_tanh, NAN)));
    CHECK(ONE(map_tanh, 1e-30f) == 1e-30f);
    CHECK(ONE(map_sigmoid, INFINITY) == 1.0f);
    CHECK(ONE(map_sigmoid, -INFINITY) == 0.0f);
    CHECK(ONE(map_sigmoid, 0.0f) == 0.5f);
    CHECK(isnan(ONE(map_sigmoid, NAN)));
    CHECK(ONE(map_erf, INFINITY) == 1.0f);
    CHECK(ONE(map_erf, -INFINITY) == -1.0f);
    CHECK(ONE(map_erf, -0.0f) == 0.0f && signbit(y[0]));
    CHECK(isnan(ONE(map_erf, NAN)));
    CHECK(ONE(map_normcdf, 0.0f) == 0.5f);
    CHECK(ONE(map_normcdf, INFINITY) == 1.0f);
    CHECK(ONE(map_normcdf, -INFINITY) == 0.0f);
    CHECK(isnan(ONE(map_normcdf, NAN)));
#undef ONE
    /* horizontal helpers */
    for (int i = 0; i < 16; i++) x[i] = (float)(i * 3 % 7) - 2.5f;
    float s, m, es = 0, em = -INFINITY;
    for (int i = 0; i < 16; i++) { es += x[i]; em = fmaxf(em, x[i]); }
    hsum_hmax(x, &s, &m);
    CHECK(s == es);
    CHECK(m == em);
}

/* ---------------------------------------------------------------------------------------------
 * Elementwise kernels: AVX-512 vs portable, at the kernel level
 */
typedef struct {
    dv_unary_op op;
    double p1, p2;
    bool positive;     /* needs x > 0 */
    double tol_fwd;    /* |avx - portable| <= tol * max(floor, |portable|) */
    double floor_fwd;  /* 1 where the portable formula cancels (absolute error there) */
    double tol_bwd;    /* the same for gx, relative to max(1, |portable|) */
} ew_case;

/* Tolerances are a few times the worst difference seen (tests print it with -v). */
static const ew_case k_ew[] = {
    {DV_UNARY_NEG, 0, 0, false, 0, 1e-30, 0},
    {DV_UNARY_EXP, 0, 0, false, 3e-7, 1e-30, 3e-7},
    {DV_UNARY_LOG, 0, 0, true, 3e-7, 1e-30, 0},
    {DV_UNARY_SQRT, 0, 0, true, 0, 1e-30, 0},
    {DV_UNARY_RSQRT, 0, 0, true, 0, 1e-30, 0},
    {DV_UNARY_ABS, 0, 0, false, 0, 1e-30, 0},
    {DV_UNARY_TANH, 0, 0, false, 3e-7, 1e-30, 3e-7},
    {DV_UNARY_SIGMOID, 0, 0, false, 4e-7, 1e-30, 3e-7},
    {DV_UNARY_RELU, 0, 0, false, 0, 1e-30, 0},
    {DV_UNARY_GELU, 0, 0, false, 3e-7, 1, 4e-7},
    {DV_UNARY_GELU_TANH, 0, 0, false, 3e-7, 1, 1e-6}, /* x (1 - th^2) amplifies tanh rounding */
    /* s (1 + x (1 - s)) amplifies the sigmoid's rounding by |x| where s -> 1 (in both sets) */
    {DV_UNARY_QUICK_GELU, 0, 0, false, 4e-7, 1e-30, 1.5e-6},
    {DV_UNARY_SILU, 0, 0, false, 4e-7, 1e-30, 1.5e-6},
    {DV_UNARY_SQUARE, 0, 0, false, 0, 1e-30, 0},
    {DV_UNARY_POW, 2.0, 0, true, 1.2e-7, 1e-30, 0}, /* x * x vs powf(x, 2) */
    {DV_UNARY_POW, 2.5, 0, true, 0, 1e-30, 0}, /* portable in both sets */
    {DV_UNARY_CLAMP, -0.5, 0.7, false, 0, 1e-30, 0},
    {DV_UNARY_AFFINE, -1.5, 0.25, false, 1e-7, 1, 1e-7},
};
#define N_EW (int)(sizeof k_ew / sizeof k_ew[0])

static const float k_specials[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, 1e-40f, -1e-40f, 1e-30f, -1e-30f,
                                   30.0f, -30.0f, 80.0f, -80.0f, 1e20f, -1e20f, 1e-3f, -1e-3f};
#define N_SPECIALS (int)(sizeof k_specials / sizeof k_specials[0])

static void fill_input(const ew_case *c, int64_t n, float *x, bool specials) {
    for (int64_t i = 0; i < n; i++) {
        double u = urand(), v = (u - 0.5) * 16; /* [-8, 8] */
        if (c->positive) v = fabs(v) * 2 + 1e-3;
        x[i] = (float)v;
    }
    if (specials)
        for (int64_t i = 0; i < n; i += 7) x[i] = k_specials[(i / 7) % N_SPECIALS];
}

/* worst |a - b| / max(floor, |b|); +inf when one is NaN/inf and the other is not the same */
static double worst_diff(int64_t n, const float *a, const float *b, double floor, int64_t *at) {
    double w = 0;
    for (int64_t i = 0; i < n; i++) {
        double e;
        if (isnan(a[i]) || isnan(b[i])) e = (isnan(a[i]) && isnan(b[i])) ? 0 : INFINITY;
        else if (isinf(a[i]) || isinf(b[i])) e = a[i] == b[i] ? 0 : INFINITY;
        else e = fabs((double)a[i] - b[i]) / fmax(floor, fabs((double)b[i]));
        if (e > w) { w = e; *at = i; }
    }
    return w;
}

/* one op at one length: forward, then backward from the portable y */
static void check_unary(const ew_case *c, int64_t n, int offset, bool specials, double *wf, double *wb) {
    /* offset shifts every array off the 64-byte alignment (no streaming stores then) */
    size_t bytes = ((size_t)(6 * (n + 16 + offset)) * sizeof(float) + 127) / 64 * 64; /* aligned_alloc wants a multiple */
    float *buf = aligned_alloc(64, bytes);
    float *x = buf + offset, *y0 = x + n + 16, *y1 = y0 + n + 16, *gy = y1 + n + 16;
    float *g0 = gy + n + 16, *g1 = g0 + n + 16;
    fill_input(c, n, x, specials);
    for (int64_t i = 0; i < n; i++) gy[i] = (float)(urand() * 2 - 1);
    for (int i = 0; i < 16; i++) y1[n + i] = g1[n + i] = 12345.0f; /* guards past the end */
    dv_unary_f32_portable(c->op, n, x, y0, c->p1, c->p2);
    dv_unary_f32_avx512(c->op, n, x, y1, c->p1, c->p2);
    int64_t at = 0;
    double e = worst_diff(n, y1, y0, c->floor_fwd, &at);
    if (e > *wf) *wf = e;
    CHECK_MSG(e <= c->tol_fwd, "%s(p=%g) n=%lld: forward differs by %.3g at x=%.9g: avx512 %.9g portable %.9g",
              dv_unary_name(c->op), c->p1, (long long)n, e, x[at], y1[at], y0[at]);
    dv_unary_backward_f32_portable(c->op, n, x, y0, gy, g0, c->p1, c->p2);
    dv_unary_backward_f32_avx512(c->op, n, x, y0, gy, g1, c->p1, c->p2);
    e = worst_diff(n, g1, g0, 1.0, &at);
    if (e > *wb) *wb = e;
    CHECK_MSG(e <= c->tol_bwd, "%s(p=%g) n=%lld: backward differs by %.3g at x=%.9g: avx512 %.9g portable %.9g",
              dv_unary_name(c->op), c->p1, (long long)n, e, x[at], g1[at], g0[at]);
    for (int i = 0; i < 16; i++) CHECK(y1[n + i] == 12345.0f && g1[n + i] == 12345.0f);
    free(buf);
}

TEST(vmath_unary_kernels_odd_lengths) {
    if (!have_avx512()) return;
    static const int64_t lens[] = {0, 1, 15, 16, 17, 31, 1000, 40009}; /* the last: > PAR_MIN */
    g_rng = 1;
    for (int k = 0; k < N_EW; k++) {
        double wf = 0, wb = 0;
        for (size_t l = 0; l < sizeof lens / sizeof lens[0]; l++) {
            check_unary(&k_ew[k], lens[l], 0, false, &wf, &wb);
            check_unary(&k_ew[k], lens[l], 3, true, &wf, &wb);
        }
        if (dv_test_verbose)
            printf("  %-10s p=%-4g worst forward %.3g, backward %.3g\n", dv_unary_name(k_ew[k].op),
                   k_ew[k].p1, wf, wb);
    }
}

/* outputs over STREAM_MIN_BYTES take the streaming-store path: aligned and not */
TEST(vmath_unary_kernels_streaming) {
    if (!have_avx512()) return;
    g_rng = 2;
    double wf = 0, wb = 0;
    const ew_case *silu = &k_ew[12];
    CHECK(silu->op == DV_UNARY_SILU);
    check_unary(silu, (1 << 22) + 7, 0, false, &wf, &wb);
    check_unary(silu, (1 << 22) + 7, 1, false, &wf, &wb);
}

/* binary: the vector code must give the same bits as the portable code (NaN for NaN) */
static void check_binary(dv_binary_op op, int ndim, const int64_t *shape, const int64_t *sa,
                         const int64_t *sb, int64_t na, int64_t nb, const char *what) {
    float *a = malloc((size_t)(na ? na : 1) * sizeof(float)), *b = malloc((size_t)(nb ? nb : 1) * sizeof(float));
    for (int64_t i = 0; i < na; i++) a[i] = (float)(urand() * 4 - 2);
    for (int64_t i = 0; i < nb; i++) b[i] = (float)(urand() * 4 - 2);
    /* ties, signed zeros, NaNs and infinities on either side */
    for (int64_t i = 0; i < na; i += 5) a[i] = k_specials[(i / 5) % 5];
    for (int64_t i = 0; i < nb; i += 3) b[i] = k_specials[(i / 3) % 5];
    for (int64_t i = 2; i < na && i < nb; i += 11) a[i] = b[i];
    int64_t n = 1;
    for (int d = 0; d < ndim; d++) n *= shape[d];
    bool cmp = op >= DV_BINARY_EQ;
    size_t es = cmp ? 1 : sizeof(float);
    unsigned char *y0 = malloc(n * es + 64), *y1 = malloc(n * es + 64);
    memset(y1 + n * es, 0x5a, 64);
    dv_binary_f32_portable(op, ndim, shape, a, sa, b, sb, y0);
    dv_binary_f32_avx512(op, ndim, shape, a, sa, b, sb, y1);
    int64_t bad = -1;
    for (int64_t i = 0; i < n && bad < 0; i++) {
        if (cmp) { if (y0[i] != y1[i]) bad = i; }
        else {
            float u = ((float *)y0)[i], v = ((float *)y1)[i];
            if (!(isnan(u) && isnan(v)) && to_bits(u) != to_bits(v)) bad = i;
        }
    }
    CHECK_MSG(bad < 0, "%s %s: element %lld differs", dv_binary_name(op), what, (long long)bad);
    for (int i = 0; i < 64; i++) CHECK(y1[n * es + i] == 0x5a);
    free(a); free(b); free(y0); free(y1);
}

TEST(vmath_binary_kernels) {
    if (!have_avx512()) return;
    g_rng = 3;
    static const int64_t lens[] = {1, 15, 16, 17, 1000, 40009};
    for (int op = 0; op < DV_BINARY_COUNT; op++) {
        dv_binary_op o = (dv_binary_op)op;
        for (size_t l = 0; l < sizeof lens / sizeof lens[0]; l++) {
            int64_t n = lens[l];
            check_binary(o, 1, (int64_t[]){n}, (int64_t[]){1}, (int64_t[]){1}, n, n, "contiguous");
            check_binary(o, 1, (int64_t[]){n}, (int64_t[]){1}, (int64_t[]){0}, n, 1, "scalar b");
            check_binary(o, 1, (int64_t[]){n}, (int64_t[]){0}, (int64_t[]){1}, 1, n, "scalar a");
            check_binary(o, 2, (int64_t[]){3, n}, (int64_t[]){n, 1}, (int64_t[]){0, 1}, 3 * n, n, "row broadcast");
            check_binary(o, 2, (int64_t[]){3, n}, (int64_t[]){n, 1}, (int64_t[]){1, 0}, 3 * n, 3, "column broadcast");
            check_binary(o, 2, (int64_t[]){n, 3}, (int64_t[]){1, n}, (int64_t[]){3, 1}, 3 * n, 3 * n, "transposed a");
            check_binary(o, 3, (int64_t[]){2, 1, n}, (int64_t[]){n, 7, 1}, (int64_t[]){n, 0, 1}, 2 * n, 2 * n, "size-1 dim");
        }
        check_binary(o, 2, (int64_t[]){4, 0}, (int64_t[]){0, 1}, (int64_t[]){0, 1}, 0, 0, "empty");
    }
    /* streaming path: one long row (split over threads) and a big 2-D contiguous block */
    check_binary(DV_BINARY_ADD, 1, (int64_t[]){(1 << 22) + 5}, (int64_t[]){1}, (int64_t[]){1},
                 (1 << 22) + 5, (1 << 22) + 5, "streaming");
    check_binary(DV_BINARY_MUL, 2, (int64_t[]){1024, 4100}, (int64_t[]){4100, 1}, (int64_t[]){0, 1},
                 1024 * 4100, 4100, "streaming row broadcast");
}

#endif /* DV_NO_AVX512 */
