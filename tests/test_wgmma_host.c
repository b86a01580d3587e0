/* tests/test_wgmma_host.c — the index math of the Hopper wgmma GEMM (kernels/cuda/gemm_sm90a.h)
 * checked on the host inside `make test` (no GPU, no nvcc):
 *   - the 128-byte swizzle is a bijection within each 1024-byte atom and over whole tiles
 *   - the matrix descriptor's bit fields (PTX ISA 9.7.15.5.1.2.2), reserved bits clear
 *   - every element of the K-major tiles lands where the descriptor says the tensor cores read
 *     it: a model of the ISA's addressing (canonical K-major layout of 8-row x 128-byte atoms,
 *     stride byte offset between atoms, then the 128B swizzle XOR on address bits 4-6 with
 *     bits 7-9) written here apart from dv_wg_swz, for every k16 step and both operands
 *   - the accumulator fragment map covers the 64 x 256 result once and matches the ISA's
 *     figure at hand-checked points
 *   - the loader pieces cover each tile once, eight threads a 128-byte row; for an operand that
 *     is not K-contiguous they form 8 x 8 blocks, and the register transpose is checked
 *   - the grouped tile order is a bijection
 * What this cannot check is the hardware: tests/cuda/test_cuda_wgmma.c runs the kernel (on a
 * GPU, or on the SIMT emulator with its own reading of the wgmma semantics).
 */
#include "kernels/cuda/gemm_sm90a.h"
#include "tests/test.h"

#include <stdlib.h>
#include <string.h>

TEST(wgmma_host_swizzle_is_a_bijection) {
    /* within one atom: 8 rows x 64 k of 2-byte elements fill the 1024 bytes once */
    unsigned char seen[1024];
    memset(seen, 0, sizeof seen);
    int bad = 0;
    for (int r = 0; r < 8; r++)
        for (int k = 0; k < 64; k++) {
            uint32_t o = dv_wg_swz(r, k);
            if (o >= 1024 || (o & 1)) { bad++; continue; }
            bad += seen[o]++ != 0;
        }
    CHECK(bad == 0);
    /* each 16-byte chunk keeps its 8 elements contiguous and in order (16-byte stores work) */
    for (int r = 0; r < 8; r++)
        for (int c = 0; c < 8; c++)
            for (int e = 0; e < 8; e++) bad += dv_wg_swz(r, 8 * c + e) != dv_wg_swz(r, 8 * c) + 2u * (uint32_t)e;
    CHECK(bad == 0);
    /* the swizzle actually permutes: row r's chunk 0 sits at chunk r */
    for (int r = 0; r < 8; r++) CHECK(dv_wg_swz(r, 0) == (uint32_t)(r * 128 + r * 16));
    /* whole tiles (A: 128 rows, B: 256 rows): a bijection onto [0, rows * 128) */
    const int rows[2] = {DV_WG_BM, DV_WG_BN};
    for (int ti = 0; ti < 2; ti++) {
        int R = rows[ti];
        unsigned char *s = calloc((size_t)R * 128, 1);
        bad = 0;
        for (int r = 0; r < R; r++)
            for (int k = 0; k < 64; k++) {
                uint32_t o = dv_wg_swz(r, k);
                if (o >= (uint32_t)R * 128) { bad++; continue; }
                bad += s[o]++ != 0;
                /* each 8-row group stays inside its own 1024-byte atom */
                bad += o / 1024 != (uint32_t)(r / 8);
            }
        CHECK_MSG(bad == 0, "tile of %d rows: %d bad offsets", R, bad);
        free(s);
    }
}

/* field (lo .. hi, inclusive) of a descriptor */
static uint64_t field(uint64_t d, int lo, int hi) { return (d >> lo) & ((1ull << (hi - lo + 1)) - 1); }

