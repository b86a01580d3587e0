/* tests/test_cuda_host_ops.c — the index arithmetic of the CUDA tensor-op kernels
 * (kernels/cuda/op_math.h) compiled for the host and checked inside `make test`, without a
 * GPU: each test runs, on the host, the function a GPU kernel runs per element (gather
 * offsets; the pooling and resize kernels' bodies, dv_cu_*_elem, including the window / tap
 * inversions their backward kernels gather through) and compares with the portable CPU
 * kernels. What it cannot check — the kernels'
 * grids and launch code — is tests/cuda/test_cuda_index_loss_pool.c and test_cuda_conv.c
 * (build/test-cuda). The per-line loops of the reductions beyond sum (reduce_ext.cu) and the
 * per-element SGD / EMA updates (optim.cu), kernels/cuda/reduce_math.h, are replayed against
 * the CPU ops the same way; their GPU tests are tests/cuda/test_cuda_reduce_optim.c. */
#include "kernels/conv.h"
#include "kernels/cuda/op_math.h"
#include "kernels/cuda/reduce_math.h"
#include "kernels/reduce_ext.h"
#include "kernels/pool.h"
#include "kernels/resize.h"
#include "optim/optim.h"
#include "tensor/ops.h"
#include "tests/test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void fill(float *p, int64_t n, uint64_t seed) {
    uint64_t z = seed * 0x9E3779B97F4A7C15ull + 1;
    for (int64_t i = 0; i < n; i++) {
        z ^= z << 13, z ^= z >> 7, z ^= z << 17;
        p[i] = (float)(z >> 40) / 16777216.0f * 2.0f - 1.0f;
    }
}

static int count_diff(const float *a, const float *b, int64_t n, float tol) {
    int bad = 0;
    for (int64_t i = 0; i < n; i++) bad += !(fabsf(a[i] - b[i]) <= tol * fmaxf(1.0f, fabsf(b[i])));
    return bad;
}

/* gather through a transposed (non-contiguous) x, every dim, against dv_gather */
TEST(cuda_host_gather_offset_matches_gather) {
    dv_rng r = dv_rng_new(1);
    dv_tensor *x0 = dv_randn(&r, DV_F32, DV_SHAPE(5, 6, 7)), *x = dv_transpose(x0, 0, 2); /* (7, 6, 5) */
    for (int dim = 0; dim < 3; dim++) {
        int64_t ish[3] = {4, 3, 5};
        ish[dim] = 9;
        dv_tensor *idx = dv_randint(&r, DV_I64, 0, x->shape[dim], ish, 3);
        dv_tensor *y = dv_gather(x, dim, idx);
        const int64_t *id = dv_data(idx);
        const float *xp = dv_data(x), *yp = dv_data(y);
        int bad = 0;
        for (int64_t i = 0; i < dv_numel(idx); i++)
            bad += xp[dv_cu_gather_offset(3, ish, dim, x->stride, i, id[i])] != yp[i];
        CHECK_MSG(bad == 0, "gather dim %d: %d elements differ", dim, bad);
        dv_release(idx), dv_release(y);
    }
    dv_release(x), dv_release(x0);
}

/* the pooling forward kernels' loops (max, avg through dv_cu_pool_window, adaptive through
 * dv_cu_adaptive_start / end), replayed per output element, against the portable forward:
 * values and argmax bit for bit, a NaN included (it must win its windows) */
