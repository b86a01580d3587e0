/* tests/cuda/test_cuda_nn.c — the fused nn kernels on the GPU (kernels/cuda/rotary.cu,
 * bias_act.cu, modulate.cu, diffusion.cu) against the portable CPU kernels on the same
 * inputs, and the nn ops that dispatch to them (dv_rope, dv_rotary_apply, dv_bias_act,
 * dv_modulate, dv_film, dv_layer_norm_modulate, dv_gated_residual, dv_ddpm_step, dv_ddim_step,
 * dv_attention) forward and backward through autograd on cuda:0 against the same graph on the
 * CPU. Shapes are odd on purpose (rows not a multiple of a block, C above and below 256).
 * Tolerances (relative, max(1, |x|) scaled): elementwise 2e-6 (CUDA libm, FMA contraction),
 * row / column sums 2e-5 (tree or same-order f32 sums), attention 3e-2 (bf16 tensor cores
 * against the CPU in f32 on the same bf16-rounded inputs; o and dO are rounded to bf16 too). */
#ifdef DV_HAVE_CUDA
#include "tests/cuda/cuda_util.h"

#include "kernels/bias_act.h"
#include "kernels/cuda/kernels.h"
#include "kernels/diffusion.h"
#include "kernels/modulate.h"
#include "kernels/rotary.h"
#include "nn/attention.h"
#include "nn/bias_act.h"
#include "nn/diffusion.h"
#include "nn/modulate.h"
#include "nn/rotary.h"
#include "tensor/ops.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define CK(call) dv_cuda_check((call), #call)

/* ---- kernels against the portable kernels --------------------------------------------------- */

TEST(cuda_rotary_kernel_matches_cpu) {
    const int64_t nb = 2, nh = 3, T = 37, D = 70, n = nb * nh * T * D, nt = nb * T * D;
    float *x = tc_randn(n, 1, 1.0), *c = tc_randn(nt, 2, 1.0), *s = tc_randn(nt, 3, 1.0), *want = malloc(n * 4);
    float *dx = tc_upload(x, n * 4), *dc = tc_upload(c, nt * 4), *ds = tc_upload(s, nt * 4), *dy = tc_dalloc(n * 4);
    const int64_t rots[2] = {70, 46};
    for (int ri = 0; ri < 2; ri++)
        for (int inter = 0; inter < 2; inter++)
            for (int tr = 0; tr < 2; tr++)
                for (int pb = 0; pb < 2; pb++) {
                    int64_t rot = rots[ri], tab_b = pb ? T * rot : 0;
                    dv_rotary_f32_portable(nb, nh, T, D, rot, inter, tr, x, c, s, tab_b, want);
                    CK(dv_cu_rotary_f32(nb, nh, T, D, rot, inter, tr, dx, dc, ds, tab_b, dy, tc_stream()));
                    float *got = tc_download(dy, n * 4);
                    char what[96];
                    snprintf(what, sizeof what, "rotary rot %lld inter %d transpose %d per-batch %d", (long long)rot,
                             inter, tr, pb);
                    tc_compare_f32(what, got, want, n, 2e-6);
                    free(got);
                }
    free(x), free(c), free(s), free(want);
    tc_dfree(dx, n * 4), tc_dfree(dc, nt * 4), tc_dfree(ds, nt * 4), tc_dfree(dy, n * 4);
}

