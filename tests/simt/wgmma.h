/* tests/simt/wgmma.h — warpgroup-level semantics of the Hopper instruction
 *
 *   wgmma.mma_async.sync.aligned.m64nNk16.f32.{bf16,f16}.{bf16,f16}
 *       d, a-desc, b-desc, scale-d, imm-scale-a, imm-scale-b, imm-trans-a, imm-trans-b
 *
 * (both operands in shared memory, read through 64-bit matrix descriptors), for the CPU SIMT
 * emulator (make test-cuda-sim; the per-thread collective is tests/simt/wgmma.cc, declared at
 * the end of this file).
 *
 * Written from NVIDIA's "Parallel Thread Execution ISA", version 9.0 text, NOT from the kernels
 * that use it (kernels/cuda/gemm_sm90a.cu), so that a misread layout on either side shows up as
 * a failing emulated test instead of being copied. Sections read:
 *   9.7.15.5.2        wgmma.mma_async: D = A*B + D, or D = A*B when scale-d is false; A is M x K
 *                     "row-major" (K-major), B is K x N "column-major" (K-major); imm-trans-a /
 *                     imm-trans-b = 1 select the transposed (M- / N-major) layout; imm-scale-a /
 *                     imm-scale-b = -1 negate every element of A / B, 1 leaves them
 *   9.7.15.5.1.1.1    Matrix Fragments for wgmma.mma_async.m64nNk16: the f32 accumulator is N/2
 *                     .f32 registers per thread, laid out as Figure 149 (warp w of the warpgroup
 *                     owns rows 16w..16w+15; within it the mma.m16n8 C/D pattern repeated every
 *                     8 columns):
 *                       thread t (0..127), w = t / 32, g = (t % 32) / 4, q = t % 4, register r:
 *                       row = 16 w + g + 8 ((r >> 1) & 1)      col = 8 (r >> 2) + 2 q + (r & 1)
 *                     (the figure is an image in the ISA; the same map is CUTLASS's
 *                     CLayout_64xN = ((4,8,4),(2,2,N/8)):((128,1,16),(64,8,512)), m + 64 n)
 *   9.7.15.5.1.2      Shared Memory Matrix Layout: K-major / MN-major, the swizzle atoms, the
 *                     meaning of the leading (LBO) and stride (SBO) dimension byte offsets and
 *                     the "canonical layouts" (CuTe notation, T = 128 / element bits = 8 here):
 *       K-major   none   ((8,m),(T,2k)):((1T,SBO),(1,LBO))
 *                 32B    ((8,m),(T,2k)):((2T,SBO),(1,T))    Swizzle<1,4,3>
 *                 64B    ((8,m),(T,2k)):((4T,SBO),(1,T))    Swizzle<2,4,3>
 *                 128B   ((8,m),(T,2k)):((8T,SBO),(1,T))    Swizzle<3,4,3>
 *       MN-major  none   ((T,1,m),(8,k)):((1,T,SBO),(1T,LBO))
 *                 32B    ((T,2,m),(8,k)):((1,T,LBO),(2T,SBO)) Swizzle<1,4,3>
 *                 64B    ((T,4,m),(8,k)):((1,T,LBO),(4T,SBO)) Swizzle<2,4,3>
 *                 128B   ((T,8,m),(8,k)):((1,T,LBO),(8T,SBO)) Swizzle<3,4,3>
 *                     (first mode: the MN coordinate, second: K; strides in elements, SBO / LBO
 *                     in bytes). In bytes, for a 16-bit operand with MN index i and K index k:
 *       K-major   none   (i / 8) SBO + (i % 8) 16 + (k / 8) LBO + (k % 8) 2
 *                 W-byte swizzle (W = 32, 64, 128):  (i / 8) SBO + (i % 8) W + 2 k
 *                     (the whole K = 16 row, 32 bytes, lies inside one W-byte line: LBO is
 *                     "not used, assumed to be 1")
 *       MN-major  none   (i / 8) SBO + (i % 8) 2 + (k / 8) LBO + (k % 8) 16
 *                 W-byte swizzle:  (i / (W/2)) LBO + (i % (W/2)) 2 + (k / 8) SBO + (k % 8) W
 *                     — i.e. a "core matrix" is 8 lines of 16 bytes; K-major puts 8 MN rows
 *                     of 8 K elements in one, MN-major 8 K rows of 8 MN elements.
 *                     Note: for MN-major WITH swizzle, 9.0's tables make LBO the MN-direction
 *                     step between swizzle atoms and SBO the step between 8-row K groups; the
 *                     older 8.x wording ("LBO: between two adjacent core matrices in the K
 *                     dimension, SBO: ... in the M or N dimension") says the opposite. We follow
 *                     9.0 (CUTLASS's make_gmma_desc agrees); K-major and MN-major without swizzle
 *                     read the same under both.
 *   9.7.15.5.1.2.2    Matrix Descriptor Format: bits 13-0 start address, 29-16 LBO, 45-32 SBO,
 *                     each encoded (x & 0x3FFFF) >> 4; bits 51-49 matrix base offset; bits
 *                     63-62 swizzle: 0 none, 1 128B, 2 64B, 3 32B.
 *
 * The swizzle. Swizzle<B,4,3> is CuTe's XOR of address bits [4, 4+B) with bits [7, 7+B): the
 * 16-byte chunk index inside a 128-byte line is XORed with the line index inside the repeating
 * pattern (1024 B for 128B, 512 B for 64B, 256 B for 32B). The ISA applies it to the shared
 * memory ADDRESS (CuTe writes "Swizzle o smem_ptr o layout"), and says: "The value of base offset
 * is 0 when the repeating pattern of the specified swizzling mode starts" on that boundary,
 * "Otherwise, the base offset must be a non-zero value, computed using ... base offset =
 * (pattern start addr >> 0x7) & 0x7". Our reading, which the emulator implements: the address
 * of an element is computed WITHOUT swizzle from the start address and the canonical layout
 * above (so a start address inside a pattern, e.g. +32 B to step K by 16 inside a 128B line, is
 * just an offset), then its chunk bits [4, 4+B) are XORed with the line index
 *     ((address >> 7) - base_offset) mod 2^B
 * i.e. the line's position counted from the pattern start. With the pattern on its boundary
 * (base offset 0) that is the plain Swizzle<B,4,3> of the address. The ISA gives no formula for
 * how the hardware consumes the base offset; this subtraction is the one reading under which a
 * pattern written from a non-aligned start reads back, and it is marked as such.
 *
 * Arithmetic (9.7.15.5.2 "Precision and rounding": products "with specified precision",
 * accumulation "with at least single precision", "The accumulation order, rounding, and handling
 * of subnormal inputs are unspecified"): every product of two bf16 / f16 values is exact in
 * double, the emulator sums D (when scale-d) + sum_k A[m][k] B[k][n] in double, in increasing
 * k, and rounds to f32 ONCE per output. Hardware keeps fewer bits in its running sum, so it can
 * differ in the last bits of f32: tests comparing a kernel with a CPU reference need tolerances,
 * never bit equality. Subnormal bf16 / f16 inputs are decoded exactly (not flushed), inf / NaN
 * follow IEEE double arithmetic.
 *
 * Deliberately NOT covered: A from registers (the `a` register-fragment form), .f16 accumulators,
 * tf32 / fp8 / integer / .sp variants, the asynchronous completion (wgmma.fence, commit_group,
 * wait_group: under the sequential emulator the product is complete when the call returns, see
 * wgmma.cc), the "interleaved" wording of the no-swizzle layout beyond the canonical form above.
 *
 * Everything is static inline so the file can be included from C (gnu11) and C++ (c++17)
 * translation units without a separate object; it needs no CUDA.
 */