TEST(cuda_host_pool_forward_windows_match_portable) {
    const int geoms[][6] = {{3, 3, 2, 2, 1, 1}, {2, 2, 2, 2, 0, 0}, {3, 2, 1, 3, 1, 0}, {5, 4, 3, 2, 2, 2}};
    const int64_t P = 3, H = 11, W = 9;
    float *x = malloc(P * H * W * 4);
    fill(x, P * H * W, 11);
    x[H * W + 4 * W + 5] = NAN;
    for (int gi = 0; gi < 4; gi++) {
        const int *k = geoms[gi];
        dv_pool2d_geom g = {.H = H, .W = W, .kh = k[0], .kw = k[1], .sh = k[2], .sw = k[3], .ph = k[4], .pw = k[5]};
        g.OH = (H + 2 * g.ph - g.kh) / g.sh + 1, g.OW = (W + 2 * g.pw - g.kw) / g.sw + 1;
        int64_t no = P * g.OH * g.OW;
        float *ym = malloc(no * 4), *ya = malloc(no * 4);
        int32_t *idx = malloc(no * 4);
        dv_max_pool2d_f32_portable(&g, P, x, ym, idx);
        dv_avg_pool2d_f32_portable(&g, P, x, ya);
        int bad = 0;
        for (int64_t e = 0; e < no; e++) {
            int64_t ow = e % g.OW, oh = (e / g.OW) % g.OH, p = e / (g.OW * g.OH), best_i;
            const float *xp = x + p * H * W;
            float best = dv_cu_max_pool_elem(&g, xp, oh, ow, &best_i), avg = dv_cu_avg_pool_elem(&g, xp, oh, ow);
            bad += memcmp(&best, &ym[e], 4) != 0 || idx[e] != (int32_t)best_i || memcmp(&avg, &ya[e], 4) != 0;
        }
        CHECK_MSG(bad == 0, "pool forward, geometry %d: %d outputs differ", gi, bad);
        free(ym), free(ya), free(idx);
    }
    const int64_t outs[][2] = {{1, 1}, {4, 3}, {7, 7}, {22, 13}};
    for (int oi = 0; oi < 4; oi++) {
        int64_t OH = outs[oi][0], OW = outs[oi][1], no = P * OH * OW;
        float *y = malloc(no * 4);
        dv_adaptive_avg_pool2d_f32_portable(P, H, W, OH, OW, x, y);
        int bad = 0;
        for (int64_t e = 0; e < no; e++) {
            int64_t ow = e % OW, oh = (e / OW) % OH, p = e / (OW * OH);
            float s = dv_cu_adaptive_pool_elem(x + p * H * W, oh, ow, H, W, OH, OW);
            bad += memcmp(&s, &y[e], 4) != 0;
        }
        CHECK_MSG(bad == 0, "adaptive pool forward to (%lld, %lld): %d outputs differ", (long long)OH, (long long)OW, bad);
        free(y);
    }
    free(x);
}

/* the pooling backward kernels' gather (outputs of an input element through
 * dv_cu_pool_outputs_of / dv_cu_adaptive_outputs_of, ascending) against the CPU's scatter */
TEST(cuda_host_pool_backward_gather_matches_portable) {
    const int geoms[][6] = {{3, 3, 2, 2, 1, 1}, {2, 2, 2, 2, 0, 0}, {3, 2, 1, 3, 1, 0}, {5, 4, 3, 2, 2, 2}};
    const int64_t P = 3, H = 11, W = 9;
    float *x = malloc(P * H * W * 4), *gx = malloc(P * H * W * 4), *mine = malloc(P * H * W * 4);
    fill(x, P * H * W, 7);
    for (int gi = 0; gi < 4; gi++) {
        const int *k = geoms[gi];
        dv_pool2d_geom g = {.H = H, .W = W, .kh = k[0], .kw = k[1], .sh = k[2], .sw = k[3], .ph = k[4], .pw = k[5]};
        g.OH = (H + 2 * g.ph - g.kh) / g.sh + 1, g.OW = (W + 2 * g.pw - g.kw) / g.sw + 1;
        int64_t out = g.OH * g.OW;
        float *y = malloc(P * out * 4), *gy = malloc(P * out * 4);
        int32_t *idx = malloc(P * out * 4);
        fill(gy, P * out, 8 + gi);
        dv_max_pool2d_f32_portable(&g, P, x, y, idx);
        for (int avg = 0; avg < 2; avg++) {
            if (avg) dv_avg_pool2d_backward_f32_portable(&g, P, gy, gx);
            else dv_max_pool2d_backward_f32_portable(&g, P, gy, idx, gx);
            for (int64_t e = 0; e < P * H * W; e++) {
                int64_t iw = e % W, ih = (e / W) % H, p = e / (W * H);
                mine[e] = avg ? dv_cu_avg_pool_grad_elem(&g, gy, p, ih, iw)
                              : dv_cu_max_pool_grad_elem(&g, gy, idx, p, ih, iw);
            }
            int bad = count_diff(mine, gx, P * H * W, 0.0f);
            CHECK_MSG(bad == 0, "%s pool backward, geometry %d: %d elements differ", avg ? "avg" : "max", gi, bad);
        }
        free(y), free(gy), free(idx);
    }
    /* adaptive: shrinking, growing and odd ratios */
    const int64_t outs[][2] = {{1, 1}, {4, 3}, {7, 7}, {22, 13}};
    for (int oi = 0; oi < 4; oi++) {
        int64_t OH = outs[oi][0], OW = outs[oi][1];
        float *gy = malloc(P * OH * OW * 4);
        fill(gy, P * OH * OW, 20 + oi);
        dv_adaptive_avg_pool2d_backward_f32_portable(P, H, W, OH, OW, gy, gx);
        for (int64_t e = 0; e < P * H * W; e++) {
            int64_t iw = e % W, ih = (e / W) % H, p = e / (W * H);
            mine[e] = dv_cu_adaptive_pool_grad_elem(gy, p, ih, iw, H, W, OH, OW);
        }
        int bad = count_diff(mine, gx, P * H * W, 0.0f);
        CHECK_MSG(bad == 0, "adaptive pool backward to (%lld, %lld): %d elements differ", (long long)OH, (long long)OW, bad);
        free(gy);
    }
    free(x), free(gx), free(mine);
}

