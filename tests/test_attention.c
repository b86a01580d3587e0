/* tests/test_attention.c — the fused attention op (nn/attention.c): f64 gradient checks (causal,
 * padded, cross Tq != Tk, GQA, bias with gradient, a non-contiguous q from a (B, T, H, D)
 * layout), AVX-512 vs portable, PyTorch fixtures (tests/reference/gen_attention.py), masks and
 * edge cases (fully masked rows, zero sizes, the decode-step offset, bad calls), dropout on the
 * weights (gradients, parity, the mask against its definition, statistics) and a check that
 * memory grows linearly in T. */
#include "kernels/attention.h"
#include "nn/attention.h"
#include "kernels/cpu.h"
#include "tests/util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* how a test case calls the op: inputs are q, k, v, then mask and bias where their index >= 0 */
typedef struct {
    bool causal;
    int64_t offset;
    double scale;
    int mask_in, bias_in;  /* index of the key padding mask / bias among the inputs, -1 = none */
    bool q_bthd;           /* in[0] is stored (B, T, H, D): transpose it to (B, H, T, D) */
    double dropout;        /* on the attention weights, with the mask of seed */
    uint64_t seed;
} attn_case;

static dv_tensor *run_attn(dv_tensor **in, void *ctx) {
    const attn_case *c = ctx;
    dv_attention_opts o = {.scale = c->scale, .causal = c->causal, .causal_offset = c->offset,
                           .dropout = c->dropout, .dropout_seed = c->seed};
    if (c->mask_in >= 0) o.key_padding_mask = in[c->mask_in];
    if (c->bias_in >= 0) o.bias = in[c->bias_in];
    dv_tensor *q = c->q_bthd ? dv_transpose(in[0], 1, 2) : dv_retain(in[0]);
    dv_tensor *y = dv_attention(q, in[1], in[2], &o);
    dv_release(q);
    return y;
}

/* a (B, Tk) bool mask: keep[b][j] = 1 except where drop(b, j) */
static dv_tensor *make_keep(int64_t B, int64_t Tk, int every, int tail) {
    dv_tensor *m = dv_ones(DV_BOOL, DV_SHAPE(B, Tk));
    for (int64_t b = 0; b < B; b++)
        for (int64_t j = 0; j < Tk; j++) {
            bool drop = (every && (j + b) % every == every - 1) || (b == B - 1 && j >= Tk - tail);
            if (drop) dv_set(m, (int64_t[]){b, j}, 0);
        }
    return m;
}

static void qkv(dv_dtype dt, int64_t B, int64_t Hq, int64_t Hkv, int64_t Tq, int64_t Tk, int64_t D, int64_t Dv,
                uint64_t seed, dv_tensor **out) {
    out[0] = ut_randn_leaf(dt, DV_SHAPE(B, Hq, Tq, D), seed);
    out[1] = ut_randn_leaf(dt, DV_SHAPE(B, Hkv, Tk, D), seed + 1);
    out[2] = ut_randn_leaf(dt, DV_SHAPE(B, Hkv, Tk, Dv), seed + 2);
}

static void release_all(dv_tensor **t, int n) {
    for (int i = 0; i < n; i++) dv_release(t[i]);
}