TEST(cuda_bias_act_kernel_matches_cpu) {
    const int64_t shapes[3][2] = {{333, 77}, {1000, 257}, {5, 1}}; /* R > 64 blocks, N > a block, one column */
    for (int si = 0; si < 3; si++) {
        int64_t R = shapes[si][0], N = shapes[si][1], n = R * N;
        float *x = tc_randn(n, 10 + si, 2.0), *b = tc_randn(N, 20 + si, 1.0), *gy = tc_randn(n, 30 + si, 1.0);
        float *y = malloc(n * 4), *gx = malloc(n * 4), *gb = malloc(N * 4);
        float *dx = tc_upload(x, n * 4), *db = tc_upload(b, N * 4), *dgy = tc_upload(gy, n * 4);
        float *dy = tc_dalloc(n * 4), *dgx = tc_dalloc(n * 4), *dgb = tc_dalloc(N * 4);
        size_t wb = dv_cu_bias_act_work_bytes(R, N);
        void *work = tc_dalloc((int64_t)wb);
        for (int a = 0; a < DV_BIAS_ACT_COUNT; a++) {
            for (int hb = 0; hb < 2; hb++) {
                const float *bb = hb ? b : NULL, *dbb = hb ? db : NULL;
                dv_bias_act_fwd_f32_portable(a, R, N, x, bb, y);
                dv_bias_act_bwd_f32_portable(a, R, N, x, bb, gy, gx, gb);
                CK(dv_cu_bias_act_fwd_f32(a, R, N, dx, dbb, dy, tc_stream()));
                CK(dv_cu_bias_act_bwd_f32(a, R, N, dx, dbb, dgy, dgx, dgb, work, tc_stream()));
                float *g1 = tc_download(dy, n * 4), *g2 = tc_download(dgx, n * 4), *g3 = tc_download(dgb, N * 4);
                tc_compare_f32(dv_bias_act_name(a), g1, y, n, 2e-6);
                tc_compare_f32(dv_bias_act_name(a), g2, gx, n, 4e-6);
                tc_compare_f32(dv_bias_act_name(a), g3, gb, N, 2e-5);
                free(g1), free(g2), free(g3);
            }
            /* gx in place over gy (the CPU contract allows it), and gb alone */
            dv_bias_act_bwd_f32_portable(a, R, N, x, b, gy, gx, gb);
            float *dg2 = tc_upload(gy, n * 4);
            CK(dv_cu_bias_act_bwd_f32(a, R, N, dx, db, dg2, dg2, dgb, work, tc_stream()));
            float *g2 = tc_download(dg2, n * 4), *g3 = tc_download(dgb, N * 4);
            tc_compare_f32("bias_act gx aliasing gy", g2, gx, n, 4e-6);
            tc_compare_f32("bias_act gb with gx aliasing gy", g3, gb, N, 2e-5);
            free(g2), free(g3);
            CK(dv_cu_bias_act_bwd_f32(a, R, N, dx, db, dgy, NULL, dgb, work, tc_stream()));
            g3 = tc_download(dgb, N * 4);
            tc_compare_f32("bias_act gb without gx", g3, gb, N, 2e-5);
            free(g3);
            tc_dfree(dg2, n * 4);
        }
        free(x), free(b), free(gy), free(y), free(gx), free(gb);
        tc_dfree(dx, n * 4), tc_dfree(db, N * 4), tc_dfree(dgy, n * 4), tc_dfree(dy, n * 4), tc_dfree(dgx, n * 4);
        tc_dfree(dgb, N * 4), tc_dfree(work, (int64_t)wb);
    }
}

