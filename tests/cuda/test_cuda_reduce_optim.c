/* tests/cuda/test_cuda_reduce_optim.c — max / min / argmax, logsumexp, cumsum, where,
 * masked_fill and the maximum / minimum backward through the tensor API and autograd on
 * cuda:0 against the same graph on the CPU, and the SGD / EMA / clip_grad_norm updates of
 * CUDA parameters against the CPU optimisers (build/test-cuda; skipped without a GPU).
 * Inputs hold ties (values on a grid of 1/4), NaNs and +-inf where the CPU defines what
 * happens to them; sizes are odd, plus empty and 0-d tensors.
 * Tolerances: max / min / argmax and their gradients exact (the CPU's loops,
 * kernels/cuda/reduce_math.h); cumsum exact on short lines (the same loop) and on the 1/4 grid,
 * else one f32 ulp (1.2e-7: long lines are scanned by a warp or block in double in another
 * order, see cuda_logsumexp_cumsum_long_lines_match_cpu); logsumexp 1e-6 (the device's expf /
 * log; long lines also sum in double in another order); maximum / minimum /
 * where 1e-6 (a broadcast operand's gradient is a sum in the device's order); clip_grad_norm's
 * total 1e-12 relative (double sums in another order), after which the clip coefficient may
 * round differently in its last bit, so gradients, SGD and EMA are compared to 1e-6 (the
 * per-element updates are checked bit for bit on the host: tests/test_cuda_host_ops.c). */
#ifdef DV_HAVE_CUDA
#include "tests/cuda/cuda_util.h"

#include "optim/optim.h"
#include "tensor/ops.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* (a, b, c) on a grid of 1/4 with NaNs and infinities at fixed places */
static dv_tensor *tied_input(int64_t a, int64_t b, int64_t c, uint64_t seed, bool specials) {
    float *p = tc_randn(a * b * c, seed, 2.0);
    for (int64_t i = 0; i < a * b * c; i++) p[i] = roundf(p[i] * 4.0f) / 4.0f;
    if (specials && a * b * c > 40) p[3] = NAN, p[17] = NAN, p[29] = INFINITY, p[31] = -INFINITY;
    dv_tensor *x = dv_from_data(DV_F32, DV_SHAPE(a, b, c), p);
    free(p);
    return x;
}

static dv_tensor *g_max1(dv_tensor **in) { return dv_max(in[0], 1, true); }
static dv_tensor *g_max_last(dv_tensor **in) { return dv_max(in[0], -1, false); }
static dv_tensor *g_min0(dv_tensor **in) { return dv_min(in[0], 0, false); }
static dv_tensor *g_lse2(dv_tensor **in) { return dv_logsumexp(in[0], 2, false); }
static dv_tensor *g_lse1(dv_tensor **in) { return dv_logsumexp(in[0], 1, true); }
static dv_tensor *g_cumsum1(dv_tensor **in) { return dv_cumsum(in[0], 1); }
static dv_tensor *g_cumsum_last(dv_tensor **in) { return dv_cumsum(in[0], -1); }
static dv_tensor *g_max_0d(dv_tensor **in) { return dv_max(in[0], 0, false); }

