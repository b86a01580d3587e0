/* tests/test_simt_wgmma.c — the SIMT emulator's wgmma.mma_async.m64nNk16 (tests/simt/wgmma.h)
 * against a plain product, through shared-memory images built here.
 *
 * The point is two independent readings of the PTX ISA (9.0, section 9.7.15.5.1.2 "Shared Memory
 * Matrix Layout" and "Matrix Descriptor Format", 9.7.15.5.1.1.1 Figure 149 for the accumulator):
 * the emulator computes addresses from the canonical CuTe layouts and XORs absolute address bits;
 * this file places the matrices from the ISA's WORDS — core matrices of 8 lines x 16 bytes,
 * swizzle atoms of 8 lines x W bytes (Table 38), LBO / SBO as the tables of 9.7.15.5.1.2.1
 * define them — and swizzles 16-byte chunks by the 128-byte line's index counted from the start
 * of the atom's repeating pattern. It encodes the descriptors itself and reads D back through its
 * own copy of the accumulator map. Values are bf16 / f16 with few significant bits, so the double
 * sums are exact and emulator and reference must agree bit for bit.
 *
 * Covered: n = 8, 64, 128, 256; K-major with no swizzle (LBO / SBO padded), 32B, 64B, 128B;
 * MN-major (imm-trans) with all four; bf16 and f16; scale-d 0 (old D ignored, NaN in it) and 1;
 * imm-scale -1 on A, B, both; four k16 steps inside one 128B-swizzled 64-element-wide tile by
 * advancing the start address 32 B (what a K-loop over a 128B-swizzled stage does); patterns that
 * do not start on their boundary, with the base-offset field; bad immediates abort.
 * Not here: the per-thread collective inside the emulator (tests/simt/wgmma.cc, exercised by the
 * emulated CUDA tests), real hardware (no GPU in this project's CI).
 */
#include "tests/test.h"
#include "tests/util.h"

#include "tests/simt/wgmma.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- values ---- */

static uint64_t tw_rng = 0x9E3779B97F4A7C15ull;
static uint32_t tw_next(void) {
    tw_rng ^= tw_rng << 13;
    tw_rng ^= tw_rng >> 7;
    tw_rng ^= tw_rng << 17;
    return (uint32_t)(tw_rng >> 16);
}

/* a random 16-bit float bit pattern with few significant bits: +-(1 + m/2^mb) 2^e, e in -3..3,
 * or zero now and then; *v gets its exact value */
static uint16_t tw_rand_half(int is_bf16, double *v) {
    uint32_t r = tw_next();
    if (r % 17 == 0) { *v = 0; return 0; }
    int sign = (r >> 5) & 1, e = (int)((r >> 6) % 7) - 3, m = (int)((r >> 9) % 16);
    *v = (sign ? -1.0 : 1.0) * (1.0 + m / 16.0) * ldexp(1.0, e);
    if (is_bf16) /* s e8 m7: the 4 mantissa bits on top of the 7 */
        return (uint16_t)((sign << 15) | ((e + 127) << 7) | (m << 3));
    return (uint16_t)((sign << 15) | ((e + 15) << 10) | (m << 6)); /* s e5 m10 */
}

/* ---- the layout, from the ISA's description ---- */

typedef struct {
    int k_major;       /* 1: K-major (imm-trans 0); 0: MN-major (imm-trans 1) */
    int swz;           /* swizzle width W in bytes: 0 (none), 32, 64, 128 */
    uint32_t start;    /* byte address (shared) of the matrix: core matrix / atom (0,0) */
    uint32_t lbo, sbo; /* leading / stride dimension byte offsets */
} tw_layout;