TEST(cuda_modulate_kernels_match_cpu) {
    const int64_t shapes[3][3] = {{3, 17, 130}, {2, 5, 1000}, {1, 1, 7}};
    for (int si = 0; si < 3; si++) {
        int64_t B = shapes[si][0], T = shapes[si][1], C = shapes[si][2], n = B * T * C, p = B * C, r = B * T;
        float *x = tc_randn(n, 40 + si, 1.5), *h = tc_randn(n, 50 + si, 1.0), *g = tc_randn(n, 60 + si, 1.0);
        float *sh = tc_randn(p, 70 + si, 0.5), *sc = tc_randn(p, 80 + si, 0.5);
        for (int64_t i = 0; i < n; i++) x[i] += 0.3f; /* a nonzero mean for the layer norm */
        float *y = malloc(n * 4), *gx = malloc(n * 4), *gsh = malloc(p * 4), *gsc = malloc(p * 4);
        float *mean = malloc(r * 4), *rstd = malloc(r * 4);
        float *dx = tc_upload(x, n * 4), *dh = tc_upload(h, n * 4), *dg = tc_upload(g, n * 4);
        float *dsh = tc_upload(sh, p * 4), *dsc = tc_upload(sc, p * 4);
        float *dy = tc_dalloc(n * 4), *dgx = tc_dalloc(n * 4), *dgsh = tc_dalloc(p * 4), *dgsc = tc_dalloc(p * 4);
        float *dmean = tc_dalloc(r * 4), *drstd = tc_dalloc(r * 4);
        for (int one = 0; one < 2; one++)
            for (int has_shift = 0; has_shift < 2; has_shift++) {
                dv_modulate_f32_portable(B, T, C, x, has_shift ? sh : NULL, sc, (float)one, y);
                CK(dv_cu_modulate_f32(B, T, C, dx, has_shift ? dsh : NULL, dsc, (float)one, dy, tc_stream()));
                float *got = tc_download(dy, n * 4);
                tc_compare_f32("modulate y", got, y, n, 2e-6);
                free(got);
            }
        for (int one = 0; one < 2; one++) {
            dv_modulate_bwd_f32_portable(B, T, C, x, sc, (float)one, g, gx, gsh, gsc);
            CK(dv_cu_modulate_bwd_f32(B, T, C, dx, dsc, (float)one, dg, dgx, dgsh, dgsc, tc_stream()));
            float *a = tc_download(dgx, n * 4), *b = tc_download(dgsh, p * 4), *c = tc_download(dgsc, p * 4);
            tc_compare_f32("modulate gx", a, gx, n, 2e-6);
            tc_compare_f32("modulate gshift", b, gsh, p, 2e-5);
            tc_compare_f32("modulate gscale", c, gsc, p, 2e-5);
            free(a), free(b), free(c);
        }
        dv_ln_modulate_f32_portable(B, T, C, x, sh, sc, 1e-6, y, mean, rstd);
        CK(dv_cu_ln_modulate_f32(B, T, C, dx, dsh, dsc, 1e-6, dy, dmean, drstd, tc_stream()));
        float *a = tc_download(dy, n * 4), *b = tc_download(dmean, r * 4), *c = tc_download(drstd, r * 4);
        tc_compare_f32("ln_modulate y", a, y, n, 2e-5);
        tc_compare_f32("ln_modulate mean", b, mean, r, 2e-5);
        tc_compare_f32("ln_modulate rstd", c, rstd, r, 2e-5);
        free(a), free(b), free(c);
        /* the backward from the CPU's statistics, so only the backward is compared */
        dv_cuda_copy_h2d(0, dmean, mean, r * 4), dv_cuda_copy_h2d(0, drstd, rstd, r * 4);
        dv_ln_modulate_bwd_f32_portable(B, T, C, x, mean, rstd, sc, g, gx, gsh, gsc);
        CK(dv_cu_ln_modulate_bwd_f32(B, T, C, dx, dmean, drstd, dsc, dg, dgx, dgsh, dgsc, tc_stream()));
        a = tc_download(dgx, n * 4), b = tc_download(dgsh, p * 4), c = tc_download(dgsc, p * 4);
        tc_compare_f32("ln_modulate gx", a, gx, n, 2e-5);
        tc_compare_f32("ln_modulate gshift", b, gsh, p, 2e-5);
        tc_compare_f32("ln_modulate gscale", c, gsc, p, 2e-5);
        free(a), free(b), free(c);
        dv_gated_residual_f32_portable(B, T, C, x, sc, h, y);
        CK(dv_cu_gated_residual_f32(B, T, C, dx, dsc, dh, dy, tc_stream()));
        a = tc_download(dy, n * 4);
        tc_compare_f32("gated_residual", a, y, n, 2e-6);
        free(a);
        free(x), free(h), free(g), free(sh), free(sc), free(y), free(gx), free(gsh), free(gsc), free(mean), free(rstd);
        tc_dfree(dx, n * 4), tc_dfree(dh, n * 4), tc_dfree(dg, n * 4), tc_dfree(dsh, p * 4), tc_dfree(dsc, p * 4);
        tc_dfree(dy, n * 4), tc_dfree(dgx, n * 4), tc_dfree(dgsh, p * 4), tc_dfree(dgsc, p * 4);
        tc_dfree(dmean, r * 4), tc_dfree(drstd, r * 4);
    }
}