/* ---- f64 gradient checks ------------------------------------------------------------------ */
TEST(attention_gradcheck) {
    dv_tensor *in[5];
    attn_case c = {.mask_in = -1, .bias_in = -1};

    qkv(DV_F64, 2, 2, 2, 3, 4, 3, 3, 10, in);
    ut_gradcheck("attention plain", run_attn, in, 3, &c, 1e-6);
    release_all(in, 3);

    qkv(DV_F64, 1, 2, 2, 5, 5, 4, 4, 20, in);
    c.causal = true;
    ut_gradcheck("attention causal", run_attn, in, 3, &c, 1e-6);
    release_all(in, 3);

    /* cross Tq != Tk: causal top-left, then a decode-style offset */
    qkv(DV_F64, 1, 1, 1, 3, 6, 4, 2, 30, in);
    ut_gradcheck("attention cross causal", run_attn, in, 3, &c, 1e-6);
    c.offset = 3;
    c.scale = 0.7;
    ut_gradcheck("attention cross causal offset 3, scale 0.7", run_attn, in, 3, &c, 1e-6);
    release_all(in, 3);
    c = (attn_case){.mask_in = -1, .bias_in = -1};

    /* key padding: batch 1 loses its last 2 keys, both batches every third key */
    qkv(DV_F64, 2, 1, 1, 4, 5, 3, 3, 40, in);
    in[3] = make_keep(2, 5, 3, 2);
    c.mask_in = 3;
    ut_gradcheck("attention padded", run_attn, in, 4, &c, 1e-6);
    c.causal = true;
    ut_gradcheck("attention padded causal", run_attn, in, 4, &c, 1e-6);
    release_all(in, 4);
    c = (attn_case){.mask_in = -1, .bias_in = -1};

    /* GQA: 4 query heads on 2 kv heads, and multi-query (1 kv head) */
    qkv(DV_F64, 1, 4, 2, 3, 4, 3, 3, 50, in);
    ut_gradcheck("attention gqa", run_attn, in, 3, &c, 1e-6);
    release_all(in, 3);
    qkv(DV_F64, 2, 3, 1, 2, 3, 2, 3, 60, in);
    c.causal = true;
    ut_gradcheck("attention mqa causal", run_attn, in, 3, &c, 1e-6);
    release_all(in, 3);
    c = (attn_case){.mask_in = -1, .bias_in = -1};

    /* biases with a gradient: full (1, H, Tq, Tk), per key (B, 1, 1, Tk), 2-D (Tq, Tk) */
    qkv(DV_F64, 2, 2, 2, 3, 4, 3, 3, 70, in);
    c.bias_in = 3;
    in[3] = ut_randn_leaf(DV_F64, DV_SHAPE(1, 2, 3, 4), 73);
    ut_gradcheck("attention bias (1,H,Tq,Tk)", run_attn, in, 4, &c, 1e-6);
    dv_release(in[3]);
    in[3] = ut_randn_leaf(DV_F64, DV_SHAPE(2, 1, 1, 4), 74);
    c.causal = true;
    ut_gradcheck("attention bias (B,1,1,Tk) causal", run_attn, in, 4, &c, 1e-6);
    dv_release(in[3]);
    in[3] = ut_randn_leaf(DV_F64, DV_SHAPE(3, 4), 75);
    c.causal = false;
    ut_gradcheck("attention bias (Tq,Tk)", run_attn, in, 4, &c, 1e-6);
    dv_release(in[3]);
    in[3] = ut_randn_leaf(DV_F64, DV_SHAPE(3, 1), 76); /* a per-row constant: no effect, zero gradient */
    ut_gradcheck("attention bias (Tq,1)", run_attn, in, 4, &c, 1e-6);
    dv_release(in[3]);
    in[3] = ut_randn_leaf(DV_F64, DV_SHAPE(3, 4), 75);
    /* a bias without requires_grad still shifts the scores, and gets no gradient */
    dv_set_requires_grad(in[3], false);
    ut_gradcheck("attention frozen bias", run_attn, in, 4, &c, 1e-6);
    CHECK(in[3]->grad == NULL);
    release_all(in, 4);
    c = (attn_case){.mask_in = -1, .bias_in = -1};

    /* q from a (B, T, H, D) projection, viewed as (B, H, T, D); k fully non-contiguous */
    dv_tensor *q = ut_randn_leaf(DV_F64, DV_SHAPE(2, 3, 2, 4), 80); /* (B, Tq, H, D) */
    qkv(DV_F64, 2, 2, 2, 3, 5, 4, 3, 81, in);
    dv_release(in[0]);
    in[0] = q;
    dv_tensor *kn = ut_noncontig(in[1]);
    dv_release(in[1]);
    in[1] = kn;
    c.q_bthd = true;
    c.causal = true;
    c.offset = 1;
    ut_gradcheck("attention q (B,T,H,D) view, k non-contiguous", run_attn, in, 3, &c, 1e-6);
    release_all(in, 3);
}

