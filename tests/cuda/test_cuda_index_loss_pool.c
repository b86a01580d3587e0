/* tests/cuda/test_cuda_index_loss_pool.c — the tensor ops with CUDA kernels in
 * kernels/cuda/index.cu, loss.cu, pool.cu and resize.cu (embedding, index_select, gather,
 * concat / stack / one_hot, mse / l1 / bce-with-logits / cross-entropy, max / avg /
 * adaptive-avg pooling, bilinear and nearest resize): forward and gradients through autograd
 * on cuda:0 against the same graph on the CPU, odd sizes, repeated indices, strided inputs.
 * Tolerances (relative, max(1, |x|) scaled): 0 for pure data movement (concat, stack,
 * one_hot, embedding forward); 2e-6 where the GPU adds in the CPU's order (pooling, resize:
 * gather-style backward kernels); 2e-5 for atomic scatter-adds (index backward: the order of
 * the adds varies) and for the losses (sums in another order). */
#ifdef DV_HAVE_CUDA
#include "tests/cuda/cuda_util.h"

#include "tensor/ops.h"

#include <stdlib.h>
#include <string.h>

/* an index tensor on each side: the graph functions pick the one on their input's device */
static dv_tensor *g_idx_cpu, *g_idx_dev;
static dv_tensor *idx_for(const dv_tensor *x) { return x->device.type == DV_CUDA ? g_idx_dev : g_idx_cpu; }
static void set_idx(dv_tensor *cpu) {
    g_idx_cpu = cpu;
    g_idx_dev = dv_tensor_to(cpu, dv_device_cuda(0));
}
static void drop_idx(void) { dv_release(g_idx_cpu), dv_release(g_idx_dev), g_idx_cpu = g_idx_dev = NULL; }

static dv_tensor *g_embedding(dv_tensor **in) { return dv_embedding(in[0], idx_for(in[0])); }
static dv_tensor *g_index_select(dv_tensor **in) { return dv_index_select(in[0], 1, idx_for(in[0])); }
/* gather along dim 2 of a transposed view: the kernel reads x through its strides */
static dv_tensor *g_gather(dv_tensor **in) {
    dv_tensor *t = dv_transpose(in[0], 0, 2), *y = dv_gather(t, 2, idx_for(in[0]));
    dv_release(t);
    return y;
}

TEST(cuda_index_ops_match_cpu) {
    dv_rng r = dv_rng_new(21);
    /* embedding: ids (3, 17) over 50 rows, repeats on purpose (id 7 many times) */
    dv_tensor *w = dv_randn(&r, DV_F32, DV_SHAPE(50, 33)), *ids = dv_randint(&r, DV_I32, 0, 50, DV_SHAPE(3, 17));
    for (int i = 0; i < 10; i++) ((int32_t *)dv_data(ids))[i * 5] = 7;
    set_idx(ids);
    tc_graph_parity("embedding (repeated ids)", g_embedding, &w, 1, 2e-5);
    /* ids on the device too (copied back for the range check, uploaded again) */
    dv_tensor *wd = dv_tensor_to(w, dv_device_cuda(0)), *yd = dv_embedding(wd, g_idx_dev), *yc = dv_embedding(w, ids);
    dv_tensor *yb = dv_tensor_to(yd, DV_DEVICE_CPU);
    tc_compare_f32("embedding with device ids", dv_data(yb), dv_data(yc), dv_numel(yc), 0);
    dv_release(wd), dv_release(yd), dv_release(yc), dv_release(yb);
    /* a bf16 table (the LLM's frozen embeddings): bytes moved, bit-exact */
    dv_tensor *wh = dv_cast(w, DV_BF16), *whd = dv_tensor_to(wh, dv_device_cuda(0));
    dv_tensor *eh = dv_embedding(whd, g_idx_dev), *ehc = dv_embedding(wh, ids), *ehb = dv_tensor_to(eh, DV_DEVICE_CPU);
    CHECK_MSG(memcmp(dv_data(ehb), dv_data(ehc), (size_t)dv_numel(ehc) * 2) == 0, "bf16 embedding rows differ");
    dv_release(wh), dv_release(whd), dv_release(eh), dv_release(ehc), dv_release(ehb);
    drop_idx();
    dv_release(w);

    dv_tensor *x = dv_randn(&r, DV_F32, DV_SHAPE(4, 9, 13));
    dv_tensor *sel = dv_from_data(DV_I64, DV_SHAPE(12), (const int64_t[]){8, 0, 3, 3, 5, 8, 1, 2, 3, 7, 6, 0});
    set_idx(sel);
    tc_graph_parity("index_select dim 1 (repeated)", g_index_select, &x, 1, 2e-5);
    drop_idx();
    /* gather on x^T (13, 9, 4) along dim 2 (size 4), index (11, 9, 6): repeats guaranteed */
    set_idx(dv_randint(&r, DV_I64, 0, 4, DV_SHAPE(11, 9, 6)));
    tc_graph_parity("gather dim 2 of a transposed view", g_gather, &x, 1, 2e-5);
    drop_idx();
    dv_release(x);
}