TEST(cuda_diffusion_step_kernel_matches_cpu) {
    const int64_t n = 100003;
    float *m = tc_randn(n, 90, 2.0), *x = tc_randn(n, 91, 2.0), *z = tc_randn(n, 92, 1.0);
    float *out = malloc(n * 4), *x0 = malloc(n * 4);
    float *dm = tc_upload(m, n * 4), *dx = tc_upload(x, n * 4), *dz = tc_upload(z, n * 4);
    float *dout = tc_dalloc(n * 4), *dx0 = tc_dalloc(n * 4);
    for (int clip = 0; clip < 2; clip++)
        for (int noisy = 0; noisy < 2; noisy++) {
            dv_diffusion_coef c = {.ax = 1.02, .am = -0.2, .clip = clip, .clip_range = 1.0,
                                   .c0 = 0.3, .cx = 0.69, .cm = 0.01, .cz = 0.1};
            dv_diffusion_step_f32_portable(n, m, x, noisy ? z : NULL, out, x0, &c);
            CK(dv_cu_diffusion_step_f32(n, dm, dx, noisy ? dz : NULL, dout, dx0, &c, tc_stream()));
            float *a = tc_download(dout, n * 4), *b = tc_download(dx0, n * 4);
            tc_compare_f32("diffusion step out", a, out, n, 2e-6);
            tc_compare_f32("diffusion step pred_x0", b, x0, n, 2e-6);
            free(a), free(b);
        }
    /* in place: out aliases sample, no pred_x0 */
    dv_diffusion_coef c = {.ax = 0.9, .am = 0.1, .clip = 1, .clip_range = 0.5, .c0 = 1, .cx = 0.5, .cm = -0.5, .cz = 0.2};
    dv_diffusion_step_f32_portable(n, m, x, z, out, NULL, &c);
    CK(dv_cu_diffusion_step_f32(n, dm, dx, dz, dx, NULL, &c, tc_stream()));
    float *a = tc_download(dx, n * 4);
    tc_compare_f32("diffusion step in place", a, out, n, 2e-6);
    free(a);
    free(m), free(x), free(z), free(out), free(x0);
    tc_dfree(dm, n * 4), tc_dfree(dx, n * 4), tc_dfree(dz, n * 4), tc_dfree(dout, n * 4), tc_dfree(dx0, n * 4);
}

/* ---- the nn ops through autograd -------------------------------------------------------------- */

static dv_tensor *g_rope_half(dv_tensor **in) {
    dv_tensor *pos = dv_arange(DV_F32, 0, 19, 1);
    dv_tensor *y = dv_rope(in[0], pos, 10000.0, 40, DV_ROPE_HALF);
    dv_release(pos);
    return y;
}
static dv_tensor *g_rope_inter(dv_tensor **in) {
    dv_tensor *pos = dv_arange(DV_F32, 3, 22, 1);
    dv_tensor *y = dv_rope(in[0], pos, 500.0, 48, DV_ROPE_INTERLEAVED);
    dv_release(pos);
    return y;
}
/* per-batch tables on the device (in[1], in[2] carry no gradient through the op) */
static dv_tensor *g_rotary_tables(dv_tensor **in) { return dv_rotary_apply(in[0], in[1], in[2], true); }
static dv_bias_act_kind g_act;
static dv_tensor *g_bias_act(dv_tensor **in) { return dv_bias_act(in[0], in[1], g_act); }
static dv_tensor *g_modulate(dv_tensor **in) { return dv_modulate(in[0], in[1], in[2]); }
static dv_tensor *g_film(dv_tensor **in) { return dv_film(in[0], in[1], in[2]); }
static dv_tensor *g_ln_modulate(dv_tensor **in) { return dv_layer_norm_modulate(in[0], in[1], in[2], 1e-6); }
static dv_tensor *g_gated(dv_tensor **in) { return dv_gated_residual(in[0], in[1], in[2]); }
/* a DiT block's conditioning path end to end: ln+modulate -> bias+gelu -> gated residual */
static dv_tensor *g_dit_chain(dv_tensor **in) {
    dv_tensor *a = dv_layer_norm_modulate(in[0], in[1], in[2], 1e-6);
    dv_tensor *b = dv_bias_act(a, in[3], DV_BIAS_ACT_GELU_TANH);
    dv_tensor *c = dv_gated_residual(in[0], in[2], b);
    dv_release(a), dv_release(b);
    return c;
}