/* the resize kernels' per-element taps (forward) and their inversion by binary search
 * (backward), both modes, up and down, against the portable f32 kernels */
TEST(cuda_host_resize_taps_match_portable) {
    const int64_t P = 2, H = 7, W = 10;
    const int64_t outs[][2] = {{14, 20}, {3, 4}, {7, 10}, {1, 1}, {9, 31}};
    float *x = malloc(P * H * W * 4), *gx = malloc(P * H * W * 4), *mine = malloc(P * H * W * 4);
    fill(x, P * H * W, 3);
    for (int oi = 0; oi < 5; oi++) {
        int64_t OH = outs[oi][0], OW = outs[oi][1], no = P * OH * OW;
        float *y = malloc(no * 4), *gy = malloc(no * 4), *my = malloc(no * 4);
        fill(gy, no, 40 + oi);
        for (int mode = 0; mode < 3; mode++) { /* bilinear align 0 / 1, nearest */
            int align = mode == 1;
            if (mode < 2) {
                dv_resize_bilinear_f32_portable(P, H, W, OH, OW, align, x, y);
                dv_resize_bilinear_backward_f32_portable(P, H, W, OH, OW, align, gy, gx);
            } else {
                dv_resize_nearest_f32_portable(P, H, W, OH, OW, x, y);
                dv_resize_nearest_backward_f32_portable(P, H, W, OH, OW, gy, gx);
            }
            for (int64_t e = 0; e < no; e++) {
                int64_t ow = e % OW, oh = (e / OW) % OH, p = e / (OW * OH);
                my[e] = mode < 2 ? dv_cu_bilinear_elem(x, p, oh, ow, H, W, OH, OW, align)
                                 : dv_cu_nearest_elem(x, p, oh, ow, H, W, OH, OW);
            }
            for (int64_t e = 0; e < P * H * W; e++) {
                int64_t iw = e % W, ih = (e / W) % H, p = e / (W * H);
                mine[e] = mode < 2 ? dv_cu_bilinear_grad_elem(gy, p, ih, iw, H, W, OH, OW, align)
                                   : dv_cu_nearest_grad_elem(gy, p, ih, iw, H, W, OH, OW);
            }
            int bf = count_diff(my, y, no, 1e-6f), bb = count_diff(mine, gx, P * H * W, 1e-6f);
            CHECK_MSG(bf == 0 && bb == 0, "resize mode %d to (%lld, %lld): %d outputs, %d input gradients differ", mode,
                      (long long)OH, (long long)OW, bf, bb);
        }
        free(y), free(gy), free(my);
    }
    free(x), free(gx), free(mine);
}

/* im2col per element and col2im as a gather (the CUDA conv kernels' arithmetic) against the
 * portable kernels: strides, padding, dilation, non-square kernels */
