/* kernels/avx512/attention.c — fused attention, AVX-512 f32 (the maths: kernels/attention.h).
 *
 * Packing: the keys of a (b, kv head) are copied transposed into panels of 32 keys, zero-padded
 * (16 x 16 register transposes), so the score micro-kernel streams contiguous memory:
 *   Kt   panel p holds K[32p .. 32p+32, d] at [(p Dp + d) 32 + jj]      (Dp = D rounded up to 32)
 * plus kadd[j] = 0 for a key that is kept, -inf for a padded key and for the padding past Tk.
 * The backward packs V the same way (Vt). V in the forward and K in the backward's dQ are read
 * as they are, row by row.
 *
 * Forward. A task (b, kv head, query chunk) packs its head's keys into its own slab (they stay
 * in cache for all its blocks), then takes blocks of BQ = 16 query rows (two halves of 8) of
 * each head of the group, and walks the keys BK = 64 at a time:
 *   S  (16 x 64) = Qs Kt            Qs: the rows times scale; 8 x 32 micro-kernel: broadcast
 *                                   Qs[r][d] against two 16-key vectors, 16 accumulators
 *   + kadd, + bias, causal -inf     in vector form
 *   online softmax                  per row: tile max, rescale the accumulator row when the
 *                                   running max grows, P = exp(S - m) (vmath.h's vm_exp), sum
 *   Acc (16 x Dv) += P V            8 x 32 micro-kernel over the head dim, sum over the keys
 * and at the end O = Acc / l, lse = m + log l. A block stops at the last key its last row sees.
 *
 * Backward (FlashAttention-2). Qs and dO get padded copies, Dr = rowsum(dO o O) is computed
 * once per row (all O(Tq) per head). With one task per (b, kv head) (enough heads for the
 * threads) the task makes these copies for its group's heads in its own slab, right before it
 * uses them, and zeroes its own dQ rows: they stay in L2 instead of going out to memory and back
 * (~10% of the backward at LLaMA shapes); otherwise one shared copy is made up front. A task
 * (b, kv head, key chunk) owns some key tiles; for
 * each tile it packs Kt and Vt, keeps dK, dV in its slab and sweeps blocks of BQB = 32 query
 * rows of all heads of the group (so GQA's sum over the group needs nothing more, and no two
 * tasks write the same dK, dV row):
 *   S = Qs Kt, P = exp(S - lse)     recomputed and masked as in the forward
 *   dP = dO Vt, dS = P (dP - Dr)
 *   dV += P^T dO, dK += dS^T Qs     8 keys x 32 head dims micro-kernel, sum over the 32 rows
 *   dQ += scale dS K                the forward's P V micro-kernel, into dQ rows in memory
 * dQ rows are shared by all key tiles of a head. With one task per (b, kv head) that is race
 * free; when there are too few heads to keep the threads busy the key tiles are dealt out to
 * chunks, each chunk adds into its own copy of dQ, and the copies are summed at the end in a
 * fixed order (so the result does not depend on the schedule).
 *
 * Work memory comes from the caller: per-thread slabs (packed keys, tiles, accumulators) and,
 * for the backward, the Qs / dO copies, Dr and the extra dQ copies — O(Tq + Tk) per head.
 * Measured on a 2-core Zen 5: ~160 GFLOP/s per core forward and backward at head dim 128
 * (bench/bench_attention.c); small head dims are bound by reading K and V from memory.
 */
#include "kernels/attention.h"
#include "kernels/avx512/vmath.h"

#include <immintrin.h>
#include <math.h>
#include <omp.h>
#include <string.h>

/* query rows per block: forward 16 = one vector of row statistics (2 x 8 micro-kernel rows),
 * backward 32 (4 x 8); keys per tile (2 x 32) */
enum { BQ = 16, BQB = 32, BK = 64 };

#define AI static inline __attribute__((always_inline))

static inline int64_t rup(int64_t x, int64_t m) { return (x + m - 1) / m * m; }
static inline int64_t imin(int64_t a, int64_t b) { return a < b ? a : b; }
/* a mask of the first n lanes (n may be <= 0 or >= 16) */
static inline __mmask16 lanes(int64_t n) { return n >= 16 ? (__mmask16)0xFFFF : n <= 0 ? 0 : (__mmask16)((1u << n) - 1); }

/* the first n floats at p (n may be >= 16 or <= 0), zero in the other lanes. A masked load only
 * where it must be: on the AMD Zen 5 this was tuned on, a masked load that misses the cache is
 * about 3x slower than a plain one (masked stores are fine). */
AI __m512 load_n(const float *p, int64_t n) {
    if (n >= 16) return _mm512_loadu_ps(p);
    if (n == 8) return _mm512_zextps256_ps512(_mm256_loadu_ps(p));
    return _mm512_maskz_loadu_ps(lanes(n), p);
}

/* ---- work memory layout (offsets in floats, each rounded to a cache line) ------------------ */
typedef struct {
    int64_t Tkp, Tqp, Dp, Dvp; /* Tk, D, Dv rounded up to 32; Tq to the block rows */
    int64_t nchunk;            /* tasks per (b, kv head): query chunks (forward), key chunks (backward) */
    bool local;                /* backward with one task per (b, kv head): the Qs / dO / Dr copies
                                * of the group's heads live in the task's slab */
    int64_t qs, dout, dr, dqp; /* shared (backward, !local): Qs and dO copies, Dr; the extra dQ copies */
    int64_t slab, slab_size, total;
    /* within a thread's slab: packed keys / values (forward: the whole head, backward: one tile),
     * the query rows, scores, probabilities, accumulators; backward local: t_qs, t_do, t_dr */
    int64_t t_kadd, t_kt, t_vt, t_qs, t_do, t_dr, t_s, t_p, t_acc, t_dk, t_dv;
} layout;

