/* tests/test_simt_mma.c — tests/simt/mma.h (the CPU SIMT emulator's tensor-core instructions)
 * against the PTX ISA's fragment tables and a plain matrix product in double.
 *
 * The lane/register distribution here is a SEPARATE transcription of the ISA tables, written in
 * the ISA's own element-index form ("a_i: row = groupID for 0 <= i < 2 || 4 <= i < 6 ...",
 * element i in register i / 2, low half first), while mma.h is written per register; both are
 * pinned to hand-read entries of the ISA figures (lane 0, 5, 31) and checked to be bijections.
 * Random A, B, C go through scatter -> warp function -> gather and must match
 *   ref = C + sum_k A[m][k] B[k][n]        (double, rounded to f32 once)
 * Also: identity hand cases (a transposed or half-swapped layout fails them), bf16 / f16 decode
 * of known bit patterns (subnormal, inf, NaN) through the mma itself, cvt.rna.tf32 known answers
 * (ties away from zero, carry into the exponent, overflow to inf, negatives, subnormals, NaN),
 * and that a .tf32 operand's bits 12:0 are ignored (truncated, not rounded). Last, one block
 * tile of gemm.cu and of sgemm_tf32.cu replayed with the kernels' own fragment maps
 * (kernels/cuda/common.h) through mma.h, against the tile's product.
 * Needs no CUDA; runs in `make test`.
 */
#include "tests/test.h"
#include "tests/simt/mma.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

/* ---- the ISA tables, element-index form (groupID g = lane >> 2, threadID_in_group t) ---- */

/* m16n8k16 f16/bf16 A: element a_i, i = 0..7 */
static void isa_a16(int lane, int i, int *row, int *col) {
    int g = lane >> 2, t = lane % 4;
    *row = ((0 <= i && i < 2) || (4 <= i && i < 6)) ? g : g + 8;
    *col = i < 4 ? t * 2 + (i & 0x1) : t * 2 + (i & 0x1) + 8;
}
/* m16n8k16 f16/bf16 B: element b_i, i = 0..3 */
static void isa_b16(int lane, int i, int *row, int *col) {
    int g = lane >> 2, t = lane % 4;
    *row = i < 2 ? t * 2 + (i & 0x1) : t * 2 + (i & 0x1) + 8;
    *col = g;
}
/* C/D f32, both shapes: element c_i, i = 0..3 */
static void isa_c(int lane, int i, int *row, int *col) {
    int g = lane >> 2, t = lane % 4;
    *row = i < 2 ? g : g + 8;
    *col = t * 2 + (i & 0x1);
}
/* m16n8k8 tf32 A: a_i, i = 0..3 */
static void isa_a_tf32(int lane, int i, int *row, int *col) {
    int g = lane >> 2, t = lane % 4;
    *row = (i == 0 || i == 2) ? g : g + 8;
    *col = (i == 0 || i == 1) ? t : t + 4;
}
/* m16n8k8 tf32 B: b_i, i = 0..1 */
static void isa_b_tf32(int lane, int i, int *row, int *col) {
    int g = lane >> 2, t = lane % 4;
    *row = i == 0 ? t : t + 4;
    *col = g;
}

typedef void (*isa_map)(int lane, int i, int *row, int *col);

/* ---- scatter / gather with the tables ---- */

/* 16-bit matrix (bit patterns, ld columns) into x[lane][nreg]: element i -> register i/2, half i%2 */
static void scatter16(isa_map map, int nelem, const uint16_t *m, int ld, uint32_t *x, int nreg) {
    for (int lane = 0; lane < 32; lane++) {
        for (int r = 0; r < nreg; r++) x[lane * nreg + r] = 0;
        for (int i = 0; i < nelem; i++) {
            int row, col;
            map(lane, i, &row, &col);
            x[lane * nreg + i / 2] |= (uint32_t)m[row * ld + col] << (16 * (i % 2));
        }
    }
}
/* 32-bit matrix into x[lane][nelem]: element i -> register i */
static void scatter32(isa_map map, int nelem, const uint32_t *m, int ld, uint32_t *x) {
    for (int lane = 0; lane < 32; lane++)
        for (int i = 0; i < nelem; i++) {
            int row, col;
            map(lane, i, &row, &col);
            x[lane * nelem + i] = m[row * ld + col];
        }
}
static void scatter_c(const float *m, float c[32][4]) {
    for (int lane = 0; lane < 32; lane++)
        for (int i = 0; i < 4; i++) {
            int row, col;
            isa_c(lane, i, &row, &col);
            c[lane][i] = m[row * 8 + col];
        }
}
static void gather_d(float d[32][4], float *m) {
    for (int lane = 0; lane < 32; lane++)
        for (int i = 0; i < 4; i++) {
            int row, col;
            isa_c(lane, i, &row, &col);
            m[row * 8 + col] = d[lane][i];
        }
}