TEST(cuda_host_im2col_col2im_match_portable) {
    const int gs[][8] = {{3, 3, 1, 1, 1, 1, 1, 1}, {3, 2, 2, 3, 1, 0, 1, 1}, {3, 3, 2, 2, 2, 2, 2, 3}, {1, 5, 1, 2, 0, 2, 1, 1}};
    for (int gi = 0; gi < 4; gi++) {
        const int *k = gs[gi];
        dv_conv2d_geom g = {.C = 3, .H = 11, .W = 9, .kh = k[0], .kw = k[1], .sh = k[2], .sw = k[3], .ph = k[4],
                            .pw = k[5], .dh = k[6], .dw = k[7]};
        g.OH = dv_conv2d_out_size(g.H, g.kh, g.sh, g.ph, g.dh), g.OW = dv_conv2d_out_size(g.W, g.kw, g.sw, g.pw, g.dw);
        int64_t R = g.C * g.kh * g.kw, N = g.OH * g.OW, nx = g.C * g.H * g.W;
        float *x = malloc(nx * 4), *col = malloc(R * N * 4), *gx = calloc((size_t)nx, 4), *c2 = malloc(R * N * 4);
        fill(x, nx, 60 + gi), fill(c2, R * N, 70 + gi);
        dv_im2col_f32_portable(&g, x, col);
        int bad = 0;
        for (int64_t r = 0; r < R; r++)
            for (int64_t n = 0; n < N; n++) bad += dv_cu_im2col_elem(&g, x, r, n) != col[r * N + n];
        dv_col2im_f32_portable(&g, c2, gx);
        for (int64_t e = 0; e < nx; e++)
            bad += dv_cu_col2im_elem(&g, c2, e / (g.H * g.W), e / g.W % g.H, e % g.W) != gx[e];
        CHECK_MSG(bad == 0, "im2col / col2im geometry %d: %d entries differ", gi, bad);
        free(x), free(col), free(gx), free(c2);
    }
}

/* the TF32 GEMM's tile maps (kernels/cuda/common.h): the loader covers a 64 x 16 tile once
 * in both layouts; the accumulators cover the 64 x 64 block once; the fragment loads of a
 * warp are bank-conflict free; and, replaying mma.m16n8k8 on the host from the PTX ISA's
 * register layout (lane and register of each matrix element, written independently of the
 * maps), the fragments the maps load multiply to the block's product As · Bs^T */
