/* tests/cuda/test_cuda_tensor_ops.c — the tensor ops that dispatch to CUDA (unary, binary with
 * broadcasting, sum / mean, softmax / log-softmax over any dim, LayerNorm, RMSNorm, slice /
 * select backward, step 1 and strided, and dv_copy_ into a strided device view): forward and
 * gradients through autograd on cuda:0 against the very same graph on the CPU
 * (tc_graph_parity).
 * Tolerance 2e-5 relative (f32 kernels on both sides; sums in a different order); 0 where
 * only copies are involved (a slice's gradient is the upstream gradient moved, bit for bit). */
#ifdef DV_HAVE_CUDA
#include "tests/cuda/cuda_util.h"

#include "tensor/ops.h"

#include <stdlib.h>

static dv_tensor *g_gelu_chain(dv_tensor **in) {
    dv_tensor *a = dv_gelu(in[0]), *b = dv_tanh(a), *c = dv_scale(b, 3.0);
    dv_release(a), dv_release(b);
    return c;
}
static dv_tensor *g_bcast(dv_tensor **in) {
    dv_tensor *a = dv_mul(in[0], in[1]), *b = dv_add(a, in[1]), *c = dv_div(b, in[2]), *d = dv_sub(c, in[0]);
    dv_release(a), dv_release(b), dv_release(c);
    return d;
}
static dv_tensor *g_sum(dv_tensor **in) {
    int dims[2] = {0, 2};
    dv_tensor *a = dv_sum(in[0], dims, 2, true), *b = dv_mean(in[0], (int[]){1}, 1, true), *c = dv_mul(a, b);
    dv_release(a), dv_release(b);
    return c;
}
static dv_tensor *g_softmax_mid(dv_tensor **in) { return dv_softmax(in[0], 1); }
static dv_tensor *g_log_softmax(dv_tensor **in) { return dv_log_softmax(in[0], -1); }
static dv_tensor *g_layer_norm(dv_tensor **in) { return dv_layer_norm(in[0], in[1], in[2], 1e-5); }
static dv_tensor *g_rms_norm(dv_tensor **in) { return dv_rms_norm(in[0], in[1], 1e-6); }
static dv_tensor *g_loss(dv_tensor **in) {
    dv_tensor *a = dv_rms_norm(in[0], in[1], 1e-6), *b = dv_silu(a), *c = dv_mean_all(b);
    dv_release(a), dv_release(b);
    return c;
}

static dv_tensor *g_linear_mlp(dv_tensor **in) {
    dv_tensor *a = dv_linear(in[0], in[1], in[2]), *b = dv_gelu(a), *c = dv_matmul(b, in[3]);
    dv_release(a), dv_release(b);
    return c;
}

/* slices and selects on every dim, their gradients scattered back into zeros (slice_backward's
 * CUDA path: one block per slice, as concat writes its pieces) */
static dv_tensor *g_slices(dv_tensor **in) {
    dv_tensor *a = dv_slice(in[0], 2, 5, 40, 1), *b = dv_select(in[0], 1, 7), *c = dv_slice(in[0], 0, 1, 4, 1);
    dv_tensor *sa = dv_sum(a, (const int[]){2}, 1, false);           /* (6, 33) */
    dv_tensor *sb = dv_mul(b, b);                                     /* (6, 70) */
    dv_tensor *sc = dv_select(c, 2, 69);                              /* (3, 33) */
    dv_tensor *t1 = dv_sum_all(sa), *t2 = dv_sum_all(sb), *t3 = dv_sum_all(sc);
    dv_tensor *u = dv_add(t1, t2), *y = dv_add(u, t3);
    dv_release(a), dv_release(b), dv_release(c), dv_release(sa), dv_release(sb), dv_release(sc);
    dv_release(t1), dv_release(t2), dv_release(t3), dv_release(u);
    return y;
}

/* slices with step > 1 (slice_backward's strided scatter on CUDA): x[..., a:b:step] on the
 * last dim, a step on the middle dim that does not divide its extent, a step larger than the
 * range (one element), a strided slice of a strided slice and a select of one; each branch is
 * weighted differently so a gradient routed to the wrong element changes the sum */
