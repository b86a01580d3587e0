/* kernels/cuda/gemm_sm90a.h — the index math of the Hopper wgmma GEMM (kernels/cuda/gemm_sm90a.cu):
 * tile sizes, the 128-byte swizzle of a K-major shared-memory tile, the wgmma shared-memory
 * matrix descriptor, the accumulator fragment map, who loads which 16-byte piece, and the order
 * in which thread blocks walk the output tiles.
 *
 * Written from the PTX ISA (8.x, section 9.7.15 "Asynchronous Warpgroup Level Matrix
 * Multiply-Accumulate"): 9.7.15.5.1.1 (register fragments of .m64nNk16), 9.7.15.5.1.2 (shared
 * memory matrix layout: swizzle atoms, K-major 128B swizzling mode = 8 rows x 128 bytes) and
 * 9.7.15.5.1.2.2 (matrix descriptor format).
 *
 * DV_HD like kernels/cuda/common.h: plain static inline C under gcc, so tests/test_wgmma_host.c
 * checks these very functions on the host inside `make test` (no GPU, no nvcc). Nothing here
 * touches CUDA types.
 */
#ifndef DV_KERNELS_CUDA_GEMM_SM90A_H
#define DV_KERNELS_CUDA_GEMM_SM90A_H

#include "kernels/cuda/common.h"

/* A block of DV_WG_THREADS = 3 warpgroups computes a BM x BN = 128 x 256 tile of C. Warpgroups
 * 0 and 1 (the consumers) each own 64 rows (64 g .. 64 g + 63) and all 256 columns: one
 * wgmma.m64n256k16 per 16 of K, 128 f32 accumulators a thread. Warpgroup 2 (the producer, its
 * DV_WG_LOADERS threads) moves the tiles from global memory into shared memory. K advances
 * BK = 64 at a time (one 128-byte swizzle row of bf16 / f16) through DV_WG_STAGES
 * shared-memory stages, each holding A (128 rows x 128 bytes) then B (256 rows x 128 bytes). */
enum {
    DV_WG_BM = 128, DV_WG_BN = 256, DV_WG_BK = 64, DV_WG_N = 256,
    DV_WG_THREADS = 384, DV_WG_LOADERS = 128,
    DV_WG_STAGES = 4,
    DV_WG_ROW_BYTES = DV_WG_BK * 2,                         /* 128: one swizzle row */
    DV_WG_A_BYTES = DV_WG_BM * DV_WG_ROW_BYTES,             /* 16 KiB */
    DV_WG_B_BYTES = DV_WG_BN * DV_WG_ROW_BYTES,             /* 32 KiB */
    DV_WG_STAGE_BYTES = DV_WG_A_BYTES + DV_WG_B_BYTES,      /* 48 KiB */
    /* the dynamic shared memory a block asks for: the stages plus 1 KiB of slack, so that
     * the kernel can round its base up to the 1024-byte boundary the swizzle pattern needs */
    DV_WG_SMEM_BYTES = DV_WG_STAGES * DV_WG_STAGE_BYTES + 1024,
    DV_WG_A_PIECES = DV_WG_BM * DV_WG_BK / 8 / DV_WG_LOADERS, /* 16-byte pieces a loader: 8 */
    DV_WG_B_PIECES = DV_WG_BN * DV_WG_BK / 8 / DV_WG_LOADERS, /* 16 */
    DV_WG_GROUP_M = 8                                       /* tile-order grouping, below */
};

/* ---- the 128-byte swizzle (K-major, 16-bit elements) ------------------------------------- */
/* A tile of R rows (m or n) x 64 k: row r is the 128 bytes at r * 128; its 16-byte chunk c
 * (k = 8c .. 8c + 7) sits at chunk position c XOR (r mod 8). Eight rows make one 1024-byte
 * swizzle atom (PTX ISA Table "swizzle atom layout", 128B / K: 8 x 8 of 128-bit elements);
 * the tile must start at a 1024-byte boundary (descriptor base offset 0). Byte offset of
 * (row r, k) within the tile: */
DV_HD uint32_t dv_wg_swz(int r, int k) {
    return (uint32_t)r * DV_WG_ROW_BYTES + ((((uint32_t)k >> 3) ^ ((uint32_t)r & 7u)) << 4) +
           ((uint32_t)k & 7u) * 2u;
}

/* ---- the shared-memory matrix descriptor (PTX ISA 9.7.15.5.1.2.2) ------------------------- */
/*   bits  0-13  matrix-descriptor-encode(start address)      encode(x) = (x & 0x3FFFF) >> 4
 *   bits 16-29  encode(leading dimension byte offset)
 *   bits 32-45  encode(stride dimension byte offset)
 *   bits 49-51  matrix base offset (0: the pattern starts on a 1024-byte boundary for 128B)
 *   bits 62-63  swizzle mode: 0 none, 1 128-byte, 2 64-byte, 3 32-byte                      */
DV_HD uint64_t dv_wg_desc_encode(uint32_t x) { return (uint64_t)((x & 0x3FFFFu) >> 4); }

DV_HD uint64_t dv_wg_desc(uint32_t start, uint32_t lbo, uint32_t sbo, uint32_t base_offset, uint32_t swizzle) {
    return dv_wg_desc_encode(start) | dv_wg_desc_encode(lbo) << 16 | dv_wg_desc_encode(sbo) << 32 |
           (uint64_t)(base_offset & 7u) << 49 | (uint64_t)(swizzle & 3u) << 62;
}