/* concat along dim 1 of three inputs, the middle one a transposed view; stack along a new dim 2 */
static dv_tensor *g_concat(dv_tensor **in) {
    dv_tensor *t = dv_transpose(in[1], 1, 2), *y = dv_concat((dv_tensor *[]){in[0], t, in[2]}, 3, 1);
    dv_release(t);
    return y;
}
static dv_tensor *g_stack(dv_tensor **in) { return dv_stack((dv_tensor *[]){in[0], in[2], in[0]}, 3, 2); }

TEST(cuda_concat_stack_one_hot_match_cpu) {
    dv_rng r = dv_rng_new(24);
    dv_tensor *a = dv_randn(&r, DV_F32, DV_SHAPE(3, 5, 7)), *b = dv_randn(&r, DV_F32, DV_SHAPE(3, 7, 4));
    dv_tensor *c = dv_randn(&r, DV_F32, DV_SHAPE(3, 1, 7));
    tc_graph_parity("concat dim 1 (a strided piece)", g_concat, (dv_tensor *[]){a, b, c}, 3, 0);
    dv_tensor *c2 = dv_randn(&r, DV_F32, DV_SHAPE(3, 5, 7));
    tc_graph_parity("stack dim 2", g_stack, (dv_tensor *[]){a, b, c2}, 3, 0);
    /* one_hot of a device index: built on the host, returned on the device */
    dv_tensor *ix = dv_randint(&r, DV_I64, 0, 9, DV_SHAPE(4, 6)), *ixd = dv_tensor_to(ix, dv_device_cuda(0));
    dv_tensor *oc = dv_one_hot(ix, 9, DV_F32), *od = dv_one_hot(ixd, 9, DV_F32);
    CHECK(od->device.type == DV_CUDA);
    dv_tensor *ob = dv_tensor_to(od, DV_DEVICE_CPU);
    tc_compare_f32("one_hot of a device index", dv_data(ob), dv_data(oc), dv_numel(oc), 0);
    dv_release(a), dv_release(b), dv_release(c), dv_release(c2);
    dv_release(ix), dv_release(ixd), dv_release(oc), dv_release(od), dv_release(ob);
}

static dv_tensor *g_mse(dv_tensor **in) { return dv_mse_loss(in[0], in[1]); }
static dv_tensor *g_l1(dv_tensor **in) { return dv_l1_loss(in[0], in[1]); }
static dv_tensor *g_bce(dv_tensor **in) { return dv_bce_with_logits(in[0], in[1]); }
static dv_tensor *g_ce(dv_tensor **in) { return dv_cross_entropy(in[0], idx_for(in[0]), -100); }
/* the loss scaled by a second op, so the upstream gradient is not 1 */
static dv_tensor *g_ce_scaled(dv_tensor **in) {
    dv_tensor *l = dv_cross_entropy(in[0], idx_for(in[0]), 3), *y = dv_scale(l, -2.5);
    dv_release(l);
    return y;
}