TEST(cuda_nn_fused_ops_match_cpu) {
    dv_rng r = dv_rng_new(5);
    dv_tensor *x4 = dv_randn(&r, DV_F32, DV_SHAPE(2, 3, 19, 64));
    tc_graph_parity("rope half (rot 40 of 64)", g_rope_half, &x4, 1, 2e-6);
    tc_graph_parity("rope interleaved (rot 48 of 64)", g_rope_inter, &x4, 1, 2e-6);
    dv_tensor *c = dv_randn(&r, DV_F32, DV_SHAPE(2, 19, 64)), *s = dv_randn(&r, DV_F32, DV_SHAPE(2, 19, 64));
    dv_tensor *x3 = dv_randn(&r, DV_F32, DV_SHAPE(2, 19, 64));
    tc_graph_parity("rotary_apply per-batch tables", g_rotary_tables, (dv_tensor *[]){x3, c, s}, 3, 2e-6);

    dv_tensor *xa = dv_randn(&r, DV_F32, DV_SHAPE(3, 41, 129)), *ba = dv_randn(&r, DV_F32, DV_SHAPE(129));
    for (int a = 0; a < DV_BIAS_ACT_COUNT; a++) {
        g_act = (dv_bias_act_kind)a;
        tc_graph_parity(dv_bias_act_name(a), g_bias_act, (dv_tensor *[]){xa, ba}, 2, 2e-5);
    }

    dv_tensor *xm = dv_randn(&r, DV_F32, DV_SHAPE(3, 17, 129));
    dv_tensor *sh = dv_randn(&r, DV_F32, DV_SHAPE(3, 129)), *sc = dv_randn(&r, DV_F32, DV_SHAPE(3, 129));
    dv_tensor *hb = dv_randn(&r, DV_F32, DV_SHAPE(129));
    tc_graph_parity("modulate", g_modulate, (dv_tensor *[]){xm, sh, sc}, 3, 2e-5);
    tc_graph_parity("film", g_film, (dv_tensor *[]){xm, sc, sh}, 3, 2e-5);
    tc_graph_parity("layer_norm_modulate", g_ln_modulate, (dv_tensor *[]){xm, sh, sc}, 3, 5e-5);
    dv_tensor *hm = dv_randn(&r, DV_F32, DV_SHAPE(3, 17, 129));
    tc_graph_parity("gated_residual", g_gated, (dv_tensor *[]){xm, sc, hm}, 3, 2e-5);
    tc_graph_parity("ln_modulate -> bias_act -> gated_residual", g_dit_chain, (dv_tensor *[]){xm, sh, sc, hb}, 4, 1e-4);

    dv_release(x4), dv_release(c), dv_release(s), dv_release(x3), dv_release(xa), dv_release(ba);
    dv_release(xm), dv_release(sh), dv_release(sc), dv_release(hb), dv_release(hm);
}

/* a few DDPM and DDIM steps on the device against the CPU, noise from the same rng stream
 * (the CUDA generator gives the CPU's numbers) */
TEST(cuda_ddpm_ddim_steps_match_cpu) {
    dv_rng r = dv_rng_new(9);
    dv_tensor *x = dv_randn(&r, DV_F32, DV_SHAPE(4, 7, 33)), *eps = dv_randn(&r, DV_F32, DV_SHAPE(4, 7, 33));
    dv_tensor *xd = dv_tensor_to(x, dv_device_cuda(0)), *epsd = dv_tensor_to(eps, dv_device_cuda(0));
    dv_ddpm_config pc = dv_ddpm_config_default();
    dv_ddpm *ddpm = dv_ddpm_new(&pc);
    dv_ddpm_set_timesteps(ddpm, 10);
    dv_ddim_config ic = dv_ddim_config_default();
    dv_ddim *ddim = dv_ddim_new(&ic);
    dv_ddim_set_timesteps(ddim, 10);
    for (int k = 0; k < 3; k++) {
        int64_t t = ddpm->timesteps[k * 4];
        dv_rng rc = dv_rng_new(100 + k), rg = dv_rng_new(100 + k);
        dv_tensor *yc = dv_ddpm_step(ddpm, eps, t, x, &rc), *yg = dv_ddpm_step(ddpm, epsd, t, xd, &rg);
        dv_tensor *yb = dv_tensor_to(yg, DV_DEVICE_CPU);
        tc_compare_f32("ddpm step", dv_data(yb), dv_data(yc), dv_numel(yc), 2e-6);
        dv_release(yc), dv_release(yg), dv_release(yb);
        int64_t ti = ddim->timesteps[k * 4];
        rc = dv_rng_new(200 + k), rg = dv_rng_new(200 + k);
        yc = dv_ddim_step(ddim, eps, ti, x, 0.5, &rc), yg = dv_ddim_step(ddim, epsd, ti, xd, 0.5, &rg);
        yb = dv_tensor_to(yg, DV_DEVICE_CPU);
        tc_compare_f32("ddim step eta 0.5", dv_data(yb), dv_data(yc), dv_numel(yc), 2e-6);
        dv_release(yc), dv_release(yg), dv_release(yb);
    }
    dv_ddpm_free(ddpm), dv_ddim_free(ddim);
    dv_release(x), dv_release(eps), dv_release(xd), dv_release(epsd);
}