TEST(wgmma_host_descriptor_fields) {
    /* the generic encoder: each value in its own field, matrix-descriptor-encode = (x & 0x3FFFF) >> 4 */
    uint64_t d = dv_wg_desc(0x12340, 0x560, 0x3ff0, 5, 2);
    CHECK(field(d, 0, 13) == (0x12340u >> 4));
    CHECK(field(d, 16, 29) == (0x560u >> 4));
    CHECK(field(d, 32, 45) == (0x3ff0u >> 4));
    CHECK(field(d, 49, 51) == 5);
    CHECK(field(d, 62, 63) == 2);
    CHECK(field(d, 14, 15) == 0 && field(d, 30, 31) == 0 && field(d, 46, 48) == 0 && field(d, 52, 61) == 0);
    CHECK(field(dv_wg_desc(0x4ffff0, 0, 0, 0, 0), 0, 13) == (0x3fff0u >> 4)); /* address bits above 17 dropped */

    /* the kernel's descriptors: start = tile + 128 row0 + 32 ks, LBO 16 (encoded 1: "assumed
     * 1"), SBO 1024 (encoded 64), base offset 0, 128-byte swizzle (mode 1) */
    const uint32_t tiles[3] = {0, 1024 * 5, DV_WG_SMEM_BYTES - 1024 - DV_WG_B_BYTES};
    for (int ti = 0; ti < 3; ti++)
        for (int row0 = 0; row0 < 256; row0 += 64)
            for (int ks = 0; ks < 4; ks++) {
                uint64_t q = dv_wg_desc_kmajor_sw128(tiles[ti], row0, ks);
                CHECK(field(q, 0, 13) == ((tiles[ti] + 128u * row0 + 32u * ks) >> 4));
                CHECK(field(q, 16, 29) == 1);
                CHECK(field(q, 32, 45) == 64);
                CHECK(field(q, 49, 51) == 0);
                CHECK(field(q, 62, 63) == 1);
                CHECK(field(q, 14, 15) == 0 && field(q, 30, 31) == 0 && field(q, 46, 48) == 0 && field(q, 52, 61) == 0);
            }
    /* the largest start address the kernel forms fits the 14-bit field (18-bit byte address) */
    CHECK(DV_WG_SMEM_BYTES <= 227 * 1024 && DV_WG_SMEM_BYTES < (1 << 18));
    CHECK(DV_WG_STAGE_BYTES % 1024 == 0 && DV_WG_A_BYTES % 1024 == 0);
}

/* Where, by this reading of the PTX ISA, the tensor cores read element (row, k) (row < rows of
 * the wgmma operand: 64 of A, N of B; k < 16) of the K-major operand a descriptor describes:
 * the canonical K-major layout for the 128-byte swizzle is built of atoms of 8 rows x 128
 * bytes (Table "swizzle atom layout": 8 x 8 of 128-bit elements); inside an atom row r is
 * 128 r bytes from the start and k runs contiguously; atoms follow each other along M / N at
 * the stride byte offset; the leading byte offset is not used (K = 16 stays inside one row).
 * The swizzle then permutes the 16-byte units inside each 1024-byte-aligned 1024-byte block
 * (base offset 0): address bits 4-6 XOR address bits 7-9. */
static uint32_t model_address(uint64_t desc, int row, int k) {
    uint32_t start = (uint32_t)field(desc, 0, 13) << 4, sbo = (uint32_t)field(desc, 32, 45) << 4;
    uint32_t a = start + (uint32_t)(row / 8) * sbo + (uint32_t)(row % 8) * 128u + (uint32_t)k * 2u;
    return a ^ (((a >> 7) & 7u) << 4);
}

