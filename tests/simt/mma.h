/* tests/simt/mma.h — warp-level semantics of the tensor-core instructions the CUDA kernels use
 * through inline PTX, for the CPU SIMT emulator (make test-cuda-sim):
 *
 *   mma.sync.aligned.m16n8k16.row.col.f32.{bf16,f16}.{bf16,f16}.f32   dv_simt_mma_m16n8k16_warp
 *   mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32                dv_simt_mma_m16n8k8_tf32_warp
 *   cvt.rna.tf32.f32                                                  dv_simt_cvt_rna_tf32
 *
 * Written from NVIDIA's "Parallel Thread Execution ISA" (version 9.1 text, the sections numbered
 * as in the 8.x/9.x documents), NOT from the kernels, so that a misread layout in a kernel shows
 * up as a failing emulated test instead of being copied here:
 *   5.2.3      Alternate Floating-Point Data Formats (bf16 = s1 e8 m7; tf32 = f32 range, >= 10
 *              mantissa bits, internal layout implementation defined)
 *   9.7.9.21   Data Movement and Conversion Instructions: cvt (.rna = "rounding to nearest, with
 *              ties away from zero"; .tf32 destination is a .b32 register)
 *   9.7.14.5.7 Matrix Fragments for mma.m16n8k8 (the .tf32 A, B and f32 C/D tables)
 *   9.7.14.5.8 Matrix Fragments for mma.m16n8k16 with floating point type (.f16/.bf16 A, B,
 *              f32 C/D tables)
 *   9.7.14.5.14 Multiply-and-Accumulate Instruction: mma ("Precision and rounding")
 *   wgmma.mma_async, "Precision and rounding" (the one place the ISA states in words that a .tf32
 *              operand has its lower 13 bits truncated before the multiply)
 *
 * The fragment tables (groupID = lane >> 2, threadID_in_group = lane % 4; g and t below):
 *
 *   m16n8k16 .f16/.bf16, A (16x16, row): four .f16x2 registers holding a0..a7, low half first
 *     a_i: row = g      for i in {0,1,4,5}, g + 8 otherwise
 *          col = 2t + (i & 1) for i < 4, 2t + (i & 1) + 8 for i >= 4
 *     so register r (elements a_2r low, a_2r+1 high):
 *          r0 = A[g][2t..2t+1]    r1 = A[g+8][2t..2t+1]    r2 = A[g][2t+8..+9]    r3 = A[g+8][2t+8..+9]
 *   m16n8k16 B (16x8, col): two .f16x2 registers holding b0..b3, low half first
 *     b_i: row = 2t + (i & 1) for i < 2, 2t + (i & 1) + 8 for i >= 2;  col = g
 *          r0 = B[2t..2t+1][g]    r1 = B[2t+8..2t+9][g]
 *   m16n8k8 .tf32, A (16x8): four .b32 registers a0..a3
 *          a0 = A[g][t]   a1 = A[g+8][t]   a2 = A[g][t+4]   a3 = A[g+8][t+4]
 *   m16n8k8 .tf32, B (8x8): two .b32 registers
 *          b0 = B[t][g]   b1 = B[t+4][g]
 *   C and D (16x8 f32, both shapes): four .f32 registers c0..c3
 *          c_i: row = g for i < 2, g + 8 for i >= 2;  col = 2t + (i & 1)
 *
 * "Low half first": the tables list the elements of a register "low to high", so in each 32-bit
 * register the element with the lower index (the lower column of A, the lower row of B) sits in
 * bits 15:0 and the other in bits 31:16 — the same packing cvt.rn.bf16x2.f32 d, hi, lo produces
 * and a plain little-endian 32-bit load of two consecutive 16-bit values gives.
 *
 * Arithmetic (the ISA: "Element-wise multiplication of matrix A and B is performed with specified
 * precision. Accumulation of the intermediate values is performed with at least single precision.
 * The accumulation order, rounding, and handling of subnormal inputs are unspecified."):
 *   - every product of two bf16 / f16 / tf32 values is exact in double (at most 2 x 11
 *     significand bits, exponents far inside double's range), so the emulator forms the products
 *     exactly, sums C + sum_k A[m][k] * B[k][n] in double in increasing k, and rounds to f32 ONCE
 *     per output element. Real hardware keeps fewer bits in its running sum (and its order is
 *     unspecified), so it may differ from this in the last bits of f32; tests that compare a
 *     kernel with a CPU reference must use tolerances that cover that, never bit equality.
 *   - f16 and bf16 subnormals are decoded as subnormals (not flushed), inf as inf, NaN as NaN;
 *     IEEE double arithmetic then gives inf * 0 = NaN, inf - inf = NaN, NaN propagates. The
 *     hardware's handling of subnormal inputs is "unspecified"; ours is exact.
 *   - .tf32 operands: the ISA calls the tf32 layout implementation-defined, and for wgmma says
 *     the low 13 bits of the 32-bit register are truncated before the multiply; mma hardware
 *     behaves the same, so the emulator clears bits 12:0 of every A/B register (truncation, not
 *     rounding: a kernel that forgets cvt.rna gets truncated operands here as on the GPU).
 *   - cvt.rna.tf32.f32: round to nearest, ties away from zero, to 10 stored mantissa bits; the
 *     result has bits 12:0 zero. A carry out of the mantissa moves into the exponent, and finite
 *     values whose magnitude rounds past the largest tf32 (0x7F7FE000) become inf (no .satfinite).
 *     Subnormals are rounded like normals (no .ftz). +-inf stay +-inf. The ISA gives no special
 *     NaN rule for .rna without .satfinite; a NaN stays a NaN here (sign and the top 10 payload
 *     bits kept, the quiet bit set), so a NaN whose payload sits only in bits 12:0 does not turn
 *     into inf.
 *
 * Registers are given exactly as the PTX instruction sees them: x[lane][register], lanes 0..31.
 * Everything is static inline so the file can be included from C (gnu11) and C++ (c++17)
 * translation units without a separate object; it needs no CUDA.
 * Not covered: other shapes (m16n8k8 bf16/f16, m16n8k4, m8n8k4), f16 accumulators, ldmatrix,
 * wgmma — the kernels do not use them through this emulator.
 */