/* only the wanted gradients are computed: a frozen k gets none, q and v still do */
TEST(attention_grad_only_wanted) {
    dv_tensor *in[3];
    qkv(DV_F64, 1, 2, 1, 3, 4, 3, 3, 90, in);
    dv_set_requires_grad(in[1], false);
    attn_case c = {.causal = true, .mask_in = -1, .bias_in = -1};
    ut_gradcheck("attention frozen k", run_attn, in, 3, &c, 1e-6);
    CHECK(in[1]->grad == NULL && in[0]->grad != NULL && in[2]->grad != NULL);
    release_all(in, 3);
}

/* ---- AVX-512 vs portable (f32) ------------------------------------------------------------- */
TEST(attention_parity) {
    /* head dims with and without vector tails; Tq not a multiple of the 8-row block; Tk across
     * 64-key tiles with a tail; few heads (the backward splits keys into chunks then) */
    static const struct { int64_t B, Hq, Hkv, Tq, Tk, D, Dv; bool causal; int64_t offset; } k_cases[] = {
        {1, 2, 2, 13, 70, 24, 24, true, 0},   {2, 2, 1, 9, 130, 32, 32, false, 0},
        {1, 1, 1, 70, 70, 40, 40, true, 0},   {1, 4, 2, 17, 100, 128, 128, true, 83},
        {1, 1, 1, 1, 77, 64, 64, true, 76},   {2, 2, 2, 20, 33, 16, 48, false, 0},
        {1, 1, 1, 150, 150, 72, 72, true, 0},
    };
    for (size_t i = 0; i < sizeof k_cases / sizeof k_cases[0]; i++) {
        dv_tensor *in[3];
        qkv(DV_F32, k_cases[i].B, k_cases[i].Hq, k_cases[i].Hkv, k_cases[i].Tq, k_cases[i].Tk, k_cases[i].D,
            k_cases[i].Dv, 100 + 10 * i, in);
        attn_case c = {.causal = k_cases[i].causal, .offset = k_cases[i].offset, .mask_in = -1, .bias_in = -1};
        char what[96];
        snprintf(what, sizeof what, "attention parity case %zu", i);
        ut_parity(what, run_attn, in, 3, &c, 2e-5);
        release_all(in, 3);
    }
    /* masks, biases with gradients, a strided q */
    dv_tensor *in[5];
    qkv(DV_F32, 2, 2, 2, 11, 90, 40, 40, 200, in);
    in[3] = make_keep(2, 90, 7, 30);
    in[4] = ut_randn_leaf(DV_F32, DV_SHAPE(1, 2, 11, 90), 204);
    attn_case c = {.causal = true, .offset = 60, .mask_in = 3, .bias_in = 4};
    ut_parity("attention parity padded + bias (1,H,Tq,Tk)", run_attn, in, 5, &c, 2e-5);
    dv_release(in[4]);
    in[4] = ut_randn_leaf(DV_F32, DV_SHAPE(2, 1, 1, 90), 205);
    c.causal = false;
    ut_parity("attention parity padded + bias (B,1,1,Tk)", run_attn, in, 5, &c, 2e-5);
    dv_release(in[4]);
    in[4] = ut_randn_leaf(DV_F32, DV_SHAPE(2, 1, 11, 1), 206); /* broadcast along the keys */
    ut_parity("attention parity padded + bias (B,1,Tq,1)", run_attn, in, 5, &c, 2e-5);
    release_all(in, 5);
    dv_tensor *q = ut_randn_leaf(DV_F32, DV_SHAPE(2, 21, 4, 32), 210); /* (B, T, H, D) */
    qkv(DV_F32, 2, 4, 2, 21, 21, 32, 32, 211, in);
    dv_release(in[0]);
    in[0] = q;
    c = (attn_case){.causal = true, .mask_in = -1, .bias_in = -1, .q_bthd = true};
    ut_parity("attention parity q (B,T,H,D) view", run_attn, in, 3, &c, 2e-5);
    release_all(in, 3);
}