TEST(wgmma_host_tiles_land_where_descriptors_read) {
    const uint32_t stage0 = 3 * 1024; /* any 1024-aligned shared address */
    int bad = 0;
    for (int stage = 0; stage < DV_WG_STAGES; stage++) {
        uint32_t a_tile = stage0 + (uint32_t)stage * DV_WG_STAGE_BYTES, b_tile = a_tile + DV_WG_A_BYTES;
        for (int ks = 0; ks < 4; ks++) {
            /* A: warpgroup g reads rows 64 g .. 64 g + 63 */
            for (int g = 0; g < 2; g++) {
                uint64_t da = dv_wg_desc_kmajor_sw128(a_tile, 64 * g, ks);
                for (int r = 0; r < 64; r++)
                    for (int k = 0; k < 16; k++)
                        bad += model_address(da, r, k) != a_tile + dv_wg_swz(64 * g + r, 16 * ks + k);
            }
            /* B: all 256 rows (n) */
            uint64_t db = dv_wg_desc_kmajor_sw128(b_tile, 0, ks);
            for (int n = 0; n < DV_WG_N; n++)
                for (int k = 0; k < 16; k++) bad += model_address(db, n, k) != b_tile + dv_wg_swz(n, 16 * ks + k);
        }
    }
    CHECK_MSG(bad == 0, "%d elements stored where the descriptor does not read them", bad);
    /* the model is sensitive to the swizzle: an unswizzled store would be read wrongly */
    uint64_t d0 = dv_wg_desc_kmajor_sw128(0, 0, 1);
    CHECK(model_address(d0, 1, 0) != 1 * 128 + 32);
}

TEST(wgmma_host_accumulator_map) {
    /* the 128 threads x 128 registers of m64n256 cover 64 x 256 once */
    unsigned char *seen = calloc(64 * 256, 1);
    int bad = 0;
    for (int t = 0; t < 128; t++)
        for (int i = 0; i < DV_WG_N / 2; i++) {
            int r, c;
            dv_wg_c_coord(t, i, &r, &c);
            if (r < 0 || r >= 64 || c < 0 || c >= 256) { bad++; continue; }
            bad += seen[r * 256 + c]++ != 0;
            /* registers i, i + 1 (i even): one row, adjacent columns, the first even */
            if (i % 2 == 0) {
                int r1, c1;
                dv_wg_c_coord(t, i + 1, &r1, &c1);
                bad += r1 != r || c1 != c + 1 || c % 2 != 0;
            }
        }
    CHECK(bad == 0);
    free(seen);
    /* points of the ISA's figure for .m64nNk16 D: T0 d0,d1 (0,0),(0,1); d2,d3 row 8; d4 col 8;
     * T5 (lane 5) d0 at row 1, col 2; T32 (warp 1) d0 at row 16; T127 d127 at (63, 255) */
    int r, c;
    dv_wg_c_coord(0, 0, &r, &c); CHECK(r == 0 && c == 0);
    dv_wg_c_coord(0, 1, &r, &c); CHECK(r == 0 && c == 1);
    dv_wg_c_coord(0, 2, &r, &c); CHECK(r == 8 && c == 0);
    dv_wg_c_coord(0, 3, &r, &c); CHECK(r == 8 && c == 1);
    dv_wg_c_coord(0, 4, &r, &c); CHECK(r == 0 && c == 8);
    dv_wg_c_coord(5, 0, &r, &c); CHECK(r == 1 && c == 2);
    dv_wg_c_coord(32, 0, &r, &c); CHECK(r == 16 && c == 0);
    dv_wg_c_coord(127, 127, &r, &c); CHECK(r == 63 && c == 255);
}

TEST(wgmma_host_loader_pieces_cover_tiles_once) {
    const int rows[2] = {DV_WG_BM, DV_WG_BN};
    const int npieces[2] = {DV_WG_A_PIECES, DV_WG_B_PIECES};
    for (int ti = 0; ti < 2; ti++)
        for (int kc = 0; kc < 2; kc++) {
            int R = rows[ti], bad = 0;
            CHECK(npieces[ti] * DV_WG_LOADERS * 8 == R * DV_WG_BK);
            unsigned char *seen = calloc((size_t)R * DV_WG_BK, 1);
            for (int t = 0; t < DV_WG_LOADERS; t++)
                for (int it = 0; it < npieces[ti]; it++) {
                    int r, k;
                    dv_wg_piece(t, it, R, kc, &r, &k);
                    for (int e = 0; e < 8; e++) {
                        int rr = kc ? r : r + e, kk = kc ? k + e : k;
                        if (rr < 0 || rr >= R || kk < 0 || kk >= DV_WG_BK) { bad++; continue; }
                        bad += seen[rr * DV_WG_BK + kk]++ != 0;
                    }
                    /* coalescing: thread t + 1 continues thread t's global row */
                    if (t % 8 != 7) {
                        int r2, k2;
                        dv_wg_piece(t + 1, it, R, kc, &r2, &k2);
                        bad += kc ? (r2 != r || k2 != k + 8) : (k2 != k || r2 != r + 8);
                    }
                }
            CHECK_MSG(bad == 0, "%d rows, kcontig %d: %d bad", R, kc, bad);
            free(seen);
        }
}