TEST(cuda_reduce_ext_forward_and_gradients_match_cpu) {
    dv_tensor *x = tied_input(5, 67, 9, 1, true), *row = tied_input(3, 1, 1001, 2, true);
    dv_tensor *fin = tied_input(4, 33, 7, 3, false); /* logsumexp: finite, so gradients are finite */
    tc_graph_parity("max dim 1 keepdim", g_max1, (dv_tensor *[]){x}, 1, 0);
    tc_graph_parity("max last dim (rows of 1001)", g_max_last, (dv_tensor *[]){row}, 1, 0);
    tc_graph_parity("min dim 0", g_min0, (dv_tensor *[]){x}, 1, 0);
    tc_graph_parity("logsumexp dim 2", g_lse2, (dv_tensor *[]){fin}, 1, 1e-6);
    tc_graph_parity("logsumexp dim 1 keepdim", g_lse1, (dv_tensor *[]){fin}, 1, 1e-6);
    tc_graph_parity("cumsum dim 1", g_cumsum1, (dv_tensor *[]){fin}, 1, 0);
    /* rows of 1001: the block scan, whose gradient (a reverse cumsum of a random upstream
     * gradient) may differ by one ulp (cuda_logsumexp_cumsum_long_lines_match_cpu) */
    tc_graph_parity("cumsum last dim", g_cumsum_last, (dv_tensor *[]){row}, 1, 1.2e-7);
    dv_tensor *s = dv_scalar(DV_F32, 1.5);
    tc_graph_parity("max of a 0-d tensor", g_max_0d, (dv_tensor *[]){s}, 1, 0);
    /* argmax and the min indices (through the min's gradient above) bit for bit; NaN lines */
    dv_tensor *xd = dv_tensor_to(x, dv_device_cuda(0));
    for (int dim = 0; dim < 3; dim++) {
        dv_tensor *ac = dv_argmax(x, dim, false), *ad = dv_argmax(xd, dim, false);
        CHECK_MSG(ad->device.type == DV_CUDA && ad->dtype == DV_I64, "argmax dim %d: not an i64 device tensor", dim);
        dv_tensor *ab = dv_tensor_to(ad, DV_DEVICE_CPU);
        CHECK_MSG(memcmp(dv_data(ab), dv_data(ac), (size_t)dv_numel(ac) * 8) == 0, "argmax dim %d differs", dim);
        dv_release(ac), dv_release(ad), dv_release(ab);
    }
    /* rows of 1001 (inner == 1): the block-per-row kernel, NaN / inf / ties in row 0 */
    dv_tensor *rowd = dv_tensor_to(row, dv_device_cuda(0));
    dv_tensor *rc = dv_argmax(row, -1, false), *rd = dv_argmax(rowd, -1, false), *rb = dv_tensor_to(rd, DV_DEVICE_CPU);
    CHECK_MSG(memcmp(dv_data(rb), dv_data(rc), (size_t)dv_numel(rc) * 8) == 0, "argmax over rows of 1001 differs");
    dv_release(rowd), dv_release(rc), dv_release(rd), dv_release(rb);
    /* empty outer dims launch nothing; logsumexp over an empty dim is -inf */
    dv_tensor *e = dv_zeros_on(DV_F32, DV_SHAPE(0, 5), dv_device_cuda(0));
    dv_tensor *em = dv_max(e, 1, false), *ec = dv_cumsum(e, 0);
    CHECK(dv_numel(em) == 0 && dv_numel(ec) == 0);
    dv_tensor *e2 = dv_zeros_on(DV_F32, DV_SHAPE(3, 0), dv_device_cuda(0)), *el = dv_logsumexp(e2, 1, false);
    dv_tensor *elb = dv_tensor_to(el, DV_DEVICE_CPU);
    const float *pl = dv_data(elb);
    CHECK(dv_numel(elb) == 3 && pl[0] == -INFINITY && pl[2] == -INFINITY);
    dv_release(e), dv_release(em), dv_release(ec), dv_release(e2), dv_release(el), dv_release(elb);
    dv_release(x), dv_release(row), dv_release(fin), dv_release(s), dv_release(xd);
}

static dv_tensor *g_lse_last(dv_tensor **in) { return dv_logsumexp(in[0], -1, false); }
static dv_tensor *g_lse_mid(dv_tensor **in) { return dv_logsumexp(in[0], 1, false); }
static dv_tensor *g_cumsum_mid(dv_tensor **in) { return dv_cumsum(in[0], 1); }

/* random (off-grid) f32 values, shape (a, b, c) */
static dv_tensor *randn_input(int64_t a, int64_t b, int64_t c, uint64_t seed) {
    float *p = tc_randn(a * b * c, seed, 1.5);
    dv_tensor *x = dv_from_data(DV_F32, DV_SHAPE(a, b, c), p);
    free(p);
    return x;
}