#ifndef DV_TESTS_SIMT_MMA_H
#define DV_TESTS_SIMT_MMA_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- element decoders (exact) ---- */

/* bf16 bit pattern (bits 15:0 of x) -> value: bf16 is the top half of an f32 */
static inline double dv_simt_bf16_to_double(uint32_t x) {
    uint32_t u = (x & 0xFFFFu) << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return (double)f;
}

/* IEEE binary16 bit pattern (bits 15:0 of x) -> value; subnormals kept, inf, NaN */
static inline double dv_simt_f16_to_double(uint32_t x) {
    uint32_t sign = (x >> 15) & 1u, e = (x >> 10) & 0x1Fu, m = x & 0x3FFu;
    double v;
    if (e == 0x1F)
        v = m ? (double)NAN : (double)INFINITY;
    else if (e == 0)
        v = ldexp((double)m, -24);                 /* subnormal: m * 2^-14 * 2^-10 */
    else
        v = ldexp((double)(1024u + m), (int)e - 25); /* (1 + m/1024) * 2^(e-15) */
    return sign ? -v : v;
}

/* .tf32 operand register -> value the tensor core multiplies: bits 12:0 ignored (truncated) */
static inline double dv_simt_tf32_to_double(uint32_t x) {
    uint32_t u = x & 0xFFFFE000u;
    float f;
    memcpy(&f, &u, sizeof f);
    return (double)f;
}