TEST(cuda_host_tf32_tile_maps) {
    enum { BM = DV_CU_TF32_BM, BK = DV_CU_TF32_BK, SK = DV_CU_TF32_SK };
    static int seen[BM][BK];
    for (int kc = 0; kc < 2; kc++) {
        memset(seen, 0, sizeof seen);
        for (int t = 0; t < DV_CU_TF32_THREADS; t++)
            for (int u = 0; u < BM * BK / DV_CU_TF32_THREADS; u++) {
                int row, k;
                dv_cu_tf32_piece(t, u, kc, &row, &k);
                CHECK(row >= 0 && row < BM && k >= 0 && k < BK);
                if (row >= 0 && row < BM && k >= 0 && k < BK) seen[row][k]++;
            }
        int bad = 0;
        for (int r = 0; r < BM; r++)
            for (int k = 0; k < BK; k++) bad += seen[r][k] != 1;
        CHECK_MSG(bad == 0, "tf32 loader (k-contiguous %d): %d tile elements not loaded exactly once", kc, bad);
    }
    static int cseen[BM][BM];
    memset(cseen, 0, sizeof cseen);
    for (int w = 0; w < 4; w++)
        for (int l = 0; l < 32; l++)
            for (int i = 0; i < 2; i++)
                for (int j = 0; j < 4; j++)
                    for (int r = 0; r < 4; r++) {
                        int m, n;
                        dv_cu_tf32_c_coord(w, l, i, j, r, &m, &n);
                        if (m >= 0 && m < BM && n >= 0 && n < BM) cseen[m][n]++;
                    }
    int cbad = 0;
    for (int m = 0; m < BM; m++)
        for (int n = 0; n < BM; n++) cbad += cseen[m][n] != 1;
    CHECK_MSG(cbad == 0, "tf32 accumulators: %d outputs not owned exactly once", cbad);
    /* bank conflicts: one load instruction = fixed (warp, tile, kk, register) over 32 lanes */
    int conflicts = 0;
    for (int w = 0; w < 4; w++)
        for (int kk = 0; kk < BK; kk += 8)
            for (int x = 0; x < 4; x++)
                for (int r = 0; r < 4; r++) {
                    int banks[32] = {0};
                    for (int l = 0; l < 32; l++) {
                        int a = x < 2 ? dv_cu_tf32_a_smem(w, l, x, kk, r) : dv_cu_tf32_b_smem(w, l, x, kk, r % 2);
                        banks[a % 32]++;
                    }
                    for (int b = 0; b < 32; b++) conflicts += banks[b] > 1;
                }
    CHECK_MSG(conflicts == 0, "tf32 fragment loads: %d bank conflicts", conflicts);
    /* the product, exact in small integers */
    static float As[BM * SK], Bs[BM * SK], C[BM][BM];
    for (int i = 0; i < BM * SK; i++) As[i] = (float)((i * 7) % 11 - 5), Bs[i] = (float)((i * 5) % 13 - 6);
    memset(C, 0, sizeof C);
    for (int w = 0; w < 4; w++) {
        float acc[32][2][4][4];
        memset(acc, 0, sizeof acc);
        for (int kk = 0; kk < BK; kk += 8) {
            float a[32][2][4], b[32][4][2];
            for (int l = 0; l < 32; l++) {
                for (int i = 0; i < 2; i++)
                    for (int r = 0; r < 4; r++) a[l][i][r] = As[dv_cu_tf32_a_smem(w, l, i, kk, r)];
                for (int j = 0; j < 4; j++)
                    for (int r = 0; r < 2; r++) b[l][j][r] = Bs[dv_cu_tf32_b_smem(w, l, j, kk, r)];
            }
            /* PTX ISA, mma.m16n8k8 .tf32: A (row, k) in lane (row % 8) * 4 + k % 4, register
             * row / 8 + 2 (k / 4); B (k, col) in lane col * 4 + k % 4, register k / 4; C (row, col)
             * in lane (row % 8) * 4 + col / 2, register col % 2 + 2 (row / 8) */
            for (int i = 0; i < 2; i++)
                for (int j = 0; j < 4; j++)
                    for (int row = 0; row < 16; row++)
                        for (int col = 0; col < 8; col++) {
                            float s = 0;
                            for (int k = 0; k < 8; k++)
                                s += a[(row % 8) * 4 + k % 4][i][row / 8 + 2 * (k / 4)] * b[col * 4 + k % 4][j][k / 4];
                            acc[(row % 8) * 4 + col / 2][i][j][col % 2 + 2 * (row / 8)] += s;
                        }
        }
        for (int l = 0; l < 32; l++)
            for (int i = 0; i < 2; i++)
                for (int j = 0; j < 4; j++)
                    for (int r = 0; r < 4; r++) {
                        int m, n;
                        dv_cu_tf32_c_coord(w, l, i, j, r, &m, &n);
                        C[m][n] = acc[l][i][j][r];
                    }
    }
    int pbad = 0;
    for (int m = 0; m < BM; m++)
        for (int n = 0; n < BM; n++) {
            float s = 0;
            for (int k = 0; k < BK; k++) s += As[m * SK + k] * Bs[n * SK + k];
            pbad += s != C[m][n];
        }
    CHECK_MSG(pbad == 0, "tf32 fragments replayed through mma: %d of 64 x 64 products wrong", pbad);
    /* the TF32 rounding emulation: 10 mantissa bits, ties away from zero */
    CHECK(dv_cu_tf32_round(1.0f) == 1.0f);
    CHECK(dv_cu_tf32_round(1.0f + 0x1p-11f) == 1.0f + 0x1p-10f);      /* a tie rounds away */
    CHECK(dv_cu_tf32_round(-(1.0f + 0x1p-11f)) == -(1.0f + 0x1p-10f));
    CHECK(dv_cu_tf32_round(1.0f + 0x1p-12f) == 1.0f);                 /* below the tie: down */
}

/* x (5, 37, 6) with ties (every other value on a grid of 1/4), NaNs (one line with two), +-inf and a
 * line of equal values, for the extreme / logsumexp / cumsum line loops */