/* ---- dropout on the weights ------------------------------------------------------------------ */
/* the mask is a fixed function of the seed, so the op is differentiable as any other */
TEST(attention_dropout_gradcheck) {
    dv_tensor *in[4];
    attn_case c = {.mask_in = -1, .bias_in = -1, .dropout = 0.3, .seed = 7};
    qkv(DV_F64, 2, 2, 2, 4, 6, 3, 3, 300, in);
    ut_gradcheck("attention dropout 0.3", run_attn, in, 3, &c, 1e-6);
    c.causal = true;
    ut_gradcheck("attention dropout causal", run_attn, in, 3, &c, 1e-6);
    release_all(in, 3);
    qkv(DV_F64, 2, 4, 2, 3, 7, 4, 2, 310, in);
    in[3] = make_keep(2, 7, 3, 2);
    c = (attn_case){.mask_in = 3, .bias_in = -1, .dropout = 0.5, .seed = 99};
    ut_gradcheck("attention dropout 0.5 gqa padded", run_attn, in, 4, &c, 1e-6);
    release_all(in, 4);
}

/* AVX-512 and portable draw the same mask: tiles of 64 keys with tails, 16- and 32-row blocks,
 * causal, padding, GQA */
TEST(attention_dropout_parity) {
    static const struct { int64_t B, Hq, Hkv, Tq, Tk, D; bool causal; } k_cases[] = {
        {1, 2, 2, 13, 70, 24, true}, {2, 2, 1, 40, 130, 32, false}, {1, 1, 1, 70, 70, 64, true},
    };
    for (size_t i = 0; i < sizeof k_cases / sizeof k_cases[0]; i++) {
        dv_tensor *in[4];
        qkv(DV_F32, k_cases[i].B, k_cases[i].Hq, k_cases[i].Hkv, k_cases[i].Tq, k_cases[i].Tk, k_cases[i].D,
            k_cases[i].D, 320 + 10 * i, in);
        in[3] = make_keep(k_cases[i].B, k_cases[i].Tk, 9, 5);
        attn_case c = {.causal = k_cases[i].causal, .mask_in = 3, .bias_in = -1, .dropout = 0.1 + 0.2 * i,
                       .seed = 1000 + i};
        char what[96];
        snprintf(what, sizeof what, "attention dropout parity case %zu", i);
        ut_parity(what, run_attn, in, 4, &c, 2e-5);
        release_all(in, 4);
    }
}

/* With q = 0 every weight is 1/Tk, and with v the identity (Dv = Tk) the output row i is
 * Z[i, :] / Tk: the kernel's mask, read back, must be the one kernels/attention.h defines;
 * about a fraction p of it is zero; the mean output is preserved; seed 0 dropout 0 is the plain
 * op, bit for bit; another seed draws another mask. */