/* cvt.rna.tf32.f32 */
static inline uint32_t dv_simt_cvt_rna_tf32(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    if ((u & 0x7F800000u) == 0x7F800000u) {        /* inf or NaN: no rounding */
        if (u & 0x007FFFFFu) return (u & 0xFFFFE000u) | 0x00400000u; /* stays a (quiet) NaN */
        return u;                                   /* +-inf */
    }
    /* magnitude + half an ulp of the 10-bit mantissa, then truncate: a tie (bits 12:0 ==
     * 0x1000) always rounds the magnitude up = away from zero; a carry ripples into the
     * exponent, and from the largest binade into 0x7F800000 = inf */
    return (u + 0x1000u) & 0xFFFFE000u;
}

/* ---- the warp-wide instructions ---- */

/* mma.sync.aligned.m16n8k16.row.col.f32.{bf16,f16}.{bf16,f16}.f32 d, a, b, c:
 * D (16x8) = A (16x16) * B (16x8) + C. is_bf16 selects bf16 (1) or f16 (0) for A and B. */
static inline void dv_simt_mma_m16n8k16_warp(int is_bf16, float d[32][4], const uint32_t a[32][4],
                                             const uint32_t b[32][2], const float c[32][4]) {
    double A[16][16], B[16][8], C[16][8];
    for (int lane = 0; lane < 32; lane++) {
        int g = lane >> 2, t = lane & 3;
        for (int r = 0; r < 4; r++) {
            int row = g + ((r & 1) ? 8 : 0), col = 2 * t + ((r & 2) ? 8 : 0);
            uint32_t x = a[lane][r];
            A[row][col]     = is_bf16 ? dv_simt_bf16_to_double(x) : dv_simt_f16_to_double(x);
            A[row][col + 1] = is_bf16 ? dv_simt_bf16_to_double(x >> 16) : dv_simt_f16_to_double(x >> 16);
        }
        for (int r = 0; r < 2; r++) {
            int row = 2 * t + 8 * r;
            uint32_t x = b[lane][r];
            B[row][g]     = is_bf16 ? dv_simt_bf16_to_double(x) : dv_simt_f16_to_double(x);
            B[row + 1][g] = is_bf16 ? dv_simt_bf16_to_double(x >> 16) : dv_simt_f16_to_double(x >> 16);
        }
        for (int r = 0; r < 4; r++) C[g + ((r & 2) ? 8 : 0)][2 * t + (r & 1)] = c[lane][r];
    }
    for (int lane = 0; lane < 32; lane++) {
        int g = lane >> 2, t = lane & 3;
        for (int r = 0; r < 4; r++) {
            int m = g + ((r & 2) ? 8 : 0), n = 2 * t + (r & 1);
            double s = C[m][n];
            for (int k = 0; k < 16; k++) s += A[m][k] * B[k][n];
            d[lane][r] = (float)s;
        }
    }
}

/* mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 d, a, b, c:
 * D (16x8) = A (16x8) * B (8x8) + C; A/B registers hold tf32 bit patterns (bits 12:0 ignored) */
static inline void dv_simt_mma_m16n8k8_tf32_warp(float d[32][4], const uint32_t a[32][4],
                                                 const uint32_t b[32][2], const float c[32][4]) {
    double A[16][8], B[8][8], C[16][8];
    for (int lane = 0; lane < 32; lane++) {
        int g = lane >> 2, t = lane & 3;
        for (int r = 0; r < 4; r++)
            A[g + ((r & 1) ? 8 : 0)][t + ((r & 2) ? 4 : 0)] = dv_simt_tf32_to_double(a[lane][r]);
        for (int r = 0; r < 2; r++) B[t + 4 * r][g] = dv_simt_tf32_to_double(b[lane][r]);
        for (int r = 0; r < 4; r++) C[g + ((r & 2) ? 8 : 0)][2 * t + (r & 1)] = c[lane][r];
    }
    for (int lane = 0; lane < 32; lane++) {
        int g = lane >> 2, t = lane & 3;
        for (int r = 0; r < 4; r++) {
            int m = g + ((r & 2) ? 8 : 0), n = 2 * t + (r & 1);
            double s = C[m][n];
            for (int k = 0; k < 8; k++) s += A[m][k] * B[k][n];
            d[lane][r] = (float)s;
        }
    }
}

#ifdef __cplusplus
}
#endif

#endif