static dv_tensor *reduce_input(void) {
    dv_tensor *x = dv_empty(DV_F32, DV_SHAPE(5, 37, 6));
    float *p = dv_data(x);
    fill(p, 5 * 37 * 6, 21);
    for (int64_t i = 0; i < 5 * 37 * 6; i += 2) p[i] = roundf(p[i] * 8.0f) / 4.0f; /* the rest off the grid */
    p[(1 * 37 + 4) * 6 + 2] = NAN, p[(1 * 37 + 30) * 6 + 2] = NAN, p[(3 * 37 + 0) * 6 + 5] = NAN;
    p[(2 * 37 + 9) * 6 + 1] = INFINITY, p[(4 * 37 + 11) * 6 + 3] = -INFINITY;
    for (int64_t i = 0; i < 37; i++) p[(0 * 37 + i) * 6 + 4] = 0.5f; /* a tied line along dim 1 */
    return x;
}

/* the reduce_ext.cu kernels' per-output loops (kernels/cuda/reduce_math.h) replayed over every
 * dim of a tied, NaN-holding input against dv_max / dv_min / dv_argmax / dv_logsumexp /
 * dv_cumsum and the portable reverse cumsum and scatter: all bit for bit */
TEST(cuda_host_reduce_ext_lines_match_ops) {
    dv_tensor *x = reduce_input();
    const float *xp = dv_data(x);
    for (int dim = 0; dim < 3; dim++) {
        int64_t n = x->shape[dim], outer = 1, inner = 1;
        for (int k = 0; k < dim; k++) outer *= x->shape[k];
        for (int k = dim + 1; k < 3; k++) inner *= x->shape[k];
        dv_tensor *mx = dv_max(x, dim, false), *mn = dv_min(x, dim, false), *am = dv_argmax(x, dim, false);
        dv_tensor *lse = dv_logsumexp(x, dim, false), *cs = dv_cumsum(x, dim);
        const float *pmx = dv_data(mx), *pmn = dv_data(mn), *plse = dv_data(lse), *pcs = dv_data(cs);
        const int64_t *pam = dv_data(am);
        int64_t nx = outer * n * inner;
        float *rev = malloc(nx * 4), *mine = malloc(nx * 4), *mrev = malloc(nx * 4), *g = malloc(outer * inner * 4);
        float *gx = malloc(nx * 4), *mgx = malloc(nx * 4);
        int64_t *imin = malloc(outer * inner * 8);
        fill(g, outer * inner, 30 + dim);
        dv_cumsum_f32_portable(outer, n, inner, xp, rev, 1);
        dv_min_f32_portable(outer, n, inner, xp, NULL, imin);
        dv_scatter_dim_f32_portable(outer, n, inner, pam, g, gx);
        int bad_ext = 0, bad_lse = 0;
        for (int64_t p = 0; p < outer * inner; p++) {
            int64_t base = (p / inner) * n * inner + p % inner, bi;
            float best;
            dv_cu_extreme_line_f32(xp + base, n, inner, 1, &best, &bi);
            bad_ext += memcmp(&best, &pmx[p], 4) != 0 || bi != pam[p];
            dv_cu_extreme_line_f32(xp + base, n, inner, 0, &best, &bi);
            bad_ext += memcmp(&best, &pmn[p], 4) != 0 || bi != imin[p];
            float l = dv_cu_logsumexp_line_f32(xp + base, n, inner);
            bad_lse += memcmp(&l, &plse[p], 4) != 0;
            dv_cu_cumsum_line_f32(xp + base, mine + base, n, inner, 0);
            dv_cu_cumsum_line_f32(xp + base, mrev + base, n, inner, 1);
            /* the scatter kernel's loop */
            for (int64_t i = 0; i < n; i++) mgx[base + i * inner] = 0.0f;
            mgx[base + pam[p] * inner] = g[p];
        }
        CHECK_MSG(bad_ext == 0, "dim %d: %d max / min outputs differ", dim, bad_ext);
        CHECK_MSG(bad_lse == 0, "dim %d: %d logsumexp outputs differ", dim, bad_lse);
        CHECK_MSG(memcmp(mine, pcs, nx * 4) == 0, "dim %d: cumsum differs", dim);
        CHECK_MSG(memcmp(mrev, rev, nx * 4) == 0, "dim %d: reverse cumsum differs", dim);
        CHECK_MSG(memcmp(mgx, gx, nx * 4) == 0, "dim %d: scatter differs", dim);
        free(rev), free(mine), free(mrev), free(g), free(gx), free(mgx), free(imin);
        dv_release(mx), dv_release(mn), dv_release(am), dv_release(lse), dv_release(cs);
    }
    /* the cases the input must exercise, so the comparison above means something */
    float b;
    int64_t bi;
    dv_cu_extreme_line_f32(xp + (1 * 37 + 0) * 6 + 2, 37, 6, 1, &b, &bi);
    CHECK_MSG(b != b && bi == 4, "the first of two NaNs must win (got %g at %lld)", b, (long long)bi);
    dv_cu_extreme_line_f32(xp + (0 * 37 + 0) * 6 + 4, 37, 6, 0, &b, &bi);
    CHECK_MSG(b == 0.5f && bi == 0, "a tied line's first index must win (got %g at %lld)", b, (long long)bi);
    const float all_ninf[3] = {-INFINITY, -INFINITY, -INFINITY}, with_inf[3] = {1.0f, INFINITY, 2.0f};
    CHECK(dv_cu_logsumexp_line_f32(all_ninf, 3, 1) == -INFINITY);
    CHECK(dv_cu_logsumexp_line_f32(with_inf, 3, 1) == INFINITY);
    CHECK(dv_cu_logsumexp_line_f32(all_ninf, 0, 1) == -INFINITY);
    dv_release(x);
}