TEST(attention_dropout_mask) {
    const int64_t B = 2, H = 3, T = 64, Tk = 80;
    const double p = 0.25;
    dv_tensor *q = dv_zeros(DV_F32, DV_SHAPE(B, H, T, 8)), *k = ut_randn(DV_F32, DV_SHAPE(B, H, Tk, 8), 340);
    dv_tensor *v = dv_zeros(DV_F32, DV_SHAPE(B, H, Tk, Tk));
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t j = 0; j < Tk; j++) dv_set(v, (int64_t[]){b, h, j, j}, 1.0);
    const uint32_t thr = dv_attn_drop_threshold(p);
    for (int isa = 0; isa < 2; isa++) {
        if (isa == 1 && dv_cpu_isa() != DV_ISA_AVX512) break;
        dv_isa saved = dv_cpu_isa();
        dv_cpu_set_isa(isa == 0 ? DV_ISA_PORTABLE : DV_ISA_AVX512);
        dv_attention_opts o = {.dropout = p, .dropout_seed = 12345};
        dv_tensor *y = dv_attention(q, k, v, &o);
        int64_t wrong = 0, kept = 0;
        double sum = 0;
        for (int64_t b = 0; b < B; b++)
            for (int64_t h = 0; h < H; h++)
                for (int64_t i = 0; i < T; i++) {
                    uint32_t row = dv_attn_drop_row(12345, b, h, i);
                    for (int64_t j = 0; j < Tk; j++) {
                        double got = dv_get(y, (int64_t[]){b, h, i, j});
                        bool keep = dv_attn_drop_hash(row, (uint32_t)j) >= thr;
                        double want = keep ? 1.0 / (1.0 - p) / Tk : 0.0;
                        wrong += fabs(got - want) > 1e-6;
                        kept += keep;
                        sum += got;
                    }
                }
        CHECK_MSG(wrong == 0, "isa %d: %lld weights differ from the documented mask", isa, (long long)wrong);
        /* kept fraction within 5 sigma of 1 - p; the mean of the outputs (1/Tk each) preserved */
        double n = (double)(B * H * T * Tk), frac = kept / n;
        CHECK_MSG(fabs(frac - (1 - p)) < 5 * sqrt(p * (1 - p) / n), "kept fraction %.4f, want %.2f", frac, 1 - p);
        CHECK_MSG(fabs(sum / (B * H * T) - 1.0) < 0.02, "mean row sum %.4f, want 1", sum / (B * H * T));
        o.dropout_seed = 54321;
        dv_tensor *y2 = dv_attention(q, k, v, &o);
        int64_t differ = 0;
        for (int64_t x = 0; x < dv_numel(y); x++) differ += dv_flat_get(y, x) != dv_flat_get(y2, x);
        /* two independent masks differ in a fraction 2 p (1 - p) = 0.375 of the weights */
        CHECK_MSG(differ > n / 4, "another seed: %lld of %.0f weights differ", (long long)differ, n);
        o.dropout = 0, o.dropout_seed = 0;
        dv_tensor *y0 = dv_attention(q, k, v, &o), *yp = dv_attention(q, k, v, NULL);
        CHECK(ut_max_rel_diff(y0, yp) == 0);
        dv_release(y), dv_release(y2), dv_release(y0), dv_release(yp);
        dv_cpu_set_isa(saved);
    }
    dv_release(q), dv_release(k), dv_release(v);
}

/* inputs in malloc'd buffers of exactly their size (the allocator rounds sizes up, which would
 * hide a kernel reading past the last row from a sanitizer build) */
static void free_exact(void *data, int64_t nbytes, void *ctx) { free(data); }

static dv_tensor *exact_copy(dv_tensor *t) {
    size_t bytes = (size_t)dv_numel(t) * dv_dtype_size(t->dtype);
    void *p = malloc(bytes ? bytes : 1);
    dv_tensor *c = dv_contiguous(t);
    memcpy(p, dv_data(c), bytes);
    dv_release(c);
    dv_tensor *w = dv_wrap(t->dtype, t->shape, t->ndim, p, free_exact, NULL);
    dv_set_requires_grad(w, dv_dtype_is_float(t->dtype));
    return w;
}

TEST(attention_exact_buffers) {
    static const int64_t k_dims[][4] = {{24, 37, 13, 24}, {20, 45, 33, 36}, {40, 19, 5, 8}}; /* D, Tk, Tq, Dv */
    for (int i = 0; i < 3; i++) {
        const int64_t D = k_dims[i][0], Tk = k_dims[i][1], Tq = k_dims[i][2], Dv = k_dims[i][3];
        dv_tensor *t[5], *in[5];
        qkv(DV_F32, 2, 2, 1, Tq, Tk, D, Dv, 500 + 10 * i, t);
        t[3] = make_keep(2, Tk, 5, 3);
        t[4] = ut_randn(DV_F32, DV_SHAPE(2, 1, 1, Tk), 504 + 10 * i);
        for (int j = 0; j < 5; j++) in[j] = exact_copy(t[j]);
        attn_case c = {.causal = i != 1, .offset = Tk - Tq, .mask_in = 3, .bias_in = 4};
        ut_parity("attention exact-size buffers", run_attn, in, 5, &c, 2e-5);
        release_all(t, 5);
        release_all(in, 5);
    }
}