TEST(cuda_losses_match_cpu) {
    dv_rng r = dv_rng_new(22);
    dv_tensor *a = dv_randn(&r, DV_F32, DV_SHAPE(7, 45)), *b = dv_randn(&r, DV_F32, DV_SHAPE(7, 45));
    dv_tensor *t = dv_rand(&r, DV_F32, DV_SHAPE(7, 45));
    tc_graph_parity("mse_loss", g_mse, (dv_tensor *[]){a, b}, 2, 2e-5);
    tc_graph_parity("l1_loss", g_l1, (dv_tensor *[]){a, b}, 2, 2e-5);
    dv_tensor *big = dv_scale(a, 30.0); /* both tails of the stable BCE formula */
    tc_graph_parity("bce_with_logits", g_bce, (dv_tensor *[]){big, t}, 2, 2e-5);
    dv_release(big);
    /* cross-entropy: 37 rows of 1001 classes (above a block), some targets ignored */
    dv_tensor *logits = dv_randn(&r, DV_F32, DV_SHAPE(37, 1001)), *tg = dv_randint(&r, DV_I64, 0, 1001, DV_SHAPE(37));
    for (int i = 0; i < 37; i += 6) ((int64_t *)dv_data(tg))[i] = -100;
    set_idx(tg);
    tc_graph_parity("cross_entropy (ignore_index -100)", g_ce, &logits, 1, 2e-5);
    drop_idx();
    dv_tensor *tg2 = dv_randint(&r, DV_I32, 0, 5, DV_SHAPE(37)); /* i32 targets, class 3 ignored */
    dv_tensor *small = dv_randn(&r, DV_F32, DV_SHAPE(37, 5));
    set_idx(tg2);
    tc_graph_parity("cross_entropy i32 targets, scaled", g_ce_scaled, &small, 1, 2e-5);
    drop_idx();
    dv_release(a), dv_release(b), dv_release(t), dv_release(logits), dv_release(small);
}

static int g_pool[6]; /* kh, kw, sh, sw, ph, pw */
static dv_tensor *g_max_pool(dv_tensor **in) { return dv_max_pool2d(in[0], g_pool, g_pool + 2, g_pool + 4); }
static dv_tensor *g_avg_pool(dv_tensor **in) { return dv_avg_pool2d(in[0], g_pool, g_pool + 2, g_pool + 4); }
static int64_t g_out[2];
static bool g_align;
static dv_tensor *g_adaptive(dv_tensor **in) { return dv_adaptive_avg_pool2d(in[0], g_out[0], g_out[1]); }
static dv_tensor *g_bilinear(dv_tensor **in) { return dv_resize_bilinear(in[0], g_out[0], g_out[1], g_align); }
static dv_tensor *g_nearest(dv_tensor **in) { return dv_resize_nearest(in[0], g_out[0], g_out[1]); }

TEST(cuda_pool_resize_match_cpu) {
    dv_rng r = dv_rng_new(23);
    dv_tensor *x = dv_randn(&r, DV_F32, DV_SHAPE(2, 3, 17, 12)), *x3 = dv_randn(&r, DV_F32, DV_SHAPE(5, 9, 7));
    const int pools[][6] = {{3, 3, 2, 2, 1, 1}, {2, 2, 2, 2, 0, 0}, {3, 2, 1, 3, 1, 0}, {5, 4, 3, 2, 2, 2}};
    for (int i = 0; i < 4; i++) {
        memcpy(g_pool, pools[i], sizeof g_pool);
        char what[64];
        snprintf(what, sizeof what, "max_pool2d geometry %d", i);
        tc_graph_parity(what, g_max_pool, &x, 1, 2e-6);
        snprintf(what, sizeof what, "avg_pool2d geometry %d", i);
        tc_graph_parity(what, g_avg_pool, &x, 1, 2e-6);
    }
    memcpy(g_pool, pools[0], sizeof g_pool);
    tc_graph_parity("max_pool2d (C, H, W)", g_max_pool, &x3, 1, 2e-6);
    const int64_t outs[][2] = {{1, 1}, {4, 3}, {7, 5}, {30, 25}, {17, 12}};
    for (int i = 0; i < 5; i++) {
        g_out[0] = outs[i][0], g_out[1] = outs[i][1];
        char what[64];
        snprintf(what, sizeof what, "adaptive_avg_pool2d to (%lld, %lld)", (long long)g_out[0], (long long)g_out[1]);
        tc_graph_parity(what, g_adaptive, &x, 1, 2e-6);
        for (int al = 0; al < 2; al++) {
            g_align = al;
            snprintf(what, sizeof what, "resize_bilinear align %d to (%lld, %lld)", al, (long long)g_out[0],
                     (long long)g_out[1]);
            tc_graph_parity(what, g_bilinear, &x, 1, 2e-6);
        }
        snprintf(what, sizeof what, "resize_nearest to (%lld, %lld)", (long long)g_out[0], (long long)g_out[1]);
        tc_graph_parity(what, g_nearest, &x, 1, 2e-6);
    }
    dv_release(x), dv_release(x3);
}
#endif