#ifndef DV_TESTS_SIMT_WGMMA_H
#define DV_TESTS_SIMT_WGMMA_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/simt/mma.h" /* dv_simt_bf16_to_double, dv_simt_f16_to_double */

#ifdef __cplusplus
extern "C" {
#endif

/* descriptor swizzle field (bits 63:62) */
enum { DV_WGMMA_SWIZZLE_NONE = 0, DV_WGMMA_SWIZZLE_128B = 1, DV_WGMMA_SWIZZLE_64B = 2, DV_WGMMA_SWIZZLE_32B = 3 };

/* a decoded matrix descriptor; byte quantities in bytes (the encoding's 4 low zero bits restored) */
typedef struct {
    uint32_t start;   /* shared-memory byte address of the matrix */
    uint32_t lbo;     /* leading dimension byte offset */
    uint32_t sbo;     /* stride dimension byte offset */
    uint32_t base_offset;
    int swizzle;      /* DV_WGMMA_SWIZZLE_* */
} dv_simt_wgmma_desc;

static inline dv_simt_wgmma_desc dv_simt_wgmma_desc_decode(uint64_t desc) {
    dv_simt_wgmma_desc d;
    d.start = (uint32_t)(desc & 0x3FFFu) << 4;
    d.lbo = (uint32_t)((desc >> 16) & 0x3FFFu) << 4;
    d.sbo = (uint32_t)((desc >> 32) & 0x3FFFu) << 4;
    d.base_offset = (uint32_t)((desc >> 49) & 0x7u);
    d.swizzle = (int)((desc >> 62) & 0x3u);
    return d;
}

/* the width W in bytes of one line of the swizzle pattern (0: no swizzle) and its log2(W / 16) */
static inline uint32_t dv_simt_wgmma_swizzle_bytes(int swizzle) {
    return swizzle == DV_WGMMA_SWIZZLE_128B ? 128u : swizzle == DV_WGMMA_SWIZZLE_64B ? 64u
         : swizzle == DV_WGMMA_SWIZZLE_32B ? 32u : 0u;
}

/* shared-memory byte address of element (i, k) of a 16-bit operand: i the M (A) or N (B)
 * index, k the K index (0..15); k_major = !imm-trans. See the header comment for the formulas. */
static inline uint32_t dv_simt_wgmma_elem_addr(const dv_simt_wgmma_desc *d, int k_major, int i, int k) {
    uint32_t W = dv_simt_wgmma_swizzle_bytes(d->swizzle), off;
    uint32_t ui = (uint32_t)i, uk = (uint32_t)k;
    if (k_major)
        off = W == 0 ? (ui / 8) * d->sbo + (ui % 8) * 16 + (uk / 8) * d->lbo + (uk % 8) * 2
                     : (ui / 8) * d->sbo + (ui % 8) * W + uk * 2;
    else
        off = W == 0 ? (ui / 8) * d->sbo + (ui % 8) * 2 + (uk / 8) * d->lbo + (uk % 8) * 16
                     : (ui / (W / 2)) * d->lbo + (ui % (W / 2)) * 2 + (uk / 8) * d->sbo + (uk % 8) * W;
    uint32_t addr = d->start + off;
    if (W) {
        uint32_t bits = W == 128 ? 3u : W == 64 ? 2u : 1u, mask = (1u << bits) - 1u;
        uint32_t line = ((addr >> 7) - d->base_offset) & mask;
        addr ^= line << 4;
    }
    return addr;
}

/* one past the highest shared byte the operand's rows x 16 elements can touch (for bounds
 * checks by the caller, who knows the shared-memory size) */
static inline uint32_t dv_simt_wgmma_operand_end(uint64_t desc, int k_major, int rows) {
    dv_simt_wgmma_desc d = dv_simt_wgmma_desc_decode(desc);
    uint32_t end = 0;
    for (int i = 0; i < rows; i++)
        for (int k = 0; k < 16; k++) {
            uint32_t a = dv_simt_wgmma_elem_addr(&d, k_major, i, k) + 2;
            if (a > end) end = a;
        }
    return end;
}

static inline void dv_simt_wgmma_die(const char *what, int n, int a, int b) {
    fprintf(stderr, "dv_simt_wgmma_m64k16_warpgroup: %s (n=%d, %d, %d)\n", what, n, a, b);
    abort();
}

/* D (64 x n) = A (64 x 16) * B (16 x n) (+ D when scale_d != 0), A and B read from shared memory
 * through desc_a / desc_b (smem = the host address of shared byte 0). scale_a / scale_b are the
 * immediates +1 / -1, trans_a / trans_b 0 (K-major) or 1 (M- / N-major). d is float[128 * n/2]:
 * d[t * (n/2) + r] = register r of thread t of the warpgroup, in the instruction's order. */
static inline void dv_simt_wgmma_m64k16_warpgroup(int n, int is_bf16, float *d, uint64_t desc_a, uint64_t desc_b,
                                                  const void *smem, int scale_d, int scale_a, int scale_b,
                                                  int trans_a, int trans_b) {
    if (n < 8 || n > 256 || n % 8) dv_simt_wgmma_die("n must be a multiple of 8 in 8..256", n, 0, 0);
    if ((scale_a != 1 && scale_a != -1) || (scale_b != 1 && scale_b != -1))
        dv_simt_wgmma_die("imm-scale-a / imm-scale-b must be 1 or -1", n, scale_a, scale_b);
    if ((trans_a != 0 && trans_a != 1) || (trans_b != 0 && trans_b != 1))
        dv_simt_wgmma_die("imm-trans-a / imm-trans-b must be 0 or 1", n, trans_a, trans_b);
    const uint8_t *sm = (const uint8_t *)smem;
    dv_simt_wgmma_desc da = dv_simt_wgmma_desc_decode(desc_a), db = dv_simt_wgmma_desc_decode(desc_b);
    static double A[64][16], B[16][256]; /* A (64 x 16), B (16 x n) as values, signs applied */
    for (int i = 0; i < 64; i++)
        for (int k = 0; k < 16; k++) {
            uint16_t x;
            memcpy(&x, sm + dv_simt_wgmma_elem_addr(&da, !trans_a, i, k), 2);
            A[i][k] = scale_a * (is_bf16 ? dv_simt_bf16_to_double(x) : dv_simt_f16_to_double(x));
        }
    for (int j = 0; j < n; j++)
        for (int k = 0; k < 16; k++) {
            uint16_t x;
            memcpy(&x, sm + dv_simt_wgmma_elem_addr(&db, !trans_b, j, k), 2);
            B[k][j] = scale_b * (is_bf16 ? dv_simt_bf16_to_double(x) : dv_simt_f16_to_double(x));
        }
    for (int t = 0; t < 128; t++) {
        int w = t / 32, g = (t % 32) / 4, q = t % 4;
        for (int r = 0; r < n / 2; r++) {
            int row = 16 * w + g + 8 * ((r >> 1) & 1), col = 8 * (r >> 2) + 2 * q + (r & 1);
            float *dst = &d[t * (n / 2) + r];
            double s = scale_d ? (double)*dst : 0.0;
            for (int k = 0; k < 16; k++) s += A[row][k] * B[k][col];
            *dst = (float)s;
        }
    }
}

/* ---- per thread, inside the emulator (defined in tests/simt/wgmma.cc, SIMT build only) ----
 * What a kernel compiled with -DDV_SIMT calls instead of its inline PTX. Each is collective over
 * the 128 threads of the calling thread's warpgroup (threads 128 w .. 128 w + 127 of the block,
 * i.e. warps 4 w .. 4 w + 3): every thread passes its own accumulator registers d[n/2]; the
 * instruction runs when the last of the 128 has arrived, with the dynamic shared memory of the
 * block as the shared window, and every thread's d is updated before any of them continues.
 * The descriptors, n, type, scales and transposes must be the same in all 128 (.aligned). */
void dv_simt_wgmma_bf16f16(int n, int is_bf16, float *d, uint64_t desc_a, uint64_t desc_b, int scale_d, int scale_a,
                           int scale_b, int trans_a, int trans_b);
/* wgmma.fence / commit_group / wait_group N and fence.proxy.async: no-ops, see wgmma.cc */
void dv_simt_wgmma_fence(void);
void dv_simt_wgmma_commit(void);
void dv_simt_wgmma_wait(int n);
void dv_simt_fence_proxy_async(void);

#ifdef __cplusplus
}
#endif

#endif