/* ---- PyTorch fixtures ---------------------------------------------------------------------- */
TEST(attention_torch) {
    static const struct { const char *name; attn_case c; } k_fx[] = {
        {"causal", {.causal = true, .mask_in = -1, .bias_in = -1}},
        {"cross", {.mask_in = -1, .bias_in = -1}},
        {"cross_causal", {.causal = true, .mask_in = -1, .bias_in = -1}},
        {"padded", {.mask_in = 3, .bias_in = -1}},
        {"padded_causal", {.causal = true, .mask_in = 3, .bias_in = -1}},
        {"gqa", {.causal = true, .mask_in = -1, .bias_in = -1}},
        {"mqa_cross", {.mask_in = -1, .bias_in = -1}},
        {"bias", {.mask_in = -1, .bias_in = 3}},
        {"bias_keys", {.causal = true, .mask_in = -1, .bias_in = 3}},
        {"decode", {.causal = true, .offset = 40 - 1, .mask_in = -1, .bias_in = -1}},
        {"scale_dv48", {.scale = 0.3, .mask_in = -1, .bias_in = -1}},
    };
    for (size_t i = 0; i < sizeof k_fx / sizeof k_fx[0]; i++) {
        attn_case c = k_fx[i].c;
        ut_fixture("attention.bin", k_fx[i].name, run_attn, &c, 1e-5);
        /* the same case through the portable kernels */
        if (dv_cpu_isa() == DV_ISA_AVX512) {
            dv_cpu_set_isa(DV_ISA_PORTABLE);
            ut_fixture("attention.bin", k_fx[i].name, run_attn, &c, 1e-5);
            dv_cpu_set_isa(DV_ISA_AVX512);
        }
    }
}

/* ---- masks and edge cases ------------------------------------------------------------------ */
static bool all_finite(const dv_tensor *t) {
    for (int64_t i = 0; i < dv_numel(t); i++)
        if (!isfinite(dv_flat_get(t, i))) return false;
    return true;
}

/* rows that see no key give zeros (not NaN) and send no gradient */
TEST(attention_fully_masked_rows) {
    for (int isa = 0; isa < 2; isa++) {
        dv_isa prev = dv_cpu_isa();
        dv_cpu_set_isa(isa ? DV_ISA_AVX512 : DV_ISA_PORTABLE);
        dv_tensor *in[3];
        qkv(DV_F32, 2, 1, 1, 5, 6, 16, 16, 300, in);
        dv_tensor *keep = make_keep(2, 6, 0, 6); /* batch 1: every key padded */
        /* causal with offset -2: rows 0 and 1 of batch 0 see nothing either */
        dv_attention_opts o = {.causal = true, .causal_offset = -2, .key_padding_mask = keep};
        dv_tensor *y = dv_attention(in[0], in[1], in[2], &o);
        CHECK(all_finite(y));
        for (int64_t d = 0; d < 16; d++) {
            CHECK(dv_get(y, (int64_t[]){0, 0, 0, d}) == 0 && dv_get(y, (int64_t[]){0, 0, 1, d}) == 0);
            for (int64_t i = 0; i < 5; i++) CHECK(dv_get(y, (int64_t[]){1, 0, i, d}) == 0);
        }
        CHECK(dv_get(y, (int64_t[]){0, 0, 2, 0}) != 0);
        dv_tensor *l = dv_sum_all(y);
        dv_backward(l);
        CHECK(all_finite(in[0]->grad) && all_finite(in[1]->grad) && all_finite(in[2]->grad));
        for (int64_t d = 0; d < 16; d++) CHECK(dv_get(in[0]->grad, (int64_t[]){1, 0, 3, d}) == 0);
        dv_release(l); dv_release(y); dv_release(keep);
        release_all(in, 3);
        dv_cpu_set_isa(prev);
    }
}