/* tasks per (b, kv head) so that there are >= 2 tasks per thread, at most one per block */
static int64_t task_chunks(const dv_attn_geom *g, int64_t nblocks) {
    int64_t heads = g->B * g->Hkv;
    if (heads == 0 || nblocks <= 1 || g->nthreads <= 1) return 1;
    int64_t want = (2 * (int64_t)g->nthreads + heads - 1) / heads;
    return want < 1 ? 1 : want > nblocks ? nblocks : want;
}

static layout make_layout(const dv_attn_geom *g, bool backward) {
    layout L = {0};
    L.Tkp = rup(g->Tk, 32);
    L.Tqp = rup(g->Tq, backward ? BQB : BQ);
    L.Dp = rup(g->D, 32);
    L.Dvp = rup(g->Dv, 32);
    L.nchunk = backward ? task_chunks(g, (g->Tk + BK - 1) / BK) : task_chunks(g, (g->Tq + BQ - 1) / BQ);
    const int64_t qrows = g->B * g->Hq * L.Tqp;
    int64_t off = 0, t = 0;
#define PLACE(field, n) do { L.field = off; off += rup((n), 16); } while (0)
#define PLACE_T(field, n) do { L.field = t; t += rup((n), 16); } while (0)
    if (!backward) {
        PLACE_T(t_kadd, L.Tkp);
        PLACE_T(t_kt, L.Dp * L.Tkp);
        PLACE_T(t_qs, BQ * L.Dp);
        PLACE_T(t_s, BQ * BK);
        PLACE_T(t_acc, BQ * L.Dvp);
    } else {
        /* local copies when each task has a (b, kv head) to itself and no thread count could
         * make the per-thread copies outgrow one shared copy */
        L.local = L.nchunk == 1 && (g->nthreads <= 1 || g->B * g->Hkv >= g->nthreads);
        if (L.local) {
            const int64_t grows = (g->Hkv ? g->Hq / g->Hkv : 1) * L.Tqp;
            PLACE_T(t_qs, grows * L.Dp);
            PLACE_T(t_do, grows * L.Dvp);
            PLACE_T(t_dr, grows);
        } else {
            PLACE(qs, qrows * L.Dp);
            PLACE(dout, qrows * L.Dvp);
            PLACE(dr, qrows);
            PLACE(dqp, (L.nchunk - 1) * g->B * g->Hq * g->Tq * g->D);
        }
        PLACE_T(t_kadd, BK);
        PLACE_T(t_kt, L.Dp * BK);
        PLACE_T(t_vt, L.Dvp * BK);
        PLACE_T(t_s, BQB * BK);
        PLACE_T(t_p, BQB * BK);
        PLACE_T(t_dk, BK * L.Dp);
        PLACE_T(t_dv, BK * L.Dvp);
    }
#undef PLACE
#undef PLACE_T
    L.slab = off;
    L.slab_size = t;
    L.total = off + t * (g->nthreads > 0 ? g->nthreads : 1);
    return L;
}

size_t dv_attention_work_bytes_f32_avx512(const dv_attn_geom *g, bool backward) {
    return (size_t)make_layout(g, backward).total * sizeof(float);
}

/* ---- packing -------------------------------------------------------------------------------- */
/* r[i] lane j <-> r[j] lane i: pairs of rows interleaved at 32, then 64 bits, then the 128-bit
 * lanes gathered across the four groups of four rows */