/* byte address of element (i, k) (i: the M or N index, k: the K index) of a 16-bit matrix */
static uint32_t tw_place(const tw_layout *L, int i, int k) {
    if (L->swz == 0) {
        /* a core matrix is 8 lines of 16 bytes, contiguous. K-major: a line holds 8 K elements
         * of one MN row; the next 8 MN rows start SBO further ("the offset from the first 8
         * rows to the next 8 rows"), the next 8 K columns LBO further ("the offset from the
         * first column to the second columns of the 8x2 tile", columns of 128-bit elements).
         * MN-major: a line holds 8 MN elements of one K row; the next 8 K rows LBO further
         * ("offset from the first 8 columns to the next 8 columns"), the next 8 MN elements
         * SBO further ("offset from the first row to the next row", rows of 128-bit elements) */
        int line = L->k_major ? i % 8 : k % 8, elem = L->k_major ? k % 8 : i % 8;
        int cm_mn = i / 8, cm_k = k / 8;
        return L->start + (uint32_t)cm_mn * L->sbo + (uint32_t)cm_k * L->lbo + (uint32_t)line * 16 +
               (uint32_t)elem * 2;
    }
    /* swizzled: an atom is 8 lines of W bytes (Table 38: K-major 8 x W/16, MN-major W/16 x 8
     * 128-bit elements). K-major: line = MN row, K runs along it (the whole k16 fits), the next 8
     * rows SBO further. MN-major: line = K row, W/2 MN elements along it; the next W/2 MN
     * elements LBO further ("offset from the first (swizzle-byte-size/16) rows to the next"),
     * the next 8 K rows SBO further ("offset from the first 8 columns to the next 8 columns"). */
    int W = L->swz, line, byte;
    uint32_t atom;
    if (L->k_major) {
        line = i % 8;
        byte = 2 * k;
        atom = L->start + (uint32_t)(i / 8) * L->sbo;
    } else {
        line = k % 8;
        byte = 2 * (i % (W / 2));
        atom = L->start + (uint32_t)(i / (W / 2)) * L->lbo + (uint32_t)(k / 8) * L->sbo;
    }
    /* unswizzled offset inside the atom, then the swizzle: the atom is the repeating pattern,
     * seen as 128-byte rows; in row R (R = 0.. from the pattern start) the 16-byte chunk c is
     * stored at chunk c ^ (R mod (W/16)) (the XOR pattern of Swizzle<log2(W/16),4,3>) */
    int off = line * W + byte, R = off / 128, c = (off % 128) / 16;
    int c_stored = c ^ (R % (W / 16));
    return atom + (uint32_t)(R * 128 + c_stored * 16 + off % 16);
}

/* the descriptor, packed as 9.7.15.5.1.2.2 lists the fields */
static uint64_t tw_desc(const tw_layout *L, uint32_t start, int base_offset) {
    uint64_t mode = L->swz == 128 ? 1 : L->swz == 64 ? 2 : L->swz == 32 ? 3 : 0;
    uint64_t lbo = L->lbo;
    if (L->k_major && L->swz) lbo = 16; /* "not used, assumed to be 1" (encoded) */
    return (uint64_t)((start & 0x3FFFF) >> 4) | (uint64_t)((lbo & 0x3FFFF) >> 4) << 16 |
           (uint64_t)((L->sbo & 0x3FFFF) >> 4) << 32 | (uint64_t)(base_offset & 7) << 49 | mode << 62;
}

/* writes a rows x kdim matrix (bits[i * kdim + k]) through the layout */
static void tw_store(uint8_t *smem, const tw_layout *L, const uint16_t *bits, int rows, int kdim) {
    for (int i = 0; i < rows; i++)
        for (int k = 0; k < kdim; k++) memcpy(smem + tw_place(L, i, k), &bits[i * kdim + k], 2);
}

/* ---- the accumulator map (Figure 149): register r of thread t holds D[row][col] ---- */

static void tw_d_pos(int t, int r, int *row, int *col) {
    static const int drow[4] = {0, 0, 8, 8}, dcol[4] = {0, 1, 0, 1};
    int warp = t / 32, lane = t % 32;
    *row = warp * 16 + lane / 4 + drow[r % 4];
    *col = (r / 4) * 8 + (lane % 4) * 2 + dcol[r % 4];
}

/* ---- one case ---- */

enum { TW_SMEM = 160 * 1024 };

typedef struct {
    int n, is_bf16;
    tw_layout la, lb;
    int scale_d, scale_a, scale_b;
} tw_case;