static dv_tensor *g_strided_slices(dv_tensor **in) {
    dv_tensor *a = dv_slice(in[0], 2, 3, 61, 4);                     /* (6, 33, 15) */
    dv_tensor *b = dv_slice(in[0], 1, 2, 33, 3);                     /* (6, 11, 70) */
    dv_tensor *c = dv_slice(in[0], 0, 1, 6, 7);                      /* (1, 33, 70) */
    dv_tensor *d = dv_slice(b, 2, 1, 70, 5), *e = dv_select(d, 1, 4); /* (6, 11, 14), (6, 14) */
    dv_tensor *sa = dv_mul(a, a), *sb = dv_scale(b, -2.0), *sc = dv_scale(c, 3.0), *se = dv_exp(e);
    dv_tensor *t1 = dv_sum_all(sa), *t2 = dv_sum_all(sb), *t3 = dv_sum_all(sc), *t4 = dv_sum_all(se);
    dv_tensor *u = dv_add(t1, t2), *v = dv_add(u, t3), *y = dv_add(v, t4);
    dv_release(a), dv_release(b), dv_release(c), dv_release(d), dv_release(e);
    dv_release(sa), dv_release(sb), dv_release(sc), dv_release(se);
    dv_release(t1), dv_release(t2), dv_release(t3), dv_release(t4), dv_release(u), dv_release(v);
    return y;
}

/* the gradient of x[..., a:b:step] alone (not through a sum of everything): the upstream
 * gradient tc_graph_parity draws is random, so every element of the slice carries its own
 * value into gx and every other element of gx must be exactly 0 */
static dv_tensor *g_last_dim_step(dv_tensor **in) { return dv_slice(in[0], -1, 5, 70, 3); }

TEST(cuda_strided_slice_backward_matches_cpu) {
    dv_rng r = dv_rng_new(5);
    dv_tensor *x = dv_randn(&r, DV_F32, DV_SHAPE(6, 33, 70));
    tc_graph_parity("x[..., 5:70:3] gradient", g_last_dim_step, (dv_tensor *[]){x}, 1, 0);
    tc_graph_parity("strided slices / select of a strided slice", g_strided_slices, (dv_tensor *[]){x}, 1, 2e-5);
    /* dv_copy_ into a strided device view directly, with a dtype conversion on the way (f64
     * source): the rows 1, 4 and the columns 0, 3, 6, ... of a (5, 20) zero tensor */
    dv_tensor *z = dv_zeros(DV_F32, DV_SHAPE(5, 20)), *zd = dv_tensor_to(z, dv_device_cuda(0));
    dv_tensor *src = dv_randn(&r, DV_F64, DV_SHAPE(2, 7)), *srcd = dv_tensor_to(src, dv_device_cuda(0));
    dv_tensor *v1 = dv_slice(z, 0, 1, 5, 3), *v2 = dv_slice(v1, 1, 0, 20, 3);
    dv_tensor *w1 = dv_slice(zd, 0, 1, 5, 3), *w2 = dv_slice(w1, 1, 0, 20, 3);
    dv_copy_(v2, src);
    dv_copy_(w2, srcd);
    dv_tensor *back = dv_tensor_to(zd, DV_DEVICE_CPU);
    tc_compare_f32("copy_ into a strided CUDA view (f64 -> f32)", dv_data(back), dv_data(z), 100, 0);
    const float *pz = dv_data(back);
    int nonzero = 0;
    for (int i = 0; i < 100; i++) nonzero += pz[i] != 0.0f;
    CHECK_MSG(nonzero == 14, "copy_ into the view wrote %d nonzero elements, expected the 14 of the view", nonzero);
    dv_release(z), dv_release(zd), dv_release(src), dv_release(srcd), dv_release(v1), dv_release(v2);
    dv_release(w1), dv_release(w2), dv_release(back), dv_release(x);
}