/* optim.cu's per-element SGD and EMA updates (kernels/cuda/reduce_math.h, coefficients rounded
 * as tensor/cuda.c's dv_cuda_sgd does) replayed against dv_sgd_step and dv_ema_update over
 * three steps, each configuration: bit for bit */
TEST(cuda_host_sgd_ema_updates_match_optim) {
    const double cfgs[][4] = {{0.1, 0, 0, 0}, {0.05, 0.9, 0.1, 0.01}, {0.02, 0.8, 0, 0.003}}; /* lr mom damp wd */
    const int64_t n = 1003;
    for (int ci = 0; ci < 4; ci++) {
        const double *c = cfgs[ci < 3 ? ci : 2];
        bool nesterov = ci == 3;
        dv_tensor *w = dv_empty(DV_F32, DV_SHAPE(n));
        fill(dv_data(w), n, 40 + ci);
        float *p = malloc(n * 4), *buf = calloc(n, 4), *sh = malloc(n * 4);
        memcpy(p, dv_data(w), n * 4);
        memcpy(sh, p, n * 4);
        dv_params ps = {0};
        dv_params_add(&ps, "w", w);
        dv_sgd *o = dv_sgd_new();
        dv_sgd_config cfg = dv_sgd_config_default(c[0]);
        cfg.momentum = c[1], cfg.dampening = c[2], cfg.weight_decay = c[3], cfg.nesterov = nesterov;
        dv_sgd_add_group(o, &ps, cfg);
        dv_ema *e = dv_ema_new(&ps, 0.9);
        int bad = 0, bad_ema = 0;
        for (int t = 0; t < 3; t++) {
            w->grad = dv_empty(DV_F32, DV_SHAPE(n));
            fill(dv_data(w->grad), n, 50 + 3 * ci + t);
            const float *g = dv_data(w->grad);
            dv_cu_sgd_coefs k = {(float)c[0], (float)c[3], (float)c[1], (float)(1.0 - c[2]), c[3] != 0, c[1] != 0,
                                 nesterov, t == 0};
            for (int64_t i = 0; i < n; i++) dv_cu_sgd_one(&k, &p[i], g[i], &buf[i]);
            dv_sgd_step(o, 1.0);
            bad += memcmp(p, dv_data(w), n * 4) != 0;
            for (int64_t i = 0; i < n; i++) sh[i] = dv_cu_ema_one(sh[i], p[i], (float)(1.0 - 0.9));
            dv_ema_update(e);
            const char *const *names;
            dv_tensor *const *st;
            dv_ema_state(e, &names, &st);
            bad_ema += memcmp(sh, dv_data(st[0]), n * 4) != 0;
            dv_release(w->grad);
            w->grad = NULL;
        }
        CHECK_MSG(bad == 0, "sgd config %d: %d of 3 steps differ", ci, bad);
        CHECK_MSG(bad_ema == 0, "ema (sgd config %d): %d of 3 updates differ", ci, bad_ema);
        dv_ema_free(e), dv_sgd_free(o), dv_params_free(&ps), dv_release(w);
        free(p), free(buf), free(sh);
    }
}