/* logsumexp and cumsum along lines long enough for reduce_ext.cu's warp-per-line (inner 1,
 * 32 <= n < 512) and block-per-line (n >= 512 with inner 1, or few strided lines) kernels.
 * Tolerances: logsumexp 1e-6 as above (only the double sum's order changes besides the
 * device's expf / log). cumsum on the 1/4 grid exact: every double partial sum is exact, so
 * the order of the scan cannot show. cumsum on random values 1.2e-7 = 2^-23: the GPU's scan
 * and the CPU's loop both round a double prefix to f32, the doubles differ by ~n 2^-53 sum|x|
 * (reassociation), which moves the f32 result by at most one ulp (<= 2^-23 relative, and
 * < 2^-23 absolute below 1), and only when a prefix falls that close to a rounding boundary. */
TEST(cuda_logsumexp_cumsum_long_lines_match_cpu) {
    dv_tensor *rows = randn_input(3, 1, 5000, 41);  /* block per row, several scan chunks */
    dv_tensor *warp = randn_input(1, 64, 300, 42);  /* warp per row (8 a block), 3 chunks of 128 */
    dv_tensor *mid = randn_input(2, 3000, 5, 43);   /* dim 1: 10 strided lines of 3000 */
    dv_tensor *few = randn_input(1, 3, 37, 44);     /* warp per row, one partial chunk */
    tc_graph_parity("logsumexp rows of 5000", g_lse_last, (dv_tensor *[]){rows}, 1, 1e-6);
    tc_graph_parity("logsumexp rows of 300", g_lse_last, (dv_tensor *[]){warp}, 1, 1e-6);
    tc_graph_parity("logsumexp dim 1 of (2, 3000, 5)", g_lse_mid, (dv_tensor *[]){mid}, 1, 1e-6);
    tc_graph_parity("logsumexp rows of 37", g_lse_last, (dv_tensor *[]){few}, 1, 1e-6);
    tc_graph_parity("cumsum rows of 5000", g_cumsum_last, (dv_tensor *[]){rows}, 1, 1.2e-7);
    tc_graph_parity("cumsum rows of 300", g_cumsum_last, (dv_tensor *[]){warp}, 1, 1.2e-7);
    tc_graph_parity("cumsum dim 1 of (2, 3000, 5)", g_cumsum_mid, (dv_tensor *[]){mid}, 1, 1.2e-7);
    tc_graph_parity("cumsum rows of 37", g_cumsum_last, (dv_tensor *[]){few}, 1, 1.2e-7);
    /* forwards on the 1/4 grid with NaN / inf in the first lines: cumsum exact with NaN / +-inf
     * in the same places; logsumexp +inf for a line with +inf, NaN for one with a NaN and no
     * +inf (tc_compare_f32 matches NaNs; the infinities' signs are checked here) */
    dv_tensor *trows = tied_input(3, 1, 4099, 45, true), *twarp = tied_input(2, 40, 301, 46, true);
    dv_tensor *tmid = tied_input(2, 2500, 3, 47, true);
    dv_tensor *ins[3] = {trows, twarp, tmid};
    const int dims[3] = {-1, -1, 1};
    for (int i = 0; i < 3; i++) {
        dv_tensor *xd = dv_tensor_to(ins[i], dv_device_cuda(0));
        for (int op = 0; op < 2; op++) {
            dv_tensor *yc = op ? dv_cumsum(ins[i], dims[i]) : dv_logsumexp(ins[i], dims[i], false);
            dv_tensor *yd = op ? dv_cumsum(xd, dims[i]) : dv_logsumexp(xd, dims[i], false);
            dv_tensor *yb = dv_tensor_to(yd, DV_DEVICE_CPU);
            char what[80];
            snprintf(what, sizeof what, "%s with NaN / inf, input %d", op ? "cumsum" : "logsumexp", i);
            tc_compare_f32(what, dv_data(yb), dv_data(yc), dv_numel(yc), op ? 0 : 1e-6);
            const float *pc = dv_data(yc), *pb = dv_data(yb);
            int bad = 0, special = 0; /* the inputs are built to give some */
            for (int64_t j = 0; j < dv_numel(yc); j++) {
                bad += isinf(pc[j]) != isinf(pb[j]) || (isinf(pc[j]) && (pc[j] > 0) != (pb[j] > 0));
                special += !isfinite(pc[j]);
            }
            CHECK_MSG(bad == 0 && special > 0, "%s: %d outputs differ in infinity (%d not finite on the CPU)", what,
                      bad, special);
            dv_release(yc), dv_release(yd), dv_release(yb);
        }
        dv_release(xd);
    }
    dv_release(rows), dv_release(warp), dv_release(mid), dv_release(few);
    dv_release(trows), dv_release(twarp), dv_release(tmid);
}