/* ---- attention ------------------------------------------------------------------------------ */

static dv_attention_opts g_attn;
static dv_tensor *g_keep_cpu, *g_keep_dev; /* the key padding mask on each side, or NULL */
static dv_tensor *g_attention(dv_tensor **in) {
    dv_attention_opts o = g_attn;
    o.key_padding_mask = in[0]->device.type == DV_CUDA ? g_keep_dev : g_keep_cpu;
    return dv_attention(in[0], in[1], in[2], &o);
}

/* f32 values that are exactly bf16, so both sides see the same inputs */
static dv_tensor *bf16_exact(dv_rng *r, const int64_t *shape, int nd) {
    dv_tensor *a = dv_randn(r, DV_F32, shape, nd), *b = dv_cast(a, DV_BF16), *c = dv_cast(b, DV_F32);
    dv_release(a), dv_release(b);
    return c;
}

TEST(cuda_attention_op_matches_cpu) {
    /* (B, Hq, Hkv, Tq, Tk, D): MHA, GQA, odd lengths, D 40 (not a multiple of 16) and 128,
     * Tq > Tk under the causal mask (rows that see no key), one query against 129 keys */
    const int64_t cases[4][6] = {{2, 4, 4, 37, 37, 64}, {1, 8, 2, 70, 45, 40}, {2, 2, 1, 1, 129, 128}, {1, 3, 3, 65, 65, 32}};
    for (int ci = 0; ci < 4; ci++) {
        const int64_t *cs = cases[ci];
        dv_rng r = dv_rng_new(300 + ci);
        dv_tensor *q = bf16_exact(&r, DV_SHAPE(cs[0], cs[1], cs[3], cs[5]));
        dv_tensor *k = bf16_exact(&r, DV_SHAPE(cs[0], cs[2], cs[4], cs[5]));
        dv_tensor *v = bf16_exact(&r, DV_SHAPE(cs[0], cs[2], cs[4], cs[5]));
        for (int mode = 0; mode < 3; mode++) {
            g_attn = (dv_attention_opts){0};
            g_keep_cpu = g_keep_dev = NULL;
            if (mode == 1) g_attn.causal = true, g_attn.causal_offset = cs[4] - cs[3];
            if (mode == 2) { /* key padding: drop every third key of batch 0 */
                g_keep_cpu = dv_zeros(DV_U8, DV_SHAPE(cs[0], cs[4]));
                uint8_t *kp = dv_data(g_keep_cpu);
                for (int64_t i = 0; i < cs[0] * cs[4]; i++) kp[i] = !(i < cs[4] && i % 3 == 1);
                g_keep_dev = dv_tensor_to(g_keep_cpu, dv_device_cuda(0));
            }
            char what[128];
            snprintf(what, sizeof what, "attention B %lld Hq %lld Hkv %lld Tq %lld Tk %lld D %lld mode %d",
                     (long long)cs[0], (long long)cs[1], (long long)cs[2], (long long)cs[3], (long long)cs[4],
                     (long long)cs[5], mode);
            tc_graph_parity(what, g_attention, (dv_tensor *[]){q, k, v}, 3, 3e-2);
            dv_release(g_keep_cpu), dv_release(g_keep_dev);
        }
        dv_release(q), dv_release(k), dv_release(v);
    }
}
#endif