/* runs one instruction on random A (64 x 16), B (16 x n) and D; checks every element */
static void tw_run(const char *what, const tw_case *c) {
    int n = c->n;
    uint8_t *smem = malloc(TW_SMEM);
    memset(smem, 0xFF, TW_SMEM); /* NaN wherever nothing was placed */
    uint16_t abits[64 * 16], *bbits = malloc(sizeof(uint16_t) * 256 * 16);
    double a[64][16], *b = malloc(sizeof(double) * 256 * 16); /* b[j * 16 + k] = B[k][j] */
    for (int i = 0; i < 64 * 16; i++) abits[i] = tw_rand_half(c->is_bf16, &a[i / 16][i % 16]);
    for (int i = 0; i < n * 16; i++) bbits[i] = tw_rand_half(c->is_bf16, &b[i]);
    tw_store(smem, &c->la, abits, 64, 16);
    tw_store(smem, &c->lb, bbits, n, 16);
    float *d = malloc(sizeof(float) * 128 * 128), *d0 = malloc(sizeof(float) * 128 * 128);
    for (int i = 0; i < 128 * (n / 2); i++)
        d0[i] = c->scale_d ? (float)((int)(tw_next() % 64) - 32) / 8.0f : NAN;
    memcpy(d, d0, sizeof(float) * 128 * (n / 2));
    dv_simt_wgmma_m64k16_warpgroup(n, c->is_bf16, d, tw_desc(&c->la, c->la.start, 0), tw_desc(&c->lb, c->lb.start, 0),
                                   smem, c->scale_d, c->scale_a, c->scale_b, !c->la.k_major, !c->lb.k_major);
    int bad = 0;
    for (int t = 0; t < 128; t++)
        for (int r = 0; r < n / 2; r++) {
            int row, col;
            tw_d_pos(t, r, &row, &col);
            double s = c->scale_d ? d0[t * (n / 2) + r] : 0.0;
            for (int k = 0; k < 16; k++) s += c->scale_a * a[row][k] * c->scale_b * b[col * 16 + k];
            float want = (float)s, got = d[t * (n / 2) + r];
            if (!(got == want) && bad++ < 3)
                CHECK_MSG(0, "%s: n=%d thread %d reg %d = D[%d][%d]: got %.9g want %.9g", what, n, t, r, row, col,
                          got, want);
        }
    CHECK_MSG(bad == 0, "%s: n=%d: %d of %d outputs wrong", what, n, bad, 64 * n);
    free(smem), free(bbits), free(b), free(d), free(d0);
}

/* the K-major 128B-swizzled layout of an operand of `rows` rows at `start`: 8-row groups 1024 B
 * apart (what a dense tile 64 elements wide is) */
static tw_layout tw_k128(uint32_t start) { return (tw_layout){1, 128, start, 0, 1024}; }

TEST(simt_wgmma_kmajor_sw128_bf16) {
    int ns[] = {8, 64, 128, 256};
    for (int i = 0; i < 4; i++)
        for (int sd = 0; sd < 2; sd++) {
            tw_case c = {ns[i], 1, tw_k128(0), tw_k128(8192), sd, 1, 1};
            tw_run("K-major 128B bf16", &c);
        }
    /* f16 too, and B before A in memory */
    tw_case c = {128, 0, tw_k128(64 * 1024), tw_k128(16384), 1, 1, 1};
    tw_run("K-major 128B f16", &c);
}

TEST(simt_wgmma_kmajor_noswizzle) {
    /* core matrices 128 B each; K neighbours LBO apart, 8-row groups SBO apart, both padded
     * and in either order */
    int ns[] = {8, 64, 256};
    for (int i = 0; i < 3; i++) {
        tw_case c = {ns[i], 0, {1, 0, 0, 128 + 32, 512}, {1, 0, 4096, 272 * 32 + 16, 272}, i & 1, 1, 1};
        tw_run("K-major none f16", &c);
        c.is_bf16 = 1;
        tw_run("K-major none bf16", &c);
    }
}

TEST(simt_wgmma_kmajor_sw32_sw64) {
    tw_case c = {64, 1, {1, 64, 0, 0, 512}, {1, 32, 8192, 0, 256}, 1, 1, 1};
    tw_run("K-major A 64B, B 32B", &c);
    c.la = (tw_layout){1, 32, 4096, 0, 256 + 256}; /* 8-row groups with a gap */
    c.lb = (tw_layout){1, 64, 16384, 0, 512};
    c.n = 128;
    tw_run("K-major A 32B, B 64B", &c);
}