AI void transpose16(__m512 r[16]) {
    __m512 t[16];
    #pragma GCC unroll 8
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    #pragma GCC unroll 4
    for (int i = 0; i < 16; i += 4) { /* r[i + c], 128-bit lane L: rows i..i+3 of column 4L + c */
        __m512d a = _mm512_castps_pd(t[i]), b = _mm512_castps_pd(t[i + 1]);
        __m512d c = _mm512_castps_pd(t[i + 2]), d = _mm512_castps_pd(t[i + 3]);
        r[i + 0] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
        r[i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
        r[i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
        r[i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
    }
    #pragma GCC unroll 4
    for (int c = 0; c < 4; c++) {
        __m512 u0 = _mm512_shuffle_f32x4(r[c], r[4 + c], 0x44), u1 = _mm512_shuffle_f32x4(r[c], r[4 + c], 0xee);
        __m512 u2 = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0x44), u3 = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0xee);
        t[c] = _mm512_shuffle_f32x4(u0, u2, 0x88);
        t[4 + c] = _mm512_shuffle_f32x4(u0, u2, 0xdd);
        t[8 + c] = _mm512_shuffle_f32x4(u1, u3, 0x88);
        t[12 + c] = _mm512_shuffle_f32x4(u1, u3, 0xdd);
    }
    #pragma GCC unroll 16
    for (int i = 0; i < 16; i++) r[i] = t[i];
}

/* K and V usually come from memory, not cache, and the hardware prefetcher alone falls behind
 * on these short rows: fetch the rows this far ahead (about 4 KiB) */
static int64_t prefetch_rows_ahead(int64_t n) {
    int64_t rows = 4096 / (4 * (n > 0 ? n : 1));
    return rows < 16 ? 16 : rup(rows, 16);
}

/* prefetch every cache line of row j (n floats) of x */
static inline void prefetch_row(const float *x, int64_t ld, int64_t n, int64_t j) {
    const char *row = (const char *)(x + j * ld);
    for (int64_t b = 0; b < 4 * n; b += 64) _mm_prefetch(row + b, _MM_HINT_T0);
    _mm_prefetch(row + 4 * n - 1, _MM_HINT_T0);
}

/* kadd[j - j0] = 0 for a key j in [j0, j0 + nkp) that is kept, -inf for a padded key and j >= Tk */
static void pack_kadd(const dv_attn_geom *g, int64_t b, int64_t j0, int64_t nkp, float *kadd) {
    for (int64_t j = j0; j < j0 + nkp; j++) {
        bool keep = j < g->Tk && (!g->keep || g->keep[b * g->keep_stride[0] + j * g->keep_stride[1]]);
        kadd[j - j0] = keep ? 0.0f : -INFINITY;
    }
}

/* rows [j0, j0 + nkp) of one head x (Tk, n) (row stride ld) -> transposed panels of 32 keys:
 * element (j, d) at [((j - j0) / 32 * np + d) * 32 + j % 32], np = rup(n, 32); zero past n and
 * past Tk. 16 x 16 blocks through registers. */
static void pack_transposed(const float *x, int64_t ld, int64_t n, int64_t Tk, int64_t j0, int64_t nkp, float *dst) {
    const int64_t np = rup(n, 32), ahead = prefetch_rows_ahead(n);
    for (int64_t jb = 0; jb < nkp; jb += 16) {
        const int64_t j = j0 + jb;
        for (int64_t t = j + ahead; t < j + ahead + 16 && t < Tk; t++) prefetch_row(x, ld, n, t);
        float *panel = dst + (jb / 32) * np * 32 + jb % 32;
        for (int64_t d0 = 0; d0 < np; d0 += 16) {
            __m512 r[16];
            #pragma GCC unroll 16
            for (int t = 0; t < 16; t++) r[t] = j + t < Tk ? load_n(x + (j + t) * ld + d0, n - d0) : _mm512_setzero_ps();
            transpose16(r);
            #pragma GCC unroll 16
            for (int u = 0; u < 16; u++) _mm512_storeu_ps(panel + (d0 + u) * 32, r[u]);
        }
    }
}

/* qs[r][0..Dp) = scale * q row i0 + r (zero past D and for r >= nr) */
static void load_q_rows(const dv_attn_geom *g, const layout *L, const float *q, int64_t b, int64_t h, int64_t i0,
                        int64_t nr, float *qs) {
    const __m512 sc = _mm512_set1_ps((float)g->scale);
    for (int64_t r = 0; r < BQ; r++) {
        const float *src = q + b * g->q_stride[0] + h * g->q_stride[1] + (i0 + r) * g->q_stride[2];
        for (int64_t d = 0; d < L->Dp; d += 16) {
            __m512 x = r < nr ? load_n(src + d, g->D - d) : _mm512_setzero_ps();
            _mm512_storeu_ps(qs + r * L->Dp + d, _mm512_mul_ps(x, sc));
        }
    }
}

/* ---- micro-kernels ---------------------------------------------------------------------------
 * The accumulators are 1-D arrays indexed by fully unrolled loops, so they live in registers. */

/* s[r][0..32) = sum_{d<n} a[r][d] * bt[d][0..32)  for 8 rows of a (row stride lda) against a
 * transposed panel bt (row stride 32) */
AI void mk_rows_x32(const float *a, int64_t lda, const float *bt, int64_t n, float *s, int64_t lds) {
    __m512 c0[8], c1[8];
    #pragma GCC unroll 8
    for (int r = 0; r < 8; r++) c0[r] = c1[r] = _mm512_setzero_ps();
    for (int64_t d = 0; d < n; d++) {
        const __m512 b0 = _mm512_loadu_ps(bt + d * 32), b1 = _mm512_loadu_ps(bt + d * 32 + 16);
        #pragma GCC unroll 8
        for (int r = 0; r < 8; r++) {
            const __m512 x = _mm512_set1_ps(a[r * lda + d]);
            c0[r] = _mm512_fmadd_ps(x, b0, c0[r]);
            c1[r] = _mm512_fmadd_ps(x, b1, c1[r]);
        }
    }
    #pragma GCC unroll 8
    for (int r = 0; r < 8; r++) {
        _mm512_storeu_ps(s + r * lds, c0[r]);
        _mm512_storeu_ps(s + r * lds + 16, c1[r]);
    }
}

/* acc[r][0..nacc) += alpha * sum_{j<nk} p[r][j] * x[j][0..nx)  for 8 rows, stored for r < nr
 * (nacc, nx <= 32 lanes; x rows (row stride ldx) are the caller's tensor, read only up to nx) */
AI void mk_px(const float *p, int64_t ldp, int64_t nk, const float *x, int64_t ldx, int64_t nx, float alpha,
              float *acc, int64_t ldacc, int64_t nacc, int64_t nr) {
    const int nv = nx > 16 ? 2 : 1;
    __m512 c0[8], c1[8];
    #pragma GCC unroll 8
    for (int r = 0; r < 8; r++) c0[r] = c1[r] = _mm512_setzero_ps();
    if (nv == 2) {
        for (int64_t j = 0; j < nk; j++) {
            const __m512 x0 = load_n(x + j * ldx, nx), x1 = load_n(x + j * ldx + 16, nx - 16);
            #pragma GCC unroll 8
            for (int r = 0; r < 8; r++) {
                const __m512 w = _mm512_set1_ps(p[r * ldp + j]);
                c0[r] = _mm512_fmadd_ps(w, x0, c0[r]);
                c1[r] = _mm512_fmadd_ps(w, x1, c1[r]);
            }
        }
    } else {
        for (int64_t j = 0; j < nk; j++) {
            const __m512 x0 = load_n(x + j * ldx, nx);
            #pragma GCC unroll 8
            for (int r = 0; r < 8; r++) c0[r] = _mm512_fmadd_ps(_mm512_set1_ps(p[r * ldp + j]), x0, c0[r]);
        }
    }
    const __m512 va = _mm512_set1_ps(alpha);
    const __mmask16 m0 = lanes(nacc), m1 = lanes(nacc - 16);
    #pragma GCC unroll 8
    for (int r = 0; r < 8; r++) {
        if (r >= nr) break;
        float *y = acc + r * ldacc;
        _mm512_mask_storeu_ps(y, m0, _mm512_fmadd_ps(va, c0[r], load_n(y, nacc)));
        if (nv == 2) _mm512_mask_storeu_ps(y + 16, m1, _mm512_fmadd_ps(va, c1[r], load_n(y + 16, nacc - 16)));
    }
}

/* acc[jj][0..16 nv) += sum_{r<nrows} p[r][jj] * x[r][0..16 nv)  for 8 keys jj (dV += P^T dO,
 * dK += dS^T Qs). acc and x are padded work buffers: full-width loads and stores. */
AI void mk_ptx(const float *p, int64_t ldp, int64_t nrows, const float *x, int64_t ldx, int nv, float *acc,
               int64_t ldacc) {
    __m512 c0[8], c1[8];
    #pragma GCC unroll 8
    for (int jj = 0; jj < 8; jj++) {
        c0[jj] = _mm512_loadu_ps(acc + jj * ldacc);
        c1[jj] = nv == 2 ? _mm512_loadu_ps(acc + jj * ldacc + 16) : _mm512_setzero_ps();
    }
    if (nv == 2) {
        for (int64_t r = 0; r < nrows; r++) {
            const __m512 x0 = _mm512_loadu_ps(x + r * ldx), x1 = _mm512_loadu_ps(x + r * ldx + 16);
            #pragma GCC unroll 8
            for (int jj = 0; jj < 8; jj++) {
                const __m512 w = _mm512_set1_ps(p[r * ldp + jj]);
                c0[jj] = _mm512_fmadd_ps(w, x0, c0[jj]);
                c1[jj] = _mm512_fmadd_ps(w, x1, c1[jj]);
            }
        }
    } else {
        for (int64_t r = 0; r < nrows; r++) {
            const __m512 x0 = _mm512_loadu_ps(x + r * ldx);
            #pragma GCC unroll 8
            for (int jj = 0; jj < 8; jj++) c0[jj] = _mm512_fmadd_ps(_mm512_set1_ps(p[r * ldp + jj]), x0, c0[jj]);
        }
    }
    #pragma GCC unroll 8
    for (int jj = 0; jj < 8; jj++) {
        _mm512_storeu_ps(acc + jj * ldacc, c0[jj]);
        if (nv == 2) _mm512_storeu_ps(acc + jj * ldacc + 16, c1[jj]);
    }
}

/* S (nh halves of 8 rows x 32 npair keys) = a . panels; panels: the transposed panels of one
 * (b, kv head) from the tile's first key, n = the head dim, np = n rounded up to 32 */
static void tile_scores(const float *a, int64_t lda, const float *panels, int64_t n, int64_t np, int npair, int nh,
                        float *s) {
    for (int pr = 0; pr < npair; pr++)
        for (int hf = 0; hf < nh; hf++)
            mk_rows_x32(a + hf * 8 * lda, lda, panels + pr * np * 32, n, s + hf * 8 * BK + 32 * pr, BK);
}

/* raw q.k tile (keys from j0) -> logits: + key padding (kadd[0] is key j0's), + bias, -inf
 * above the causal diagonal; rows r >= nr (past Tq) become all -inf. Rows [0, 8 nh), vectors
 * [0, nvec). */
static void tile_logits(const dv_attn_geom *g, const float *bias, const float *kadd, int64_t b, int64_t h, int64_t i0,
                        int64_t nr, int nh, int64_t j0, int nvec, float *s) {
    const __m512 ninf = _mm512_set1_ps(-INFINITY);
    for (int64_t r = 0; r < 8 * nh; r++) {
        float *sr = s + r * BK;
        if (r >= nr) {
            for (int v = 0; v < nvec; v++) _mm512_storeu_ps(sr + 16 * v, ninf);
            continue;
        }
        const int64_t i = i0 + r;
        const float *br = bias ? bias + b * g->bias_stride[0] + h * g->bias_stride[1] + i * g->bias_stride[2] : NULL;
        for (int v = 0; v < nvec; v++) {
            const int64_t j = j0 + 16 * v;
            __m512 x = _mm512_add_ps(_mm512_loadu_ps(sr + 16 * v), _mm512_loadu_ps(kadd + 16 * v));
            if (br) x = _mm512_add_ps(x, g->bias_stride[3] ? load_n(br + j, g->Tk - j)
                                                           : _mm512_set1_ps(br[0]));
            if (g->causal) x = _mm512_mask_blend_ps(lanes(i + g->causal_offset - j + 1), ninf, x);
            _mm512_storeu_ps(sr + 16 * v, x);
        }
    }
}

/* dropout: Z for the 16 weights j0 .. j0+15 of a row with key `row` (kernels/attention.h):
 * 1 / (1 - dropout) where kept, 0 where dropped — dv_attn_drop_hash, 16 lanes at once */
AI __m512 drop_z(uint32_t row, int64_t j0, __m512i thr, __m512 zkeep) {
    const __m512i iota = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    const __m512i j = _mm512_add_epi32(_mm512_set1_epi32((int)j0), iota);
    __m512i x = _mm512_xor_si512(_mm512_set1_epi32((int)row), _mm512_mullo_epi32(j, _mm512_set1_epi32((int)0x9E3779B9u)));
    x = _mm512_mullo_epi32(_mm512_xor_si512(x, _mm512_srli_epi32(x, 16)), _mm512_set1_epi32((int)0x85EBCA6Bu));
    x = _mm512_mullo_epi32(_mm512_xor_si512(x, _mm512_srli_epi32(x, 13)), _mm512_set1_epi32((int)0xC2B2AE35u));
    x = _mm512_xor_si512(x, _mm512_srli_epi32(x, 16));
    return _mm512_maskz_mov_ps(_mm512_cmpge_epu32_mask(x, thr), zkeep);
}

/* the dropout row keys of rows i0 .. i0+n-1 of (b, h) */
static void drop_rows(const dv_attn_geom *g, int64_t b, int64_t h, int64_t i0, int n, uint32_t *rows) {
    for (int r = 0; r < n; r++) rows[r] = dv_attn_drop_row(g->dropout_seed, b, h, i0 + r);
}

/* ---- forward -------------------------------------------------------------------------------- */
/* one block of BQ query rows of (b, h) against its kv head: kadd and kt (the keys in transposed
 * panels) packed, vh its value rows as they are */
static void fwd_block(const dv_attn_geom *g, const layout *L, const float *q, const float *bias, const float *kadd,
                      const float *kt, const float *vh, float *o, float *lse, float *slab, int64_t b,
                      int64_t h, int64_t i0) {
    const int64_t Dv = g->Dv, Dp = L->Dp, Dvp = L->Dvp;
    const int64_t nr = imin(BQ, g->Tq - i0);
    const int nh = nr > 8 ? 2 : 1; /* 8-row halves in use */
    float *qs = slab + L->t_qs, *s = slab + L->t_s, *acc = slab + L->t_acc;
    __m512 m = _mm512_set1_ps(-INFINITY), l = _mm512_setzero_ps(); /* lane r: row r (BQ == 16) */
    load_q_rows(g, L, q, b, h, i0, nr, qs);
    memset(acc, 0, sizeof(float) * BQ * Dvp);
    const bool drop = g->dropout > 0;
    uint32_t drow[BQ];
    const __m512i dthr = _mm512_set1_epi32((int)dv_attn_drop_threshold(g->dropout));
    const __m512 dz = _mm512_set1_ps(drop ? (float)(1.0 / (1.0 - g->dropout)) : 1.0f);
    if (drop) drop_rows(g, b, h, i0, BQ, drow);
    /* keys past the causal limit of the block's last row are invisible to all its rows */
    int64_t jend = g->Tk;
    if (g->causal) jend = imin(jend, i0 + nr + g->causal_offset);
    for (int64_t j0 = 0; j0 < jend; j0 += BK) {
        const int64_t nk = imin(BK, jend - j0);
        const int npair = (int)((nk + 31) / 32), nvec = 2 * npair;
        tile_scores(qs, Dp, kt + (j0 / 32) * Dp * 32, g->D, Dp, npair, nh, s);
        tile_logits(g, bias, kadd + j0, b, h, i0, nr, nh, j0, nvec, s);
        /* online softmax, the BQ = 16 rows at once: lane r of m, l is row r's running max and sum.
         * Row maxima and sums are reduced 16 rows at a time through a register transpose. */
        __m512 red[16];
        #pragma GCC unroll 16
        for (int r = 0; r < 16; r++) {
            __m512 mx = _mm512_set1_ps(-INFINITY);
            if (r < 8 * nh)
                for (int x = 0; x < nvec; x++) mx = _mm512_max_ps(mx, _mm512_loadu_ps(s + r * BK + 16 * x));
            red[r] = mx;
        }
        transpose16(red);
        __m512 mnew = m;
        #pragma GCC unroll 16
        for (int r = 0; r < 16; r++) mnew = _mm512_max_ps(mnew, red[r]);
        /* a row that has seen no key yet keeps m = -inf: subtract 0 instead, its weights are
         * exp(-inf) = 0 all the same */
        const __mmask16 seen = _mm512_cmp_ps_mask(mnew, _mm512_set1_ps(-INFINITY), _CMP_NEQ_OQ);
        const __m512 msafe = _mm512_maskz_mov_ps(seen, mnew);
        /* the running max grew: rescale what was summed so far by exp(m_old - m_new) */
        const __mmask16 grew = _mm512_mask_cmp_ps_mask(seen, mnew, m, _CMP_GT_OQ);
        if (grew) {
            const __m512 c = vm_exp(_mm512_sub_ps(m, msafe)); /* 0 where m was -inf */
            l = _mm512_mul_ps(l, c);
            for (int r = 0; r < 16; r++)
                if ((grew >> r) & 1) {
                    const __m512 vc = _mm512_permutexvar_ps(_mm512_set1_epi32(r), c);
                    for (int64_t d = 0; d < Dvp; d += 16)
                        _mm512_storeu_ps(acc + r * Dvp + d, _mm512_mul_ps(vc, _mm512_loadu_ps(acc + r * Dvp + d)));
                }
        }
        m = mnew;
        #pragma GCC unroll 16
        for (int r = 0; r < 16; r++) {
            __m512 sum = _mm512_setzero_ps();
            if (r < 8 * nh) {
                const __m512 vm = _mm512_permutexvar_ps(_mm512_set1_epi32(r), msafe);
                for (int x = 0; x < nvec; x++) {
                    float *y = s + r * BK + 16 * x;
                    const __m512 p = vm_exp(_mm512_sub_ps(_mm512_loadu_ps(y), vm));
                    /* P V takes the dropped weights, the row sum those before dropout */
                    _mm512_storeu_ps(y, drop ? _mm512_mul_ps(p, drop_z(drow[r], j0 + 16 * x, dthr, dz)) : p);
                    sum = _mm512_add_ps(sum, p);
                }
            }
            red[r] = sum;
        }
        transpose16(red);
        #pragma GCC unroll 16
        for (int r = 0; r < 16; r++) l = _mm512_add_ps(l, red[r]);
        /* acc += P V, 32 head dims at a time */
        for (int64_t d = 0; d < Dv; d += 32)
            for (int hf = 0; hf < nh; hf++)
                mk_px(s + hf * 8 * BK, BK, nk, vh + j0 * g->v_stride[2] + d, g->v_stride[2], Dv - d, 1.0f,
                      acc + hf * 8 * Dvp + d, Dvp, 32, 8);
    }
    float mr[16], lr[16];
    _mm512_storeu_ps(mr, m);
    _mm512_storeu_ps(lr, l);
    for (int64_t r = 0; r < nr; r++) {
        const int64_t row = (b * g->Hq + h) * g->Tq + i0 + r;
        float *orow = o + row * Dv;
        const __m512 inv = _mm512_set1_ps(lr[r] > 0 ? 1.0f / lr[r] : 0.0f); /* no visible key: zeros */
        for (int64_t d = 0; d < Dv; d += 16)
            _mm512_mask_storeu_ps(orow + d, lanes(Dv - d), _mm512_mul_ps(inv, _mm512_loadu_ps(acc + r * Dvp + d)));
        lse[row] = lr[r] > 0 ? mr[r] + logf(lr[r]) : -INFINITY;
    }
}

/* tasks (b, kv head, query chunk): a task packs its head's keys into its slab (they stay in
 * cache for all its blocks), then runs query blocks qc, qc + nchunk, ... of every head of the
 * group */
void dv_attention_fwd_f32_avx512(const dv_attn_geom *g, const float *q, const float *k, const float *v,
                                 const float *bias, float *o, float *lse, void *work) {
    const int64_t rows = g->B * g->Hq * g->Tq;
    if (rows == 0) return;
    const layout L = make_layout(g, false);
    float *w = work;
    const int64_t nqb = (g->Tq + BQ - 1) / BQ, nchunk = L.nchunk, group = g->Hq / g->Hkv;
    const double flops = 2.0 * (double)rows * (double)g->Tk * (double)(g->D + g->Dv);
    #pragma omp parallel for schedule(dynamic, 1) num_threads(g->nthreads) if (flops > 1e6)
    for (int64_t t = 0; t < g->B * g->Hkv * nchunk; t++) {
        const int64_t qc = t % nchunk, hk = (t / nchunk) % g->Hkv, b = t / (nchunk * g->Hkv);
        float *slab = w + L.slab + (int64_t)omp_get_thread_num() * L.slab_size;
        /* the keys the chunk's last block can see */
        const int64_t last = qc + (nqb - 1 - qc) / nchunk * nchunk;
        int64_t jneed = g->Tk;
        if (g->causal) jneed = imin(jneed, imin(g->Tq, (last + 1) * BQ) + g->causal_offset);
        const int64_t nkp = jneed > 0 ? rup(jneed, 32) : 0;
        const float *kh = k + b * g->k_stride[0] + hk * g->k_stride[1];
        const float *vh = v + b * g->v_stride[0] + hk * g->v_stride[1];
        pack_kadd(g, b, 0, nkp, slab + L.t_kadd);
        pack_transposed(kh, g->k_stride[2], g->D, g->Tk, 0, nkp, slab + L.t_kt);
        for (int64_t h = hk * group; h < (hk + 1) * group; h++)
            for (int64_t qb = qc; qb < nqb; qb += nchunk)
                fwd_block(g, &L, q, bias, slab + L.t_kadd, slab + L.t_kt, vh, o, lse, slab, b, h,
                          qb * BQ);
    }
}

/* ---- backward -------------------------------------------------------------------------------- */
typedef struct {
    const dv_attn_geom *g;
    const layout *L;
    const float *bias, *lse;
    const float *qs, *dout, *dr; /* the padded Qs / dO rows and Dr of the group's first head */
    int64_t h0;                  /* that head */
    const float *kh;             /* the task's key rows (b, kv head) */
    float *dq, *dbias;           /* dq: this chunk's copy (or NULL) */
    bool want_dk, want_dv;
} bwd_ctx;

/* padded row i of head (b, h): qs = scale q (zero past D, all zero for i >= Tq), the dO row
 * copied the same way, dr = rowsum(dO o O) */
static void bwd_prep_row(const dv_attn_geom *g, const layout *L, const float *q, const float *o, const float *dout,
                         int64_t b, int64_t h, int64_t i, float *qs, float *dot, float *dr) {
    const int64_t D = g->D, Dv = g->Dv, bh = b * g->Hq + h;
    const bool in = i < g->Tq;
    const __m512 sc = _mm512_set1_ps((float)g->scale);
    const float *qrow = q + b * g->q_stride[0] + h * g->q_stride[1] + i * g->q_stride[2];
    const float *drow = dout + (bh * g->Tq + i) * Dv, *orow = o + (bh * g->Tq + i) * Dv;
    for (int64_t d = 0; d < L->Dp; d += 16) {
        __m512 x = in ? load_n(qrow + d, D - d) : _mm512_setzero_ps();
        _mm512_storeu_ps(qs + d, _mm512_mul_ps(x, sc));
    }
    __m512 acc = _mm512_setzero_ps();
    for (int64_t d = 0; d < L->Dvp; d += 16) {
        const int64_t nv = in ? Dv - d : 0;
        const __m512 x = load_n(drow + d, nv);
        _mm512_storeu_ps(dot + d, x);
        acc = _mm512_fmadd_ps(x, load_n(orow + d, nv), acc);
    }
    *dr = _mm512_reduce_add_ps(acc);
}

/* one (query block, key tile) of the backward, the tile's keys packed in the slab (kadd, kt, vt
 * transposed panels; K rows are read as they are): adds into dq rows, dbias and the tile's dK, dV */
static void bwd_tile(const bwd_ctx *c, float *slab, int64_t b, int64_t h, int64_t i0, int64_t j0, int64_t nk) {
    const dv_attn_geom *g = c->g;
    const layout *L = c->L;
    const int64_t D = g->D, Dv = g->Dv, Dp = L->Dp, Dvp = L->Dvp;
    const int64_t nr = imin(BQB, g->Tq - i0);
    const int nh = (int)((nr + 7) / 8); /* 8-row quarters in use */
    /* keys past the causal limit of the block's last row get no work (they are 0 in P and dS) */
    if (g->causal) nk = imin(nk, i0 + nr + g->causal_offset - j0);
    const int npair = (int)((nk + 31) / 32), nvec = 2 * npair;
    const int64_t prow = (h - c->h0) * L->Tqp + i0;    /* row of the padded Qs, dO, Dr copies */
    const int64_t row0 = (b * g->Hq + h) * g->Tq + i0; /* row of lse, dq */
    const float *qs = c->qs + prow * Dp, *dot = c->dout + prow * Dvp;
    float *s = slab + L->t_s, *p = slab + L->t_p;
    float *dkacc = slab + L->t_dk, *dvacc = slab + L->t_dv;

    /* P = exp(S - lse) */
    tile_scores(qs, Dp, slab + L->t_kt, D, Dp, npair, nh, s);
    tile_logits(g, c->bias, slab + L->t_kadd, b, h, i0, nr, nh, j0, nvec, s);
    for (int64_t r = 0; r < 8 * nh; r++) {
        const float L_r = r < nr ? c->lse[row0 + r] : -INFINITY;
        for (int x = 0; x < nvec; x++) {
            __m512 e = L_r == -INFINITY ? _mm512_setzero_ps() /* row saw no key: no gradient */
                                        : vm_exp(_mm512_sub_ps(_mm512_loadu_ps(s + r * BK + 16 * x), _mm512_set1_ps(L_r)));
            _mm512_storeu_ps(p + r * BK + 16 * x, e);
        }
    }
    /* dP = dO Vt into s, then dS = P (dP - Dr) in place; with dropout dS = P (Z dP - Dr), and P
     * becomes Z P for dV */
    tile_scores(dot, Dvp, slab + L->t_vt, Dv, Dvp, npair, nh, s);
    if (g->dropout > 0) {
        uint32_t drow[BQB];
        const __m512i dthr = _mm512_set1_epi32((int)dv_attn_drop_threshold(g->dropout));
        const __m512 dz = _mm512_set1_ps((float)(1.0 / (1.0 - g->dropout)));
        drop_rows(g, b, h, i0, 8 * nh, drow);
        for (int64_t r = 0; r < 8 * nh; r++) {
            const __m512 dr = _mm512_set1_ps(c->dr[prow + r]);
            for (int x = 0; x < nvec; x++) {
                float *y = s + r * BK + 16 * x, *pp = p + r * BK + 16 * x;
                const __m512 z = drop_z(drow[r], j0 + 16 * x, dthr, dz), pv = _mm512_loadu_ps(pp);
                _mm512_storeu_ps(y, _mm512_mul_ps(pv, _mm512_fmsub_ps(z, _mm512_loadu_ps(y), dr)));
                _mm512_storeu_ps(pp, _mm512_mul_ps(pv, z));
            }
        }
    } else {
        for (int64_t r = 0; r < 8 * nh; r++) {
            const __m512 dr = _mm512_set1_ps(c->dr[prow + r]);
            for (int x = 0; x < nvec; x++) {
                float *y = s + r * BK + 16 * x;
                _mm512_storeu_ps(y, _mm512_mul_ps(_mm512_loadu_ps(p + r * BK + 16 * x), _mm512_sub_ps(_mm512_loadu_ps(y), dr)));
            }
        }
    }
    const float *ds = s;
    if (c->dbias)
        for (int64_t r = 0; r < nr; r++) {
            float *y = c->dbias + ((b * g->Hq + h) * g->dbias_rows + (g->dbias_rows > 1 ? i0 + r : 0)) * g->Tk + j0;
            for (int64_t x = 0; x < nk; x += 16) {
                const __mmask16 mk = lanes(nk - x);
                _mm512_mask_storeu_ps(y + x, mk, _mm512_add_ps(load_n(y + x, nk - x), _mm512_loadu_ps(ds + r * BK + x)));
            }
        }
    /* dV += P^T dO, dK += dS^T Qs, 8 keys at a time (p, ds are 0 past nk and past nr) */
    for (int64_t jb = 0; jb < nk; jb += 8) {
        if (c->want_dv)
            for (int64_t d = 0; d < Dv; d += 32)
                mk_ptx(p + jb, BK, 8 * nh, dot + d, Dvp, Dv - d > 16 ? 2 : 1, dvacc + jb * Dvp + d, Dvp);
        if (c->want_dk)
            for (int64_t d = 0; d < D; d += 32)
                mk_ptx(ds + jb, BK, 8 * nh, qs + d, Dp, D - d > 16 ? 2 : 1, dkacc + jb * Dp + d, Dp);
    }
    /* dQ += scale dS K */
    if (c->dq)
        for (int64_t d = 0; d < D; d += 32)
            for (int hf = 0; hf < nh; hf++)
                mk_px(ds + hf * 8 * BK, BK, nk, c->kh + j0 * g->k_stride[2] + d, g->k_stride[2], D - d, (float)g->scale,
                      c->dq + (row0 + 8 * hf) * D + d, D, D - d, nr - 8 * hf);
}

void dv_attention_bwd_f32_avx512(const dv_attn_geom *g, const float *q, const float *k, const float *v,
                                 const float *bias, const float *o, const float *lse, const float *dout, float *dq,
                                 float *dk, float *dv, float *dbias, void *work) {
    const int64_t B = g->B, Hq = g->Hq, Hkv = g->Hkv, Tq = g->Tq, Tk = g->Tk, D = g->D, Dv = g->Dv;
    const int64_t rows = B * Hq * Tq;
    const layout L = make_layout(g, true);
    float *w = work;
    const int64_t nkb = (Tk + BK - 1) / BK, nchunk = L.nchunk, group = Hkv ? Hq / Hkv : 1;
    const int64_t ndq = rows * D;
    const double flops = 5.0 * (double)rows * (double)Tk * (double)(D + Dv);
    bwd_ctx c = {.g = g, .L = &L, .bias = bias, .lse = lse, .dbias = dbias, .want_dk = dk != NULL, .want_dv = dv != NULL};
    #pragma omp parallel num_threads(g->nthreads) if (flops > 1e6)
    {
        float *slab = w + L.slab + (int64_t)omp_get_thread_num() * L.slab_size;
        /* every gradient output is overwritten: zero what is accumulated into (a local task zeroes
         * its own dq rows, so they are in cache when the sweeps add into them) */
        if (dq && !L.local) {
            #pragma omp for schedule(static)
            for (int64_t x = 0; x < ndq * nchunk; x += 4096) { /* dq, then the chunks' copies */
                const int64_t n = imin(4096, ndq * nchunk - x);
                if (x < ndq) {
                    const int64_t n0 = imin(n, ndq - x);
                    memset(dq + x, 0, sizeof(float) * (size_t)n0);
                    if (n > n0) memset(w + L.dqp, 0, sizeof(float) * (size_t)(n - n0));
                } else {
                    memset(w + L.dqp + (x - ndq), 0, sizeof(float) * (size_t)n);
                }
            }
        }
        if (dbias) {
            #pragma omp single
            memset(dbias, 0, sizeof(float) * (size_t)(B * Hq * g->dbias_rows * Tk));
        }
        if (!L.local && rows > 0 && Tk > 0) { /* the shared padded Qs (times scale), dO copies and Dr */
            #pragma omp for schedule(static)
            for (int64_t pr = 0; pr < B * Hq * L.Tqp; pr++) {
                const int64_t i = pr % L.Tqp, bh = pr / L.Tqp;
                bwd_prep_row(g, &L, q, o, dout, bh / Hq, bh % Hq, i, w + L.qs + pr * L.Dp, w + L.dout + pr * L.Dvp,
                             w + L.dr + pr);
            }
        }
        /* tasks: (b, kv head, key chunk); chunk ch owns the key tiles ch, ch + nchunk, ... and packs
         * each tile before sweeping the query rows of the group's heads against it */
        #pragma omp for schedule(dynamic, 1)
        for (int64_t t = 0; t < B * Hkv * nchunk; t++) {
            const int64_t ch = t % nchunk, hk = (t / nchunk) % Hkv, b = t / (nchunk * Hkv);
            bwd_ctx cc = c;
            cc.h0 = hk * group;
            if (dq) cc.dq = ch == 0 ? dq : w + L.dqp + (ch - 1) * ndq;
            if (L.local) {
                /* this task alone writes the group's dq rows and reads its Qs / dO rows: zero the
                 * one, copy the other into the slab */
                if (dq) memset(dq + (b * Hq + cc.h0) * Tq * D, 0, sizeof(float) * (size_t)(group * Tq * D));
                cc.qs = slab + L.t_qs, cc.dout = slab + L.t_do, cc.dr = slab + L.t_dr;
                if (Tk > 0)
                    for (int64_t hh = 0; hh < group; hh++)
                        for (int64_t i = 0; i < L.Tqp; i++) {
                            const int64_t pr = hh * L.Tqp + i;
                            bwd_prep_row(g, &L, q, o, dout, b, cc.h0 + hh, i, slab + L.t_qs + pr * L.Dp,
                                         slab + L.t_do + pr * L.Dvp, slab + L.t_dr + pr);
                        }
            } else {
                const int64_t pr0 = (b * Hq + cc.h0) * L.Tqp;
                cc.qs = w + L.qs + pr0 * L.Dp, cc.dout = w + L.dout + pr0 * L.Dvp, cc.dr = w + L.dr + pr0;
            }
            const float *kh = k + b * g->k_stride[0] + hk * g->k_stride[1];
            const float *vh = v + b * g->v_stride[0] + hk * g->v_stride[1];
            cc.kh = kh;
            float *dkacc = slab + L.t_dk, *dvacc = slab + L.t_dv;
            for (int64_t kb = ch; kb < nkb; kb += nchunk) {
                const int64_t j0 = kb * BK, nk = imin(BK, Tk - j0);
                memset(dkacc, 0, sizeof(float) * BK * L.Dp);
                memset(dvacc, 0, sizeof(float) * BK * L.Dvp);
                /* rows i < j0 - causal_offset see none of these keys */
                int64_t istart = g->causal ? j0 - g->causal_offset : 0;
                if (istart < 0) istart = 0;
                if (rows > 0 && istart < Tq) {
                    const int64_t nkp = rup(nk, 32);
                    pack_kadd(g, b, j0, nkp, slab + L.t_kadd);
                    pack_transposed(kh, g->k_stride[2], D, Tk, j0, nkp, slab + L.t_kt);
                    pack_transposed(vh, g->v_stride[2], Dv, Tk, j0, nkp, slab + L.t_vt);
                    for (int64_t h = hk * group; h < (hk + 1) * group; h++)
                        for (int64_t i0 = istart; i0 < Tq; i0 += BQB) bwd_tile(&cc, slab, b, h, i0, j0, nk);
                }
                for (int64_t jj = 0; jj < nk; jj++) {
                    const int64_t row = (b * Hkv + hk) * Tk + j0 + jj;
                    if (dk)
                        for (int64_t d = 0; d < D; d += 16)
                            _mm512_mask_storeu_ps(dk + row * D + d, lanes(D - d), _mm512_loadu_ps(dkacc + jj * L.Dp + d));
                    if (dv)
                        for (int64_t d = 0; d < Dv; d += 16)
                            _mm512_mask_storeu_ps(dv + row * Dv + d, lanes(Dv - d), _mm512_loadu_ps(dvacc + jj * L.Dvp + d));
                }
            }
        }
        if (dq && nchunk > 1) { /* sum the chunks' dQ copies, in chunk order */
            #pragma omp for schedule(static)
            for (int64_t x = 0; x < ndq; x += 16) {
                const __mmask16 mk = lanes(ndq - x);
                __m512 acc = load_n(dq + x, ndq - x);
                for (int64_t ch = 1; ch < nchunk; ch++) acc = _mm512_add_ps(acc, load_n(w + L.dqp + (ch - 1) * ndq + x, ndq - x));
                _mm512_mask_storeu_ps(dq + x, mk, acc);
            }
        }
    }
}