static dv_tensor *g_maximum(dv_tensor **in) { return dv_maximum(in[0], in[1]); }
static dv_tensor *g_minimum(dv_tensor **in) { return dv_minimum(in[0], in[1]); }
static dv_tensor *g_where(dv_tensor **in) {
    dv_tensor *c = dv_binary(DV_BINARY_GT, in[2], in[1]); /* (1, 1, 9) bool against (5, 1, 9) */
    dv_tensor *y = dv_where(c, in[0], in[1]);
    dv_release(c);
    return y;
}
static dv_tensor *g_masked_fill(dv_tensor **in) {
    dv_tensor *c = dv_binary(DV_BINARY_LT, in[1], in[0]);
    dv_tensor *y = dv_masked_fill(in[0], c, -1e9);
    dv_release(c);
    return y;
}

TEST(cuda_where_and_maximum_backward_match_cpu) {
    dv_tensor *a = tied_input(5, 7, 9, 4, true), *b = tied_input(5, 1, 9, 5, true), *t = tied_input(1, 1, 9, 6, false);
    /* (5, 7, 9) vs (5, 1, 9): broadcast, ties on the grid, a NaN on either side, inf - inf */
    /* b's gradients are sums over the broadcast dim (the device's reduction order): 1e-6 */
    tc_graph_parity("maximum (ties, NaN, broadcast)", g_maximum, (dv_tensor *[]){a, b}, 2, 1e-6);
    tc_graph_parity("minimum (ties, NaN, broadcast)", g_minimum, (dv_tensor *[]){a, b}, 2, 1e-6);
    tc_graph_parity("where (broadcast cond and operand, inf / NaN not taken)", g_where, (dv_tensor *[]){a, b, t}, 3, 1e-6);
    tc_graph_parity("masked_fill", g_masked_fill, (dv_tensor *[]){a, b}, 2, 1e-6);
    dv_release(a), dv_release(b), dv_release(t);
}

/* three steps of SGD (each configuration), EMA and clip_grad_norm on a CPU model and its
 * device copy, with the same gradients */