TEST(simt_wgmma_mnmajor_all_swizzles) {
    /* A M-major and B N-major (imm-trans 1). No swizzle: 8-element groups along MN SBO apart,
     * the two 8-row K groups LBO apart. W-byte swizzle: W/2 MN elements per line, atoms along MN
     * LBO apart, the two K groups SBO apart. */
    int ns[] = {64, 256};
    for (int i = 0; i < 2; i++) {
        int n = ns[i];
        tw_case c = {n, 1, {0, 0, 0, 128, 2 * 128 + 64}, {0, 0, 8192, 256 * 32 + 16, 256}, 1, 1, 1};
        tw_run("MN-major none", &c);
        for (int W = 32; W <= 128; W *= 2) {
            /* A: 64 / (W/2) atoms along M, each 8 lines x W; K groups after all of them */
            uint32_t a_atom = 8 * (uint32_t)W, b_atom = 8 * (uint32_t)W;
            c.la = (tw_layout){0, W, 0, a_atom, a_atom * (64 / (W / 2))};
            c.lb = (tw_layout){0, W, 32768, b_atom, b_atom * (uint32_t)(n / (W / 2))};
            c.is_bf16 = W != 64;
            tw_run(W == 32 ? "MN-major 32B" : W == 64 ? "MN-major 64B" : "MN-major 128B", &c);
            /* K groups first, atoms along MN after them (LBO > SBO) */
            c.la = (tw_layout){0, W, 0, 2 * a_atom, a_atom};
            c.lb = (tw_layout){0, W, 32768, 2 * b_atom, b_atom};
            tw_run("MN-major, atoms interleaved", &c);
        }
    }
    /* mixed: A K-major 128B, B N-major 128B (an NT GEMM with K-major A) */
    tw_case c = {128, 1, tw_k128(0), {0, 128, 8192, 1024, 2048}, 0, 1, 1};
    tw_run("A K-major, B N-major", &c);
}

TEST(simt_wgmma_negation) {
    for (int s = 1; s < 4; s++) {
        tw_case c = {64, s & 1, tw_k128(0), tw_k128(8192), 1, (s & 1) ? -1 : 1, (s & 2) ? -1 : 1};
        tw_run("imm-scale -1", &c);
        c.la = (tw_layout){0, 128, 0, 1024, 2048}; /* and through the transposed path */
        tw_run("imm-scale -1, M-major A", &c);
    }
}

/* A (64 x 64) and B (n x 64, K-major) as dense 128B-swizzled tiles (one 128-byte line per row);
 * four instructions step K by 16 by adding 32 bytes to the start address, accumulating. The
 * reference rounds to f32 after each step, as the accumulator registers do. */
TEST(simt_wgmma_k_steps_inside_sw128_atom) {
    int n = 128;
    uint8_t *smem = malloc(TW_SMEM);
    memset(smem, 0xFF, TW_SMEM);
    uint16_t *abits = malloc(2 * 64 * 64), *bbits = malloc(2 * 128 * 64);
    double *a = malloc(sizeof(double) * 64 * 64), *b = malloc(sizeof(double) * 128 * 64);
    for (int i = 0; i < 64 * 64; i++) abits[i] = tw_rand_half(1, &a[i]);
    for (int i = 0; i < n * 64; i++) bbits[i] = tw_rand_half(1, &b[i]);
    tw_layout la = tw_k128(0), lb = tw_k128(8192);
    tw_store(smem, &la, abits, 64, 64);
    tw_store(smem, &lb, bbits, n, 64);
    float d[128 * 64], ref[64][128];
    for (int kk = 0; kk < 4; kk++)
        dv_simt_wgmma_m64k16_warpgroup(n, 1, d, tw_desc(&la, la.start + 32 * kk, 0), tw_desc(&lb, lb.start + 32 * kk, 0),
                                       smem, kk > 0, 1, 1, 0, 0);
    for (int i = 0; i < 64; i++)
        for (int j = 0; j < n; j++) {
            float acc = 0;
            for (int kk = 0; kk < 4; kk++) {
                double s = acc;
                for (int k = 16 * kk; k < 16 * kk + 16; k++) s += a[i * 64 + k] * b[j * 64 + k];
                acc = (float)s;
            }
            ref[i][j] = acc;
        }
    int bad = 0;
    for (int t = 0; t < 128; t++)
        for (int r = 0; r < n / 2; r++) {
            int row, col;
            tw_d_pos(t, r, &row, &col);
            if (d[t * (n / 2) + r] != ref[row][col] && bad++ < 3)
                CHECK_MSG(0, "k steps: D[%d][%d] got %.9g want %.9g", row, col, d[t * (n / 2) + r], ref[row][col]);
        }
    CHECK(bad == 0);
    free(smem), free(abits), free(bbits), free(a), free(b);
}