TEST(wgmma_host_transposed_pieces_form_8x8_blocks) {
    /* for an operand with the row index contiguous, pieces 8 j .. 8 j + 7 of a thread are one
     * 8 x 8 block: the same 8 rows, 8 consecutive k from a multiple of 8 */
    const int rows[2] = {DV_WG_BM, DV_WG_BN};
    const int npieces[2] = {DV_WG_A_PIECES, DV_WG_B_PIECES};
    int bad = 0;
    for (int ti = 0; ti < 2; ti++)
        for (int t = 0; t < DV_WG_LOADERS; t++)
            for (int j = 0; j < npieces[ti] / 8; j++) {
                int r0, k0;
                dv_wg_piece(t, 8 * j, rows[ti], false, &r0, &k0);
                bad += k0 % 8 != 0 || r0 % 8 != 0;
                for (int e = 1; e < 8; e++) {
                    int r, k;
                    dv_wg_piece(t, 8 * j + e, rows[ti], false, &r, &k);
                    bad += r != r0 || k != k0 + e;
                }
            }
    CHECK(bad == 0);
    CHECK(DV_WG_A_PIECES % 8 == 0 && DV_WG_B_PIECES % 8 == 0);
}

TEST(wgmma_host_transpose8x8) {
    uint16_t m[8][8];
    uint32_t in[8][4], out[8][4];
    for (int e = 0; e < 8; e++)
        for (int c = 0; c < 8; c++) m[e][c] = (uint16_t)(0x1000 * (e + 1) + 0x11 * c + (e * 7 + c * 3) % 5);
    for (int e = 0; e < 8; e++)
        for (int i = 0; i < 4; i++) in[e][i] = (uint32_t)m[e][2 * i] | (uint32_t)m[e][2 * i + 1] << 16;
    dv_wg_transpose8x8((const uint32_t(*)[4])in, out);
    int bad = 0;
    for (int c = 0; c < 8; c++)
        for (int j = 0; j < 4; j++) bad += out[c][j] != ((uint32_t)m[2 * j][c] | (uint32_t)m[2 * j + 1][c] << 16);
    CHECK(bad == 0);
}

TEST(wgmma_host_tile_order_is_a_bijection) {
    const int64_t shapes[][2] = {{1, 1}, {8, 3}, {13, 5}, {64, 32}, {3, 17}, {17, 1}};
    for (int s = 0; s < 6; s++) {
        int64_t tm = shapes[s][0], tn = shapes[s][1];
        unsigned char *seen = calloc((size_t)(tm * tn), 1);
        int bad = 0;
        for (int64_t b = 0; b < tm * tn; b++) {
            int64_t im, in;
            dv_wg_tile_of(b, tm, tn, &im, &in);
            if (im < 0 || im >= tm || in < 0 || in >= tn) { bad++; continue; }
            bad += seen[im * tn + in]++ != 0;
        }
        CHECK_MSG(bad == 0, "%lld x %lld tiles: %d bad", (long long)tm, (long long)tn, bad);
        free(seen);
    }
    /* consecutive blocks walk down a group of 8 tile rows first */
    int64_t im, in;
    dv_wg_tile_of(1, 64, 32, &im, &in); CHECK(im == 1 && in == 0);
    dv_wg_tile_of(8, 64, 32, &im, &in); CHECK(im == 0 && in == 1);
}