TEST(cuda_sgd_ema_clip_match_cpu) {
    const double cfgs[][4] = {{0.1, 0, 0, 0}, {0.05, 0.9, 0.1, 0.01}, {0.02, 0.8, 0, 0.003}}; /* lr mom damp wd */
    for (int ci = 0; ci < 4; ci++) {
        const double *c = cfgs[ci < 3 ? ci : 2];
        dv_tensor *p[2][2];
        dv_params ps[2] = {{0}, {0}};
        dv_sgd *o[2];
        dv_ema *e[2];
        dv_rng r = dv_rng_new(60 + ci);
        p[0][0] = dv_randn(&r, DV_F32, DV_SHAPE(37, 29)), p[0][1] = dv_randn(&r, DV_F32, DV_SHAPE(1001));
        for (int k = 0; k < 2; k++) p[1][k] = dv_clone(p[0][k]); /* moved to the device below */
        for (int side = 0; side < 2; side++) {
            dv_params_add(&ps[side], "w", p[side][0]), dv_params_add(&ps[side], "b", p[side][1]);
            dv_sgd_config cfg = dv_sgd_config_default(c[0]);
            cfg.momentum = c[1], cfg.dampening = c[2], cfg.weight_decay = c[3], cfg.nesterov = ci == 3;
            o[side] = dv_sgd_new();
            dv_sgd_add_group(o[side], &ps[side], cfg);
            e[side] = dv_ema_new(&ps[side], 0.95);
        }
        /* the optimisers are built on CPU parameters (dv_optim_check_param); then the
         * parameters and the state move in place, as a training run does. Not the SGD step
         * counters: the host reads them. */
        dv_tensors_move_(ps[1].tensors, ps[1].n, dv_device_cuda(0));
        const char *const *names;
        dv_tensor *const *state;
        int ns = dv_ema_state(e[1], &names, &state);
        dv_tensors_move_(state, ns, dv_device_cuda(0));
        ns = dv_sgd_state(o[1], &names, &state);
        for (int k = 0; k < ns; k++)
            if (strstr(names[k], "momentum_buffer")) dv_tensor_move_(state[k], dv_device_cuda(0));
        for (int t = 0; t < 3; t++) {
            for (int k = 0; k < 2; k++) {
                p[0][k]->grad = dv_randn(&r, DV_F32, p[0][k]->shape, p[0][k]->ndim);
                float *gp = dv_data(p[0][k]->grad);
                for (int64_t i = 0; t == 1 && i < dv_numel(p[0][k]->grad); i++) gp[i] *= 100.0f; /* step 1 is clipped */
                p[1][k]->grad = dv_tensor_to(p[0][k]->grad, dv_device_cuda(0));
            }
            double n0 = dv_clip_grad_norm(&ps[0], 50.0), n1 = dv_clip_grad_norm(&ps[1], 50.0);
            CHECK_MSG(fabs(n0 - n1) <= 1e-12 * n0, "config %d step %d: grad norm %.17g vs %.17g", ci, t, n1, n0);
            for (int k = 0; k < 2; k++) {
                dv_tensor *gb = dv_tensor_to(p[1][k]->grad, DV_DEVICE_CPU);
                tc_compare_f32("clipped gradient", dv_data(gb), dv_data(p[0][k]->grad), dv_numel(gb), 1e-6);
                dv_release(gb);
            }
            dv_sgd_step(o[0], 1.0), dv_sgd_step(o[1], 1.0);
            dv_ema_update(e[0]), dv_ema_update(e[1]);
            for (int k = 0; k < 2; k++) {
                dv_tensor *pb = dv_tensor_to(p[1][k], DV_DEVICE_CPU);
                tc_compare_f32("sgd step", dv_data(pb), dv_data(p[0][k]), dv_numel(pb), 1e-6);
                dv_release(pb);
                dv_release(p[0][k]->grad), dv_release(p[1][k]->grad);
                p[0][k]->grad = p[1][k]->grad = NULL;
            }
        }
        /* the averages, swapped in (the device swap) and back */
        dv_ema_swap_in(e[0]), dv_ema_swap_in(e[1]);
        for (int k = 0; k < 2; k++) {
            dv_tensor *pb = dv_tensor_to(p[1][k], DV_DEVICE_CPU);
            tc_compare_f32("ema average", dv_data(pb), dv_data(p[0][k]), dv_numel(pb), 1e-6);
            dv_release(pb);
        }
        dv_ema_swap_out(e[0]), dv_ema_swap_out(e[1]);
        for (int k = 0; k < 2; k++) {
            dv_tensor *pb = dv_tensor_to(p[1][k], DV_DEVICE_CPU);
            tc_compare_f32("weights after swap_out", dv_data(pb), dv_data(p[0][k]), dv_numel(pb), 1e-6);
            dv_release(pb);
        }
        for (int side = 0; side < 2; side++) {
            dv_ema_free(e[side]), dv_sgd_free(o[side]), dv_params_free(&ps[side]);
            dv_release(p[side][0]), dv_release(p[side][1]);
        }
    }
}
#endif