/* swizzle patterns that do not start on their 1024 / 512 / 256-byte boundary: the matrix is
 * written from pattern starts P with P >> 7 & 7 != 0 and the descriptor carries
 * base offset = (P >> 7) & 7. Without the base offset the same bytes read as a different
 * matrix (checked too, so the field cannot be a no-op). */
TEST(simt_wgmma_base_offset) {
    int widths[] = {128, 64, 32};
    for (int w = 0; w < 3; w++) {
        int W = widths[w];
        /* 3 and 2 lines past a 1024 boundary: different, so that reading both wrongly is not the
         * same permutation of K in A and B (which would leave the product unchanged) */
        uint32_t pa = 2048 + 384, pb = 16384 + 256;
        tw_layout la = {1, W, pa, 0, 1024}, lb = {1, W, pb, 0, 1024};
        uint8_t *smem = malloc(TW_SMEM);
        memset(smem, 0xFF, TW_SMEM);
        uint16_t abits[64 * 16], bbits[64 * 16];
        double a[64 * 16], b[64 * 16];
        for (int i = 0; i < 64 * 16; i++) abits[i] = tw_rand_half(1, &a[i]);
        for (int i = 0; i < 64 * 16; i++) bbits[i] = tw_rand_half(1, &b[i]);
        tw_store(smem, &la, abits, 64, 16);
        tw_store(smem, &lb, bbits, 64, 16);
        float d[128 * 32], d_wrong[128 * 32];
        dv_simt_wgmma_m64k16_warpgroup(64, 1, d, tw_desc(&la, pa, (pa >> 7) & 7), tw_desc(&lb, pb, (pb >> 7) & 7), smem,
                                       0, 1, 1, 0, 0);
        dv_simt_wgmma_m64k16_warpgroup(64, 1, d_wrong, tw_desc(&la, pa, 0), tw_desc(&lb, pb, 0), smem, 0, 1, 1, 0, 0);
        int bad = 0, differs = 0;
        for (int t = 0; t < 128; t++)
            for (int r = 0; r < 32; r++) {
                int row, col;
                tw_d_pos(t, r, &row, &col);
                double s = 0;
                for (int k = 0; k < 16; k++) s += a[row * 16 + k] * b[col * 16 + k];
                bad += d[t * 32 + r] != (float)s;
                differs += !(d_wrong[t * 32 + r] == (float)s);
            }
        CHECK_MSG(bad == 0, "base offset, %dB swizzle: %d outputs wrong", W, bad);
        CHECK_MSG(differs > 0, "base offset, %dB swizzle: reading without it gave the same result", W);
        free(smem);
    }
}

static void tw_bad_n(void *ctx) {
    static uint8_t smem[64];
    float d[128 * 8];
    dv_simt_wgmma_m64k16_warpgroup(*(int *)ctx, 1, d, 0, 0, smem, 0, 1, 1, 0, 0);
}
static void tw_bad_scale(void *ctx) {
    static uint8_t smem[64];
    float d[128 * 4];
    dv_simt_wgmma_m64k16_warpgroup(8, 1, d, 0, 0, smem, 0, 2, 1, 0, 0);
}

TEST(simt_wgmma_bad_immediates_abort) {
    int n12 = 12, n264 = 264;
    CHECK(ut_aborts_with(tw_bad_n, &n12, "n must be a multiple of 8"));
    CHECK(ut_aborts_with(tw_bad_n, &n264, "n must be a multiple of 8"));
    CHECK(ut_aborts_with(tw_bad_scale, NULL, "imm-scale-a / imm-scale-b must be 1 or -1"));
}