/* The descriptor of the 64-row K-major slice that starts at row `row0` of a swizzled tile at
 * shared address `tile` (1024-aligned), for the 16-wide k step `ks` (0..3):
 *   start = tile + row0 * 128 + 32 ks   (the k offset goes into the start address; the
 *            hardware applies the XOR to the address bits, so 32 ks picks chunks 2 ks, 2 ks + 1
 *            of every row, swizzled as dv_wg_swz stored them)
 *   leading byte offset: "not used" for swizzled K-major layouts (the k16 step lies within
 *            one 128-byte row); set to 16 (encoded 1) as the ISA's "assumed 1"
 *   stride byte offset: 1024, from one group of 8 rows (one swizzle atom) to the next
 *   base offset 0, swizzle mode 1 (128-byte).
 * row0 must be a multiple of 8. */
DV_HD uint64_t dv_wg_desc_kmajor_sw128(uint32_t tile, int row0, int ks) {
    return dv_wg_desc(tile + (uint32_t)row0 * DV_WG_ROW_BYTES + (uint32_t)ks * 32u, 16u, 1024u, 0u, 1u);
}

/* ---- the accumulator fragment (PTX ISA 9.7.15.5.1.1, .m64nNk16, f32 D) ------------------- */
/* Register i (0 .. N/2 - 1) of thread t (0..127) of a warpgroup holds D[row][col] of the
 * 64 x N result: row = 16 (t / 32) + (t % 32) / 4 + 8 ((i / 2) % 2),
 *                col = 8 (i / 4) + 2 (t % 4) + i % 2. */
DV_HD void dv_wg_c_coord(int t, int i, int *row, int *col) {
    int warp = t / 32, lane = t % 32;
    *row = 16 * warp + lane / 4 + 8 * ((i >> 1) & 1);
    *col = 8 * (i >> 2) + 2 * (lane & 3) + (i & 1);
}

/* ---- global -> shared pieces -------------------------------------------------------------- */
/* Piece `it` (0 .. R * BK / 8 / DV_WG_LOADERS - 1) of loader thread t (0 .. DV_WG_LOADERS - 1)
 * for an R-row tile (R = BM for A, BN for B), 8 halves of one global row:
 *   - operand stored k-contiguous in global memory (A with ta = 0, B with tb = 1): row r,
 *     k .. k + 7, stored as is as one 16-byte chunk; eight consecutive threads read one
 *     128-byte row
 *   - stored with the row index contiguous (A with ta = 1, B with tb = 0: the global operand
 *     is (K, R)): the tile is (R / 8) x 8 blocks of 8 rows x 8 k; loader t takes blocks
 *     b = t + DV_WG_LOADERS j (j < R / DV_WG_LOADERS), and pieces it = 8 j .. 8 j + 7 are the
 *     block's 8 k (k = 8 (b / (R / 8)) + it % 8), each covering rows r .. r + 7 with
 *     r = 8 (b % (R / 8)); the loader transposes the 8 pieces in registers
 *     (dv_wg_transpose8x8) into the 8 rows' 16-byte chunks. R / 8 consecutive threads read one
 *     global row. */
DV_HD void dv_wg_piece(int t, int it, int R, bool kcontig, int *r, int *k) {
    if (kcontig) {
        int v = t + it * DV_WG_LOADERS;
        *r = v / (DV_WG_BK / 8); *k = (v % (DV_WG_BK / 8)) * 8;
    } else {
        int b = t + (it / 8) * DV_WG_LOADERS;
        *k = 8 * (b / (R / 8)) + it % 8; *r = 8 * (b % (R / 8));
    }
}

/* The 8 x 8 transpose of 16-bit elements held as words: in[e][i] holds elements (e, 2i) (low
 * half) and (e, 2i + 1) (high half); out[c][j] gets (2j, c) and (2j + 1, c). One byte permute
 * per output word on the GPU. */
DV_HD void dv_wg_transpose8x8(const uint32_t in[8][4], uint32_t out[8][4]) {
    for (int j = 0; j < 4; j++)
        for (int i = 0; i < 4; i++) {
            uint32_t a = in[2 * j][i], b = in[2 * j + 1][i];
            out[2 * i][j] = (a & 0xffffu) | (b << 16);
            out[2 * i + 1][j] = (a >> 16) | (b & 0xffff0000u);
        }
}

/* ---- tile order ------------------------------------------------------------------------------ */
/* Block b (0 .. tm * tn - 1) computes output tile (*im, *in): the tiles are walked in groups
 * of DV_WG_GROUP_M tile rows, down the rows of a group first, so the blocks resident at once
 * share A rows and B columns in L2. A bijection onto the tm x tn tiles. */
DV_HD void dv_wg_tile_of(int64_t b, int64_t tm, int64_t tn, int64_t *im, int64_t *in) {
    int64_t per_group = (int64_t)DV_WG_GROUP_M * tn;
    int64_t g = b / per_group, first = g * DV_WG_GROUP_M;
    int64_t rows = tm - first < (int64_t)DV_WG_GROUP_M ? tm - first : (int64_t)DV_WG_GROUP_M;
    int64_t w = b % per_group;
    *im = first + w % rows;
    *in = w / rows;
}

#endif