TEST(cuda_tensor_ops_forward_and_gradients_match_cpu) {
    dv_rng r = dv_rng_new(3);
    dv_tensor *x = dv_randn(&r, DV_F32, DV_SHAPE(6, 33, 70));
    dv_tensor *row = dv_randn(&r, DV_F32, DV_SHAPE(70)), *col = dv_rand(&r, DV_F32, DV_SHAPE(33, 1));
    dv_fill_(col, 0); /* re-drawn below, away from 0 (a divisor) */
    dv_rng_fill_uniform(&r, col, 0.5, 2.0);
    dv_tensor *w = dv_randn(&r, DV_F32, DV_SHAPE(70)), *b = dv_randn(&r, DV_F32, DV_SHAPE(70));
    tc_graph_parity("gelu/tanh/scale", g_gelu_chain, (dv_tensor *[]){x}, 1, 2e-5);
    tc_graph_parity("broadcast mul/add/div/sub", g_bcast, (dv_tensor *[]){x, row, col}, 3, 2e-5);
    tc_graph_parity("sum/mean", g_sum, (dv_tensor *[]){x}, 1, 2e-5);
    tc_graph_parity("softmax dim 1", g_softmax_mid, (dv_tensor *[]){x}, 1, 2e-5);
    tc_graph_parity("log_softmax", g_log_softmax, (dv_tensor *[]){x}, 1, 2e-5);
    tc_graph_parity("layer_norm", g_layer_norm, (dv_tensor *[]){x, w, b}, 3, 5e-5);
    tc_graph_parity("slice / select backward", g_slices, (dv_tensor *[]){x}, 1, 2e-5);
    tc_graph_parity("rms_norm", g_rms_norm, (dv_tensor *[]){x, w}, 2, 5e-5);
    tc_graph_parity("rms_norm -> silu -> mean (loss)", g_loss, (dv_tensor *[]){x, w}, 2, 5e-5);
    /* f32 layers (the policy's trainable weights): linear + bias, matmul, every gradient */
    dv_tensor *lw = dv_randn(&r, DV_F32, DV_SHAPE(48, 70)), *lb = dv_randn(&r, DV_F32, DV_SHAPE(48));
    dv_tensor *m2 = dv_randn(&r, DV_F32, DV_SHAPE(48, 17));
    tc_graph_parity("linear f32 -> gelu -> matmul", g_linear_mlp, (dv_tensor *[]){x, lw, lb, m2}, 4, 1e-4);
    dv_release(lw), dv_release(lb), dv_release(m2);
    dv_release(x), dv_release(row), dv_release(col), dv_release(w), dv_release(b);
}

/* dv_linear with a frozen bf16 / f16 weight (the LLM's layers): forward, bias, and the gradient
 * of x, on the tensor cores, against the CPU (which widens the weight and keeps x in f32; the
 * GPU rounds x to the weight's dtype, hence the absolute tolerances below) */
TEST(cuda_linear_half_weight_matches_cpu) {
    for (int f16 = 0; f16 < 2; f16++) {
        dv_rng r = dv_rng_new(11 + f16);
        dv_tensor *x = dv_randn(&r, DV_F32, DV_SHAPE(3, 7, 96)), *wf = dv_randn(&r, DV_F32, DV_SHAPE(200, 96));
        dv_tensor *w = dv_cast(wf, f16 ? DV_F16 : DV_BF16), *b = dv_randn(&r, DV_F32, DV_SHAPE(200));
        dv_tensor *xd = dv_tensor_to(x, dv_device_cuda(0)), *wd = dv_tensor_to(w, dv_device_cuda(0));
        dv_tensor *bd = dv_tensor_to(b, dv_device_cuda(0));
        dv_set_requires_grad(x, true), dv_set_requires_grad(xd, true);
        dv_tensor *y = dv_linear(x, w, b), *yd = dv_linear(xd, wd, bd);
        dv_tensor *g = dv_randn(&r, DV_F32, y->shape, y->ndim), *gd = dv_tensor_to(g, dv_device_cuda(0));
        dv_backward_with(y, g);
        dv_backward_with(yd, gd);
        dv_tensor *yb = dv_tensor_to(yd, DV_DEVICE_CPU), *gxb = dv_tensor_to(xd->grad, DV_DEVICE_CPU);
        /* x rounded to bf16 (2^-9 relative): a y of 96 N(0,1) products is off by ~0.02 (std), dx
         * (200 products) by ~0.03; 0.15 / 0.2 is > 5 std for every element of the run, while a
         * wrong layout or operand is off by ~|y| ~ 10 */
        tc_compare_f32(f16 ? "linear f16 y" : "linear bf16 y", dv_data(yb), dv_data(y), dv_numel(y), 0.15);
        tc_compare_f32(f16 ? "linear f16 dx" : "linear bf16 dx", dv_data(gxb), dv_data(x->grad), dv_numel(x), 0.2);
        dv_release(x), dv_release(wf), dv_release(w), dv_release(b), dv_release(xd), dv_release(wd), dv_release(bd);
        dv_release(y), dv_release(yd), dv_release(g), dv_release(gd), dv_release(yb), dv_release(gxb);
    }
}
#endif