/* ---- independent element decoders ---- */

static double ref_bf16(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}
/* binary16 by its definition: (-1)^s 2^(e-15) (1 + m/1024), subnormal 2^-14 (m/1024) */
static double ref_f16(uint16_t h) {
    int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
    double v = e == 31 ? (m ? NAN : INFINITY)
             : e == 0  ? (m / 1024.0) * pow(2.0, -14)
                       : (1.0 + m / 1024.0) * pow(2.0, e - 15);
    return s ? -v : v;
}
static double ref_tf32(uint32_t bits) {
    uint32_t u = bits & ~(uint32_t)0x1FFF;
    float f;
    memcpy(&f, &u, 4);
    return f;
}
static uint32_t f2u(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}
static float u2f(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static uint64_t rng_next(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}
/* random 16-bit float patterns with exponents near 1 (no inf/NaN, a few zeros) */
static uint16_t rand_bf16(uint64_t *s) {
    uint64_t r = rng_next(s);
    if ((r & 63) == 0) return 0;
    return (uint16_t)(((r >> 8) & 1) << 15 | (124 + (r >> 9) % 6) << 7 | ((r >> 16) & 0x7F));
}
static uint16_t rand_f16(uint64_t *s) {
    uint64_t r = rng_next(s);
    if ((r & 63) == 0) return 0;
    return (uint16_t)(((r >> 8) & 1) << 15 | (12 + (r >> 9) % 6) << 10 | ((r >> 16) & 0x3FF));
}
/* full f32 patterns (the low 13 bits random: the mma must ignore them) */
static uint32_t rand_f32bits(uint64_t *s) {
    uint64_t r = rng_next(s);
    return (uint32_t)(((r >> 8) & 1) << 31 | (124 + (r >> 9) % 6) << 23 | ((r >> 20) & 0x7FFFFF));
}
static float rand_c(uint64_t *s) { return (float)((int)(rng_next(s) % 2001) - 1000) / 256.0f; }

/* ---- the tables themselves ---- */

/* each (row, col) of the matrix is held by exactly one (lane, element) */
static int is_bijection(isa_map map, int nelem, int rows, int cols) {
    int seen[16 * 16] = {0};
    for (int lane = 0; lane < 32; lane++)
        for (int i = 0; i < nelem; i++) {
            int row, col;
            map(lane, i, &row, &col);
            if (row < 0 || row >= rows || col < 0 || col >= cols) return 0;
            seen[row * cols + col]++;
        }
    for (int k = 0; k < rows * cols; k++)
        if (seen[k] != 1) return 0;
    return 32 * nelem == rows * cols;
}

#define CHECK_AT(map, lane, i, r, c)                                                        \
    do {                                                                                    \
        int row_, col_;                                                                     \
        map(lane, i, &row_, &col_);                                                         \
        CHECK_MSG(row_ == (r) && col_ == (c), "%s lane %d elem %d: (%d,%d), ISA figure (%d,%d)", \
                  #map, lane, i, row_, col_, r, c);                                         \
    } while (0)

TEST(simt_mma_fragment_tables) {
    CHECK(is_bijection(isa_a16, 8, 16, 16));
    CHECK(is_bijection(isa_b16, 4, 16, 8));
    CHECK(is_bijection(isa_c, 4, 16, 8));
    CHECK(is_bijection(isa_a_tf32, 4, 16, 8));
    CHECK(is_bijection(isa_b_tf32, 2, 8, 8));
    /* entries read off the ISA figures (Figure 79/81/83 for m16n8k16, 72/75/77 for m16n8k8) */
    CHECK_AT(isa_a16, 0, 0, 0, 0);
    CHECK_AT(isa_a16, 0, 1, 0, 1);
    CHECK_AT(isa_a16, 0, 2, 8, 0);
    CHECK_AT(isa_a16, 0, 4, 0, 8);
    CHECK_AT(isa_a16, 0, 7, 8, 9);
    CHECK_AT(isa_a16, 5, 3, 9, 3);   /* g = 1, t = 1 */
    CHECK_AT(isa_a16, 31, 0, 7, 6);
    CHECK_AT(isa_a16, 31, 7, 15, 15);
    CHECK_AT(isa_b16, 0, 1, 1, 0);
    CHECK_AT(isa_b16, 5, 2, 10, 1);
    CHECK_AT(isa_b16, 31, 3, 15, 7);
    CHECK_AT(isa_c, 5, 1, 1, 3);
    CHECK_AT(isa_c, 31, 3, 15, 7);
    CHECK_AT(isa_a_tf32, 5, 1, 9, 1);
    CHECK_AT(isa_a_tf32, 5, 2, 1, 5);
    CHECK_AT(isa_a_tf32, 31, 3, 15, 7);
    CHECK_AT(isa_b_tf32, 5, 0, 1, 1);
    CHECK_AT(isa_b_tf32, 6, 1, 6, 1);
}

/* ---- random products ---- */

static void check_m16n8k16(int is_bf16, uint64_t seed) {
    uint64_t s = seed;
    uint16_t A[16 * 16], B[16 * 8];
    float C[16 * 8], D[16 * 8];
    for (int k = 0; k < 256; k++) A[k] = is_bf16 ? rand_bf16(&s) : rand_f16(&s);
    for (int k = 0; k < 128; k++) B[k] = is_bf16 ? rand_bf16(&s) : rand_f16(&s);
    for (int k = 0; k < 128; k++) C[k] = rand_c(&s);
    uint32_t a[32][4], b[32][2];
    float c[32][4], d[32][4];
    scatter16(isa_a16, 8, A, 16, &a[0][0], 4);
    scatter16(isa_b16, 4, B, 8, &b[0][0], 2);
    scatter_c(C, c);
    memset(d, 0xFF, sizeof d);
    dv_simt_mma_m16n8k16_warp(is_bf16, d, (const uint32_t(*)[4])a, (const uint32_t(*)[2])b,
                              (const float(*)[4])c);
    gather_d(d, D);
    int bad = 0;
    for (int m = 0; m < 16; m++)
        for (int n = 0; n < 8; n++) {
            double ref = C[m * 8 + n], mag = fabs(ref);
            for (int k = 0; k < 16; k++) {
                double p = is_bf16 ? ref_bf16(A[m * 16 + k]) * ref_bf16(B[k * 8 + n])
                                   : ref_f16(A[m * 16 + k]) * ref_f16(B[k * 8 + n]);
                ref += p;
                mag += fabs(p);
            }
            if (!(fabs(D[m * 8 + n] - ref) <= 1e-6 * mag + 1e-30) && bad++ < 4)
                CHECK_MSG(0, "%s D[%d][%d] = %.9g, ref %.9g", is_bf16 ? "bf16" : "f16", m, n,
                          D[m * 8 + n], ref);
        }
    CHECK(bad == 0);
}

TEST(simt_mma_m16n8k16_bf16_random) {
    for (uint64_t seed = 1; seed <= 20; seed++) check_m16n8k16(1, seed * 0x9E3779B97F4A7C15ull);
}

TEST(simt_mma_m16n8k16_f16_random) {
    for (uint64_t seed = 1; seed <= 20; seed++) check_m16n8k16(0, seed * 0xD1B54A32D192ED03ull);
}

TEST(simt_mma_m16n8k8_tf32_random) {
    for (uint64_t seed = 1; seed <= 20; seed++) {
        uint64_t s = seed * 0x94D049BB133111EBull;
        uint32_t A[16 * 8], B[8 * 8];
        float C[16 * 8], D[16 * 8];
        for (int k = 0; k < 128; k++) A[k] = rand_f32bits(&s);
        for (int k = 0; k < 64; k++) B[k] = rand_f32bits(&s);
        for (int k = 0; k < 128; k++) C[k] = rand_c(&s);
        uint32_t a[32][4], b[32][2];
        float c[32][4], d[32][4];
        scatter32(isa_a_tf32, 4, A, 8, &a[0][0]);
        scatter32(isa_b_tf32, 2, B, 8, &b[0][0]);
        scatter_c(C, c);
        dv_simt_mma_m16n8k8_tf32_warp(d, (const uint32_t(*)[4])a, (const uint32_t(*)[2])b,
                                      (const float(*)[4])c);
        gather_d(d, D);
        int bad = 0;
        for (int m = 0; m < 16; m++)
            for (int n = 0; n < 8; n++) {
                double ref = C[m * 8 + n], mag = fabs(ref);
                for (int k = 0; k < 8; k++) {
                    double p = ref_tf32(A[m * 8 + k]) * ref_tf32(B[k * 8 + n]);
                    ref += p;
                    mag += fabs(p);
                }
                if (!(fabs(D[m * 8 + n] - ref) <= 1e-6 * mag + 1e-30) && bad++ < 4)
                    CHECK_MSG(0, "tf32 seed %d D[%d][%d] = %.9g, ref %.9g", (int)seed, m, n,
                              D[m * 8 + n], ref);
            }
        CHECK(bad == 0);
    }
}

/* ---- hand cases: identity on either side ---- */

TEST(simt_mma_identity_hand_cases) {
    /* A = I (16x16), B[k][n] = 16 k + n + 1 (all distinct, exact in bf16 and f16), C = 0:
     * D must be B exactly. Then B = [I8; 0] (B[k][n] = k == n): D = A[:, 0:8] + C. */
    for (int is_bf16 = 0; is_bf16 <= 1; is_bf16++) {
        uint16_t one = is_bf16 ? 0x3F80 : 0x3C00;
        uint16_t A[256], B[128];
        float C[128] = {0}, D[128];
        uint32_t a[32][4], b[32][2];
        float c[32][4], d[32][4];
        for (int m = 0; m < 16; m++)
            for (int k = 0; k < 16; k++) A[m * 16 + k] = m == k ? one : 0;
        for (int k = 0; k < 16; k++)
            for (int n = 0; n < 8; n++) {
                float v = (float)(16 * k + n + 1); /* <= 248: at most 8 significant bits */
                B[k * 8 + n] = is_bf16 ? (uint16_t)(f2u(v) >> 16) : 0;
                if (!is_bf16) { /* f16 of an integer 1..128: exponent e, mantissa exact */
                    int e = ilogb(v);
                    B[k * 8 + n] = (uint16_t)((e + 15) << 10 | (int)(ldexp(v, 10 - e) - 1024));
                }
            }
        scatter16(isa_a16, 8, A, 16, &a[0][0], 4);
        scatter16(isa_b16, 4, B, 8, &b[0][0], 2);
        scatter_c(C, c);
        dv_simt_mma_m16n8k16_warp(is_bf16, d, (const uint32_t(*)[4])a, (const uint32_t(*)[2])b,
                                  (const float(*)[4])c);
        gather_d(d, D);
        for (int k = 0; k < 16; k++)
            for (int n = 0; n < 8; n++)
                CHECK_MSG(D[k * 8 + n] == (float)(16 * k + n + 1), "%s A=I: D[%d][%d] = %g",
                          is_bf16 ? "bf16" : "f16", k, n, D[k * 8 + n]);
        /* and the raw registers: lane 5 (g 1, t 1) holds D[1][2], D[1][3], D[9][2], D[9][3] */
        CHECK(d[5][0] == 19.0f && d[5][1] == 20.0f && d[5][2] == 147.0f && d[5][3] == 148.0f);

        for (int m = 0; m < 16; m++)
            for (int k = 0; k < 16; k++) {
                float v = (float)(16 * m + k + 1) / 32.0f; /* distinct, 8 significant bits */
                int e = ilogb(v);
                A[m * 16 + k] = is_bf16 ? (uint16_t)(f2u(v) >> 16)
                                        : (uint16_t)((e + 15) << 10 | (int)(ldexp(v, 10 - e) - 1024));
            }
        for (int k = 0; k < 16; k++)
            for (int n = 0; n < 8; n++) B[k * 8 + n] = k == n ? one : 0;
        for (int k = 0; k < 128; k++) C[k] = (float)(1000 * (k + 1));
        scatter16(isa_a16, 8, A, 16, &a[0][0], 4);
        scatter16(isa_b16, 4, B, 8, &b[0][0], 2);
        scatter_c(C, c);
        dv_simt_mma_m16n8k16_warp(is_bf16, d, (const uint32_t(*)[4])a, (const uint32_t(*)[2])b,
                                  (const float(*)[4])c);
        gather_d(d, D);
        for (int m = 0; m < 16; m++)
            for (int n = 0; n < 8; n++) {
                float want = (float)(16 * m + n + 1) / 32.0f + (float)(1000 * (m * 8 + n + 1));
                CHECK_MSG(D[m * 8 + n] == want, "%s B=I: D[%d][%d] = %.9g, want %.9g",
                          is_bf16 ? "bf16" : "f16", m, n, D[m * 8 + n], want);
            }
    }
    /* tf32: A (16x8) = [I8; 2 I8], B[k][n] = 8 k + n + 1 -> D[m][n] = (m < 8 ? 1 : 2) B[m % 8][n] */
    {
        uint32_t A[128], B[64];
        float C[128] = {0}, D[128];
        uint32_t a[32][4], b[32][2];
        float c[32][4], d[32][4];
        for (int m = 0; m < 16; m++)
            for (int k = 0; k < 8; k++) A[m * 8 + k] = (m % 8) == k ? f2u(m < 8 ? 1.0f : 2.0f) : 0;
        for (int k = 0; k < 8; k++)
            for (int n = 0; n < 8; n++) B[k * 8 + n] = f2u((float)(8 * k + n + 1));
        scatter32(isa_a_tf32, 4, A, 8, &a[0][0]);
        scatter32(isa_b_tf32, 2, B, 8, &b[0][0]);
        scatter_c(C, c);
        dv_simt_mma_m16n8k8_tf32_warp(d, (const uint32_t(*)[4])a, (const uint32_t(*)[2])b,
                                      (const float(*)[4])c);
        gather_d(d, D);
        for (int m = 0; m < 16; m++)
            for (int n = 0; n < 8; n++) {
                float want = (m < 8 ? 1.0f : 2.0f) * (float)(8 * (m % 8) + n + 1);
                CHECK_MSG(D[m * 8 + n] == want, "tf32 D[%d][%d] = %g, want %g", m, n, D[m * 8 + n],
                          want);
            }
    }
}

/* ---- element decode through the instruction ---- */

/* D[0][0] of a single product A[0][0] * 1 (everything else zero), with the value in the LOW half
 * of lane 0's a0 (A[0][0]); then the same value in the HIGH half (A[0][1]) times B[1][0] = 1 */
static float one_product(int is_bf16, uint16_t x, int high) {
    uint32_t a[32][4] = {{0}}, b[32][2] = {{0}};
    float c[32][4] = {{0}}, d[32][4];
    uint16_t one = is_bf16 ? 0x3F80 : 0x3C00;
    a[0][0] = high ? (uint32_t)x << 16 : x;
    b[0][0] = high ? (uint32_t)one << 16 : one; /* lane 0 b0 = B[0][0], b1 = B[1][0] */
    dv_simt_mma_m16n8k16_warp(is_bf16, d, (const uint32_t(*)[4])a, (const uint32_t(*)[2])b,
                              (const float(*)[4])c);
    return d[0][0];
}

TEST(simt_mma_decode_bf16_f16) {
    struct { uint16_t bits; double want; } bf[] = {
        {0x3F80, 1.0}, {0xC020, -2.5}, {0x0001, 0x1p-133}, {0x8040, -0x1p-127},
        {0x7F7F, 0x1.FEp127}, {0x0000, 0.0},
    }, hf[] = {
        {0x3C00, 1.0}, {0xC100, -2.5}, {0x0001, 0x1p-24}, {0x03FF, 1023 * 0x1p-24},
        {0x7BFF, 65504.0}, {0x8400, -0x1p-14},
    };
    for (size_t k = 0; k < sizeof bf / sizeof bf[0]; k++) {
        CHECK(dv_simt_bf16_to_double(bf[k].bits) == bf[k].want);
        CHECK(ref_bf16(bf[k].bits) == bf[k].want);
    }
    for (size_t k = 0; k < sizeof hf / sizeof hf[0]; k++) {
        CHECK(dv_simt_f16_to_double(hf[k].bits) == hf[k].want);
        CHECK(ref_f16(hf[k].bits) == hf[k].want);
    }
    /* through the instruction, both register halves; bf16 subnormals fall below f32's range
     * only as products, so use f32-representable results here */
    for (int high = 0; high <= 1; high++) {
        CHECK(one_product(1, 0x3F80, high) == 1.0f);
        CHECK(one_product(1, 0xC020, high) == -2.5f);
        CHECK(one_product(1, 0x0001, high) == 0x1p-133f);  /* bf16 subnormal, f32 subnormal */
        CHECK(one_product(1, 0x7F80, high) == INFINITY);
        CHECK(one_product(1, 0xFF80, high) == -INFINITY);
        CHECK(isnan(one_product(1, 0x7FC0, high)));
        CHECK(one_product(0, 0x3C00, high) == 1.0f);
        CHECK(one_product(0, 0xC100, high) == -2.5f);
        CHECK(one_product(0, 0x0001, high) == 0x1p-24f);   /* f16 subnormal */
        CHECK(one_product(0, 0x7C00, high) == INFINITY);
        CHECK(one_product(0, 0xFC00, high) == -INFINITY);
        CHECK(isnan(one_product(0, 0x7E00, high)));
        /* the same bits read as the other format give a different value: is_bf16 matters */
        CHECK(one_product(0, 0x3F80, high) == 1.875f);
        CHECK(one_product(1, 0x3C00, high) == 0.0078125f);
    }
    /* inf * 0 = NaN in the sum */
    {
        uint32_t a[32][4] = {{0}}, b[32][2] = {{0}};
        float c[32][4] = {{0}}, d[32][4];
        a[0][0] = 0x7F80; /* A[0][0] = inf, B[0][0] = 0 */
        dv_simt_mma_m16n8k16_warp(1, d, (const uint32_t(*)[4])a, (const uint32_t(*)[2])b,
                                  (const float(*)[4])c);
        CHECK(isnan(d[0][0]) && isnan(d[0][1])); /* row 0 of D: inf * 0 in every column */
        CHECK(d[4][0] == 0.0f);                  /* lane 4 holds D[1][0]: untouched row */
    }
    /* every f16 pattern against the compiler's own binary16, where it has one */
#if defined(__FLT16_MAX__) && !defined(__cplusplus)
    for (uint32_t h = 0; h < 65536; h++) {
        _Float16 x;
        uint16_t hb = (uint16_t)h;
        memcpy(&x, &hb, 2);
        double v = dv_simt_f16_to_double(h);
        if (isnan((double)x)) CHECK(isnan(v));
        else CHECK_MSG(v == (double)x, "f16 0x%04x: %g vs %g", h, v, (double)x);
    }
#endif
}

/* ---- cvt.rna.tf32.f32 ---- */

TEST(simt_cvt_rna_tf32_known_answers) {
    struct { uint32_t in, want; const char *what; } cases[] = {
        {0x3F800000, 0x3F800000, "1.0 exact"},
        {0x3F801000, 0x3F802000, "1 + 2^-11: tie, away from zero (ties-to-even would give 1.0)"},
        {0xBF801000, 0xBF802000, "-(1 + 2^-11): tie, away from zero (more negative)"},
        {0x3F800FFF, 0x3F800000, "just below the tie: down"},
        {0x3F801001, 0x3F802000, "just above the tie: up"},
        {0x3F803000, 0x3F804000, "1 + 3 * 2^-11: tie between odd and even, away = up"},
        {0x3F802FFF, 0x3F802000, "below the next tie: down"},
        {0x3FFFF000, 0x40000000, "tie at the top of the binade: carry into the exponent -> 2.0"},
        {0xBFFFF000, 0xC0000000, "negative carry into the exponent -> -2.0"},
        {0x7F7FE000, 0x7F7FE000, "largest tf32 exact"},
        {0x7F7FEFFF, 0x7F7FE000, "largest tf32 + less than half an ulp"},
        {0x7F7FF000, 0x7F800000, "FLT_MAX region tie: overflows to +inf"},
        {0x7F7FFFFF, 0x7F800000, "FLT_MAX -> +inf"},
        {0xFF7FFFFF, 0xFF800000, "-FLT_MAX -> -inf"},
        {0x7F800000, 0x7F800000, "+inf"},
        {0xFF800000, 0xFF800000, "-inf"},
        {0x00000000, 0x00000000, "+0"},
        {0x80000000, 0x80000000, "-0"},
        {0x00001000, 0x00002000, "subnormal tie: away from zero"},
        {0x00000FFF, 0x00000000, "tiny subnormal: to +0"},
        {0x80000FFF, 0x80000000, "tiny negative subnormal: to -0"},
        {0x007FF000, 0x00800000, "largest subnormal tie: carries into the smallest normal"},
        {0x40490FDB, 0x40490000, "pi: down"},
        {0x3DCCCCCD, 0x3DCCC000, "0.1: bits 12:0 = 0xCCD, down"},
        {0x402DF854, 0x402E0000, "e: bits 12:0 = 0x1854, up"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        uint32_t got = dv_simt_cvt_rna_tf32(u2f(cases[k].in));
        CHECK_MSG(got == cases[k].want, "cvt.rna.tf32(0x%08x) = 0x%08x, want 0x%08x (%s)",
                  cases[k].in, got, cases[k].want, cases[k].what);
    }
    /* NaN stays NaN, including payloads only in bits 12:0 (a plain mask would make them inf) */
    uint32_t nans[] = {0x7FC00000, 0xFFC00000, 0x7F800001, 0x7F801FFF, 0x7FFFFFFF, 0xFF800001};
    for (size_t k = 0; k < sizeof nans / sizeof nans[0]; k++) {
        uint32_t got = dv_simt_cvt_rna_tf32(u2f(nans[k]));
        CHECK_MSG(isnan(u2f(got)) && (got & 0x1FFF) == 0 && (got >> 31) == (nans[k] >> 31),
                  "cvt.rna.tf32(NaN 0x%08x) = 0x%08x", nans[k], got);
    }
    /* the definition, on random finite inputs: the result has bits 12:0 clear, is one of the
     * two neighbouring tf32 values, the nearer one, and on a tie the larger in magnitude */
    uint64_t s = 12345;
    for (int k = 0; k < 100000; k++) {
        uint32_t u = (uint32_t)rng_next(&s);
        if ((u & 0x7F800000) == 0x7F800000) continue;
        uint32_t got = dv_simt_cvt_rna_tf32(u2f(u));
        double x = u2f(u), lo = u2f(u & 0xFFFFE000); /* truncation: toward zero */
        double hi = (u & 0x7FFFFFFF) >= 0x7F7FE000 ? (x < 0 ? -INFINITY : INFINITY)
                                                   : (double)u2f((u & 0xFFFFE000) + 0x2000);
        double want = fabs(x - lo) < fabs(hi - x) ? lo : hi;
        if ((u & 0x1FFF) == 0) want = lo;
        if ((u & 0x1FFF) == 0x1000) want = hi; /* tie: away from zero */
        if ((got & 0x1FFF) != 0 || (double)u2f(got) != want) {
            CHECK_MSG(0, "cvt.rna.tf32(0x%08x) = 0x%08x, want %.9g", u, got, want);
            break;
        }
    }
}

/* ---- .tf32 operand: bits 12:0 ignored ---- */

TEST(simt_mma_tf32_operand_low_bits_ignored) {
    /* A[0][0] = 1 + 2^-11 + 2^-12 (bits 0x3F801800): truncated 1.0, rounded 1 + 2^-10;
     * B[0][0] = 1.0 + junk in bits 12:0. D[0][0] must be 1.0 (truncation), not 1.0009765625. */
    uint32_t a[32][4] = {{0}}, b[32][2] = {{0}};
    float c[32][4] = {{0}}, d[32][4], d2[32][4];
    a[0][0] = 0x3F801800;
    b[0][0] = 0x3F801FFF;
    dv_simt_mma_m16n8k8_tf32_warp(d, (const uint32_t(*)[4])a, (const uint32_t(*)[2])b,
                                  (const float(*)[4])c);
    CHECK_MSG(d[0][0] == 1.0f, "D[0][0] = %.9g, want 1 (operands truncated)", d[0][0]);
    /* the same through cvt.rna first: 1 + 2^-10 */
    a[0][0] = dv_simt_cvt_rna_tf32(u2f(0x3F801800));
    b[0][0] = dv_simt_cvt_rna_tf32(1.0f);
    dv_simt_mma_m16n8k8_tf32_warp(d, (const uint32_t(*)[4])a, (const uint32_t(*)[2])b,
                                  (const float(*)[4])c);
    CHECK(d[0][0] == 1.0f + 0x1p-10f);
    /* random registers: junk in bits 12:0 of every A and B register changes nothing */
    uint64_t s = 99;
    for (int lane = 0; lane < 32; lane++) {
        for (int r = 0; r < 4; r++) a[lane][r] = rand_f32bits(&s) & 0xFFFFE000;
        for (int r = 0; r < 2; r++) b[lane][r] = rand_f32bits(&s) & 0xFFFFE000;
        for (int r = 0; r < 4; r++) c[lane][r] = rand_c(&s);
    }
    dv_simt_mma_m16n8k8_tf32_warp(d, (const uint32_t(*)[4])a, (const uint32_t(*)[2])b,
                                  (const float(*)[4])c);
    for (int lane = 0; lane < 32; lane++) {
        for (int r = 0; r < 4; r++) a[lane][r] |= (uint32_t)rng_next(&s) & 0x1FFF;
        for (int r = 0; r < 2; r++) b[lane][r] |= (uint32_t)rng_next(&s) & 0x1FFF;
    }
    dv_simt_mma_m16n8k8_tf32_warp(d2, (const uint32_t(*)[4])a, (const uint32_t(*)[2])b,
                                  (const float(*)[4])c);
    CHECK(memcmp(d, d2, sizeof d) == 0);
}

/* ---- the documented accumulation: exact products, double sum, one rounding ---- */

TEST(simt_mma_sum_rounded_once) {
    /* D[0][0] = 2^24 * 1 + 1 * 1 + (-2^24) * 1 = 1 exactly; an f32 running sum would lose the 1
     * (2^24 + 1 rounds to 2^24). Real hardware may lose it too: the ISA leaves accumulation
     * order and rounding unspecified, this pins the emulator's documented choice. */
    uint32_t a[32][4] = {{0}}, b[32][2] = {{0}};
    float c[32][4] = {{0}}, d[32][4];
    a[0][0] = 0x3F80u << 16 | 0x4B80u;      /* lane 0 a0: A[0][0] = 2^24, A[0][1] = 1 */
    a[1][0] = 0xCB80u;                      /* lane 1 a0: A[0][2] = -2^24 */
    b[0][0] = 0x3F80u << 16 | 0x3F80u;      /* lane 0 b0: B[0][0] = B[1][0] = 1 */
    b[1][0] = 0x3F80u;                      /* lane 1 b0: B[2][0] = 1 */
    dv_simt_mma_m16n8k16_warp(1, d, (const uint32_t(*)[4])a, (const uint32_t(*)[2])b,
                              (const float(*)[4])c);
    CHECK_MSG(d[0][0] == 1.0f, "D[0][0] = %.9g, want 1", d[0][0]);
}

/* ---- the kernels' fragment maps (kernels/cuda/common.h) through this independent mma ----
 * gemm.cu and sgemm_tf32.cu read their fragments at the shared-memory offsets of
 * dv_cu_gemm_{a,b}_smem / dv_cu_tf32_{a,b}_smem and write accumulators to dv_cu_*_c_coord.
 * Replaying one block's K step with those maps, registers filled from the shared tiles and
 * multiplied by mma.h (which was written from the ISA, not from the kernels), must give the
 * tile's product; a map that disagrees with the ISA tables fails here without a GPU. */
#include "kernels/cuda/common.h"

TEST(simt_mma_kernel_gemm_maps) {
    enum { BM = DV_CU_GEMM_BM, BN = DV_CU_GEMM_BN, BK = DV_CU_GEMM_BK, SK = DV_CU_GEMM_SK };
    static uint16_t As[BM * SK], Bs[BN * SK];
    static float Cg[BM * BN];
    uint64_t s = 777;
    for (int k = 0; k < BM * SK; k++) As[k] = rand_bf16(&s);
    for (int k = 0; k < BN * SK; k++) Bs[k] = rand_bf16(&s);
    for (int k = 0; k < BM * BN; k++) Cg[k] = NAN;
    for (int w = 0; w < DV_CU_GEMM_THREADS / 32; w++)
        for (int i = 0; i < DV_CU_GEMM_MI; i++)
            for (int j = 0; j < DV_CU_GEMM_NI; j++) {
                float acc[32][4] = {{0}};
                for (int kk = 0; kk < BK; kk += 16) {
                    uint32_t a[32][4], b[32][2];
                    float d[32][4];
                    for (int lane = 0; lane < 32; lane++) {
                        for (int r = 0; r < 4; r++) {
                            int o = dv_cu_gemm_a_smem(w, lane, i, kk, r); /* one 32-bit word */
                            a[lane][r] = (uint32_t)As[o] | (uint32_t)As[o + 1] << 16;
                        }
                        for (int r = 0; r < 2; r++) {
                            int o = dv_cu_gemm_b_smem(w, lane, j, kk, r);
                            b[lane][r] = (uint32_t)Bs[o] | (uint32_t)Bs[o + 1] << 16;
                        }
                    }
                    dv_simt_mma_m16n8k16_warp(1, d, (const uint32_t(*)[4])a, (const uint32_t(*)[2])b,
                                              (const float(*)[4])acc);
                    memcpy(acc, d, sizeof acc);
                }
                for (int lane = 0; lane < 32; lane++)
                    for (int r = 0; r < 4; r++) {
                        int m, n;
                        dv_cu_gemm_c_coord(w, lane, i, j, r, &m, &n);
                        Cg[m * BN + n] = acc[lane][r];
                    }
            }
    int bad = 0;
    for (int m = 0; m < BM; m++)
        for (int n = 0; n < BN; n++) {
            double ref = 0, mag = 0;
            for (int k = 0; k < BK; k++) {
                double p = ref_bf16(As[m * SK + k]) * ref_bf16(Bs[n * SK + k]);
                ref += p;
                mag += fabs(p);
            }
            if (!(fabs(Cg[m * BN + n] - ref) <= 1e-5 * mag + 1e-30)) bad++;
        }
    CHECK_MSG(bad == 0, "gemm.cu maps: %d of %d tile outputs wrong", bad, BM * BN);
}

TEST(simt_mma_kernel_tf32_maps) {
    enum { BM = DV_CU_TF32_BM, BN = DV_CU_TF32_BN, BK = DV_CU_TF32_BK, SK = DV_CU_TF32_SK };
    static float As[BM * SK], Bs[BN * SK], Cg[BM * BN];
    uint64_t s = 4242;
    for (int k = 0; k < BM * SK; k++) As[k] = u2f(rand_f32bits(&s));
    for (int k = 0; k < BN * SK; k++) Bs[k] = u2f(rand_f32bits(&s));
    for (int k = 0; k < BM * BN; k++) Cg[k] = NAN;
    for (int w = 0; w < DV_CU_TF32_THREADS / 32; w++)
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 4; j++) {
                float acc[32][4] = {{0}};
                for (int kk = 0; kk < BK; kk += 8) {
                    uint32_t a[32][4], b[32][2];
                    float d[32][4];
                    for (int lane = 0; lane < 32; lane++) { /* cvt.rna at the fragment load */
                        for (int r = 0; r < 4; r++) a[lane][r] = dv_simt_cvt_rna_tf32(As[dv_cu_tf32_a_smem(w, lane, i, kk, r)]);
                        for (int r = 0; r < 2; r++) b[lane][r] = dv_simt_cvt_rna_tf32(Bs[dv_cu_tf32_b_smem(w, lane, j, kk, r)]);
                    }
                    dv_simt_mma_m16n8k8_tf32_warp(d, (const uint32_t(*)[4])a, (const uint32_t(*)[2])b,
                                                  (const float(*)[4])acc);
                    memcpy(acc, d, sizeof acc);
                }
                for (int lane = 0; lane < 32; lane++)
                    for (int r = 0; r < 4; r++) {
                        int m, n;
                        dv_cu_tf32_c_coord(w, lane, i, j, r, &m, &n);
                        Cg[m * BN + n] = acc[lane][r];
                    }
            }
    int bad = 0;
    for (int m = 0; m < BM; m++)
        for (int n = 0; n < BN; n++) {
            double ref = 0, mag = 0;
            for (int k = 0; k < BK; k++) {
                double p = (double)u2f(dv_simt_cvt_rna_tf32(As[m * SK + k])) *
                           (double)u2f(dv_simt_cvt_rna_tf32(Bs[n * SK + k]));
                ref += p;
                mag += fabs(p);
            }
            if (!(fabs(Cg[m * BN + n] - ref) <= 1e-5 * mag + 1e-30)) bad++;
        }
    CHECK_MSG(bad == 0, "sgemm_tf32.cu maps: %d of %d tile outputs wrong", bad, BM * BN);
}