/* extreme_rows_kernel (reduce_ext.cu, inner == 1, long rows) replayed: 256 threads take their
 * strided shares in ascending order, then warp butterflies (xor 16 .. 1), the 8 warp leaders
 * into the first warp, and a butterfly again — all through dv_cu_extreme_take — against the
 * portable max / min: value bits and index. Rows with ties, -0 / +0, NaNs (one late, two),
 * all -inf. */
static void rows_replay(const float *xr, int64_t n, int is_max, float *best_out, int64_t *idx_out) {
    float v[256], w[32];
    int64_t id[256], wi[32];
    for (int t = 0; t < 256; t++) {
        v[t] = 0.0f, id[t] = -1;
        for (int64_t i = t; i < n; i += 256) dv_cu_extreme_take(xr[i], i, &v[t], &id[t], is_max);
    }
    for (int wp = 0; wp < 8; wp++)
        for (int o = 16; o > 0; o >>= 1) {
            float nv[32];
            int64_t ni[32];
            for (int l = 0; l < 32; l++) {
                nv[l] = v[wp * 32 + l], ni[l] = id[wp * 32 + l];
                dv_cu_extreme_take(v[wp * 32 + (l ^ o)], id[wp * 32 + (l ^ o)], &nv[l], &ni[l], is_max);
            }
            for (int l = 0; l < 32; l++) v[wp * 32 + l] = nv[l], id[wp * 32 + l] = ni[l];
        }
    for (int l = 0; l < 32; l++) w[l] = l < 8 ? v[l * 32] : 0.0f, wi[l] = l < 8 ? id[l * 32] : -1;
    for (int o = 16; o > 0; o >>= 1) {
        float nv[32];
        int64_t ni[32];
        for (int l = 0; l < 32; l++) {
            nv[l] = w[l], ni[l] = wi[l];
            dv_cu_extreme_take(w[l ^ o], wi[l ^ o], &nv[l], &ni[l], is_max);
        }
        memcpy(w, nv, sizeof w), memcpy(wi, ni, sizeof wi);
    }
    *best_out = w[0], *idx_out = wi[0];
}

TEST(cuda_host_extreme_rows_block_matches_portable) {
    const int64_t n = 1001, rows = 7;
    float *x = malloc(rows * n * 4);
    fill(x, rows * n, 61);
    for (int64_t i = 0; i < rows * n; i++) x[i] = roundf(x[i] * 8.0f) / 4.0f; /* many ties */
    x[1 * n + 700] = NAN;                                                        /* a late NaN */
    x[2 * n + 900] = NAN, x[2 * n + 5] = NAN;                                    /* two NaNs */
    for (int64_t i = 0; i < n; i++) x[3 * n + i] = -INFINITY;                    /* all -inf */
    for (int64_t i = 0; i < n; i++) x[4 * n + i] = i % 3 ? -0.0f : 0.0f;         /* signed zeros */
    x[5 * n + 1000] = 9.0f, x[5 * n + 999] = 9.0f;                               /* the tail ties */
    int bad = 0;
    for (int is_max = 0; is_max < 2; is_max++) {
        float want[7];
        int64_t wi[7];
        if (is_max) dv_max_f32_portable(rows, n, 1, x, want, wi);
        else dv_min_f32_portable(rows, n, 1, x, want, wi);
        for (int64_t r = 0; r < rows; r++) {
            float b;
            int64_t bi;
            rows_replay(x + r * n, n, is_max, &b, &bi);
            bad += memcmp(&b, &want[r], 4) != 0 || bi != wi[r];
        }
    }
    CHECK_MSG(bad == 0, "%d of %lld rows differ", bad, (long long)(2 * rows));
    free(x);
}