/* a -inf bias entry masks like the padding mask does */
TEST(attention_bias_neg_inf_masks) {
    dv_tensor *in[3];
    qkv(DV_F32, 1, 2, 2, 4, 9, 32, 32, 320, in);
    dv_tensor *keep = make_keep(1, 9, 4, 0);
    dv_tensor *bias = dv_zeros(DV_F32, DV_SHAPE(1, 1, 1, 9));
    for (int64_t j = 0; j < 9; j++)
        if (!dv_get(keep, (int64_t[]){0, j})) dv_set(bias, (int64_t[]){0, 0, 0, j}, -INFINITY);
    dv_attention_opts om = {.key_padding_mask = keep}, ob = {.bias = bias};
    dv_tensor *a = dv_attention(in[0], in[1], in[2], &om), *b = dv_attention(in[0], in[1], in[2], &ob);
    ut_check_tensor("bias -inf vs padding mask", a, b, 1e-6);
    dv_release(a); dv_release(b); dv_release(keep); dv_release(bias);
    release_all(in, 3);
}

/* the decode step of a KV cache (Tq = 1 at position P, offset P) matches the last row of the
 * full causal attention; a chunk of 3 new queries (offset Tk - 3) matches the last 3 rows */
TEST(attention_decode_offset) {
    for (int isa = 0; isa < 2; isa++) {
        dv_isa prev = dv_cpu_isa();
        dv_cpu_set_isa(isa ? DV_ISA_AVX512 : DV_ISA_PORTABLE);
        const int64_t T = 45;
        dv_tensor *in[3];
        qkv(DV_F32, 1, 4, 2, T, T, 32, 32, 340, in);
        dv_attention_opts full = {.causal = true};
        dv_tensor *y = dv_attention(in[0], in[1], in[2], &full);
        for (int64_t n = 1; n <= 3; n += 2) {
            dv_tensor *qn = dv_slice(in[0], 2, T - n, T, 1);
            dv_attention_opts step = {.causal = true, .causal_offset = T - n};
            dv_tensor *yn = dv_attention(qn, in[1], in[2], &step);
            dv_tensor *want = dv_slice(y, 2, T - n, T, 1);
            ut_check_tensor("decode step vs full causal", yn, want, 1e-6);
            dv_release(qn); dv_release(yn); dv_release(want);
        }
        dv_release(y);
        release_all(in, 3);
        dv_cpu_set_isa(prev);
    }
}

TEST(attention_zero_size) {
    const int64_t shapes[][6] = {{1, 2, 0, 5, 8, 8}, {1, 2, 3, 0, 8, 8}, {0, 2, 3, 5, 8, 8}, {1, 2, 3, 5, 8, 0}};
    for (int isa = 0; isa < 2; isa++)
        for (int s = 0; s < 4; s++) {
            dv_isa prev = dv_cpu_isa();
            dv_cpu_set_isa(isa ? DV_ISA_AVX512 : DV_ISA_PORTABLE);
            const int64_t *z = shapes[s];
            dv_tensor *in[3];
            qkv(DV_F32, z[0], z[1], z[1], z[2], z[3], z[4], z[5], 360, in);
            dv_attention_opts o = {.causal = true};
            dv_tensor *y = dv_attention(in[0], in[1], in[2], &o);
            CHECK(y->ndim == 4 && y->shape[0] == z[0] && y->shape[2] == z[2] && y->shape[3] == z[5]);
            for (int64_t i = 0; i < dv_numel(y); i++) CHECK(dv_flat_get(y, i) == 0); /* Tk = 0: no key */
            dv_tensor *l = dv_sum_all(y);
            dv_backward(l);
            for (int i = 0; i < 3; i++)
                if (dv_numel(in[i])) {
                    CHECK(in[i]->grad != NULL);
                    if (in[i]->grad) for (int64_t e = 0; e < dv_numel(in[i]); e++) CHECK(dv_flat_get(in[i]->grad, e) == 0);
                }
            dv_release(l); dv_release(y);
            release_all(in, 3);
            dv_cpu_set_isa(prev);
        }
}

/* ---- memory: O(T), never a (Tq, Tk) matrix --------------------------------------------------- */
/* peak bytes the allocator hands out while fn runs, above what was live before */
static int64_t peak_during(void (*fn)(void *), void *ctx) {
    dv_alloc_reset_peak();
    int64_t base = dv_alloc_get_stats().live_bytes;
    fn(ctx);
    return dv_alloc_get_stats().peak_bytes - base;
}

static void attention_fwd_bwd(void *ctx) {
    dv_tensor **in = ctx;
    dv_attention_opts o = {.causal = true};
    dv_tensor *y = dv_attention(in[0], in[1], in[2], &o);
    dv_tensor *l = dv_sum_all(y);
    dv_backward(l);
    dv_release(l);
    dv_release(y);
}

TEST(attention_memory_linear) {
    int64_t used[2];
    for (int t = 0; t < 2; t++) {
        const int64_t T = t ? 2048 : 1024;
        dv_tensor *in[3];
        qkv(DV_F32, 1, 1, 1, T, T, 32, 32, 400, in);
        used[t] = peak_during(attention_fwd_bwd, in);
        release_all(in, 3);
        if (dv_test_verbose) printf("  attention T=%lld: peak %.2f MiB (T^2 floats %.1f MiB)\n", (long long)T,
                                    used[t] / 1048576.0, T * T * 4 / 1048576.0);
    }
    /* inputs 3 x T x 32 floats: what is allocated (out, lse, gradients, packed K/V, dQ copies)
     * is a few times that; a (T, T) f32 score matrix alone would be 16 MiB at T = 2048 */
    CHECK_MSG(used[1] < 2048 * 2048 * 4 / 4, "attention T=2048: peak %lld bytes is not << T^2 floats", (long long)used[1]);
    CHECK_MSG(used[1] < 2.5 * used[0], "attention memory grows faster than T: %lld -> %lld bytes", (long long)used[0],
              (long long)used[1]);
}

/* ---- bad calls -------------------------------------------------------------------------- */
static void bad_heads(void *ctx) {
    dv_tensor *q = dv_zeros(DV_F32, DV_SHAPE(1, 3, 4, 8)), *k = dv_zeros(DV_F32, DV_SHAPE(1, 2, 4, 8));
    dv_attention(q, k, k, NULL);
}
static void bad_dims(void *ctx) {
    dv_tensor *q = dv_zeros(DV_F32, DV_SHAPE(3, 4, 8)), *k = dv_zeros(DV_F32, DV_SHAPE(1, 3, 4, 8));
    dv_attention(q, k, k, NULL);
}
static void bad_mask(void *ctx) {
    dv_tensor *q = dv_zeros(DV_F32, DV_SHAPE(2, 2, 4, 8)), *m = dv_ones(DV_BOOL, DV_SHAPE(2, 5));
    dv_attention_opts o = {.key_padding_mask = m};
    dv_attention(q, q, q, &o);
}
static void bad_bias(void *ctx) {
    dv_tensor *q = dv_zeros(DV_F32, DV_SHAPE(2, 2, 4, 8)), *b = dv_zeros(DV_F32, DV_SHAPE(3, 1, 4, 4));
    dv_attention_opts o = {.bias = b};
    dv_attention(q, q, q, &o);
}

TEST(attention_bad_calls) {
    ut_aborts_with(bad_heads, NULL, "attention: shapes do not fit");
    ut_aborts_with(bad_dims, NULL, "attention: q, k, v must be 4-D");
    ut_aborts_with(bad_mask, NULL, "attention: key_padding_mask (2, 5)");
    ut_aborts_with(bad_bias, NULL, "attention: bias (3, 1, 4, 4)");
}
