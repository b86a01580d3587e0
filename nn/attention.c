/* nn/attention.c — the fused attention op: argument checks, strides for the kernels, dispatch
 * to the portable / AVX-512 kernel or, for tensors on a GPU, to tensor/cuda.c's flash kernels
 * (which take the same bias, masks and dropout seed), and the autograd record
 * (FlashAttention-2 backward).
 *
 * Shapes and mask conventions are in nn/attention.h, the maths in kernels/attention.h.
 * The op saves only what the backward needs besides the inputs: the output (detached) and the
 * per-row logsumexp (B, Hq, Tq). Everything else — the probabilities, the scores — is
 * recomputed tile by tile in the backward kernel.
 */
#include "nn/attention.h"
#include "kernels/attention.h"
#include "tensor/autograd.h"
#include "tensor/cuda.h"
#include "tensor/internal.h"
#include "tensor/ops.h"

#include <math.h>

/* the kernel-ready arguments: views with a unit-stride last dim (copies only where needed) */
typedef struct {
    dv_tensor *q, *k, *v, *bias, *keep; /* owned references (bias, keep may be NULL) */
    dv_attn_geom g;
} attn_args;

static void attn_args_release(attn_args *a) {
    dv_release(a->q); dv_release(a->k); dv_release(a->v); dv_release(a->bias); dv_release(a->keep);
}

/* t itself when its last dim is unit-stride (or has <= 1 element), else a contiguous copy */
static dv_tensor *unit_last(dv_tensor *t) {
    if (t->ndim == 0 || t->shape[t->ndim - 1] <= 1 || t->stride[t->ndim - 1] == 1) return dv_retain(t);
    dv_tensor *c;
    DV_NO_GRAD_BEGIN
    c = dv_contiguous(t);
    DV_NO_GRAD_END
    return c;
}

/* checks the call and fills a (aborts naming the op and the shapes on a bad call) */
static void attn_prepare(dv_tensor *q, dv_tensor *k, dv_tensor *v, dv_tensor *bias, dv_tensor *keep,
                         double scale, bool causal, int64_t causal_offset, double dropout,
                         uint64_t dropout_seed, attn_args *a) {
    const char *op = "attention";
    dv_check_float(op, q);
    dv_require_kernel(op, q);
    dv_check_same_device(op, q, k);
    dv_check_same_device(op, q, v);
    if (q->ndim != 4 || k->ndim != 4 || v->ndim != 4)
        dv_panic("attention: q, k, v must be 4-D (B, H, T, D); got q %s, k %s, v %s", dv_shape_str(q, NULL, 0),
                 dv_shape_str(k, NULL, 0), dv_shape_str(v, NULL, 0));
    if (k->dtype != q->dtype || v->dtype != q->dtype)
        dv_panic("attention: q, k, v dtypes differ: %s, %s, %s", dv_dtype_name(q->dtype), dv_dtype_name(k->dtype),
                 dv_dtype_name(v->dtype));
    const int64_t B = q->shape[0], Hq = q->shape[1], Tq = q->shape[2], D = q->shape[3];
    const int64_t Hkv = k->shape[1], Tk = k->shape[2], Dv = v->shape[3];
    bool ok = k->shape[0] == B && k->shape[3] == D && v->shape[0] == B && v->shape[1] == Hkv && v->shape[2] == Tk &&
              (Hkv > 0 ? Hq % Hkv == 0 : Hq == 0);
    if (!ok)
        dv_panic("attention: shapes do not fit q (B, Hq, Tq, D), k (B, Hkv, Tk, D), v (B, Hkv, Tk, Dv) with Hq a "
                 "multiple of Hkv: q %s, k %s, v %s", dv_shape_str(q, NULL, 0), dv_shape_str(k, NULL, 0),
                 dv_shape_str(v, NULL, 0));

    *a = (attn_args){0};
    a->q = unit_last(q);
    a->k = unit_last(k);
    a->v = unit_last(v);
    dv_attn_geom *g = &a->g;
    g->B = B; g->Hq = Hq; g->Hkv = Hkv; g->Tq = Tq; g->Tk = Tk; g->D = D; g->Dv = Dv;
    for (int d = 0; d < 3; d++) {
        g->q_stride[d] = a->q->stride[d];
        g->k_stride[d] = a->k->stride[d];
        g->v_stride[d] = a->v->stride[d];
    }
    g->scale = scale != 0 ? scale : (D > 0 ? 1.0 / sqrt((double)D) : 1.0);
    g->causal = causal;
    g->causal_offset = causal_offset;
    g->dbias_rows = 1;
    g->nthreads = dv_cpu_threads();
    if (!(dropout >= 0 && dropout < 1))
        dv_panic("attention: dropout %g is not in [0, 1)", dropout);
    g->dropout = dropout;
    g->dropout_seed = dropout_seed;

    if (keep) {
        dv_check_same_device(op, q, keep);
        if (keep->dtype != DV_BOOL && keep->dtype != DV_U8)
            dv_panic("attention: key_padding_mask must be bool or u8, got %s", dv_dtype_name(keep->dtype));
        if (keep->ndim != 2 || (keep->shape[0] != B && keep->shape[0] != 1) || keep->shape[1] != Tk)
            dv_panic("attention: key_padding_mask %s does not fit (B, Tk) = (%lld, %lld)", dv_shape_str(keep, NULL, 0),
                     (long long)B, (long long)Tk);
        a->keep = dv_retain(keep);
        g->keep = dv_data(keep);
        g->keep_stride[0] = keep->shape[0] == 1 ? 0 : keep->stride[0];
        g->keep_stride[1] = keep->stride[1];
    }

    if (bias) {
        dv_check_same_device(op, q, bias);
        if (bias->dtype != q->dtype)
            dv_panic("attention: bias dtype %s differs from q's %s", dv_dtype_name(bias->dtype), dv_dtype_name(q->dtype));
        const int64_t full[4] = {B, Hq, Tq, Tk};
        int nd = bias->ndim;
        bool fits = nd <= 4;
        for (int d = 0; fits && d < nd; d++) {
            int64_t s = bias->shape[d], f = full[4 - nd + d];
            fits = s == 1 || s == f;
        }
        if (!fits)
            dv_panic("attention: bias %s does not broadcast to (B, Hq, Tq, Tk) = (%lld, %lld, %lld, %lld)",
                     dv_shape_str(bias, NULL, 0), (long long)B, (long long)Hq, (long long)Tq, (long long)Tk);
        a->bias = unit_last(bias);
        for (int d = 0; d < 4; d++) {
            int bd = d - (4 - nd);
            g->bias_stride[d] = (bd < 0 || a->bias->shape[bd] == 1) ? 0 : a->bias->stride[bd];
        }
        if (g->bias_stride[2] != 0) g->dbias_rows = Tq;
    }
    if (q->device.type == DV_CUDA) dv_cuda_attention_check(g); /* aborts on what it lacks */
}

#ifndef DV_NO_AVX512
static bool use_avx512(const dv_tensor *t) { return t->dtype == DV_F32 && dv_backend_of(t) == DV_BACKEND_AVX512; }
#endif

/* the kernel's work memory, from the allocator (so its peak counts it); NULL when none */
static dv_tensor *attn_work(const dv_attn_geom *g, bool backward, const dv_tensor *like) {
    size_t bytes = 0;
    if (like->device.type == DV_CUDA) return NULL; /* the CUDA path sizes its own */
#ifndef DV_NO_AVX512
    if (use_avx512(like)) bytes = dv_attention_work_bytes_f32_avx512(g, backward);
    else
#endif
        bytes = dv_attention_work_bytes_portable(g, backward, dv_dtype_size(like->dtype));
    return bytes ? dv_empty(DV_U8, (const int64_t[]){(int64_t)bytes}, 1) : NULL;
}

static void *data_or_null(const dv_tensor *t) { return t ? dv_data(t) : NULL; }

static void attention_backward(dv_node *n, dv_tensor *gout) {
    const bool has_bias = n->iarg[2];
    dv_tensor *o = n->saved[0], *lse = n->saved[1], *keep = n->iarg[3] ? n->saved[2] : NULL;
    attn_args a;
    attn_prepare(n->in[0], n->in[1], n->in[2], has_bias ? n->in[3] : NULL, keep, n->farg[0], n->iarg[0], n->iarg[1],
                 n->farg[1], (uint64_t)n->iarg[4], &a);
    const dv_attn_geom *g = &a.g;
    dv_dtype dt = o->dtype;
    dv_tensor *dout = dv_contiguous(gout);
    dv_tensor *dq = dv_ag_input_wants(n, 0) ? dv_empty_on(dt, DV_SHAPE(g->B, g->Hq, g->Tq, g->D), o->device) : NULL;
    dv_tensor *dk = dv_ag_input_wants(n, 1) ? dv_empty_on(dt, DV_SHAPE(g->B, g->Hkv, g->Tk, g->D), o->device) : NULL;
    dv_tensor *dv = dv_ag_input_wants(n, 2) ? dv_empty_on(dt, DV_SHAPE(g->B, g->Hkv, g->Tk, g->Dv), o->device) : NULL;
    dv_tensor *db = has_bias && dv_ag_input_wants(n, 3)
                        ? dv_empty_on(dt, DV_SHAPE(g->B, g->Hq, g->dbias_rows, g->Tk), o->device)
                        : NULL;
    dv_tensor *work = attn_work(g, true, o);
    void *w = data_or_null(work);
    if (o->device.type == DV_CUDA) {
        dv_cuda_attention_bwd(g, a.q, a.k, a.v, a.bias, o, lse, dout, dq, dk, dv, db);
    } else if (dt == DV_F64) {
        dv_attention_bwd_f64_portable(g, dv_data(a.q), dv_data(a.k), dv_data(a.v), data_or_null(a.bias), dv_data(o),
                                      dv_data(lse), dv_data(dout), data_or_null(dq), data_or_null(dk),
                                      data_or_null(dv), data_or_null(db), w);
    }
#ifndef DV_NO_AVX512
    else if (use_avx512(o)) {
        dv_attention_bwd_f32_avx512(g, dv_data(a.q), dv_data(a.k), dv_data(a.v), data_or_null(a.bias), dv_data(o),
                                    dv_data(lse), dv_data(dout), data_or_null(dq), data_or_null(dk),
                                    data_or_null(dv), data_or_null(db), w);
    }
#endif
    else {
        dv_attention_bwd_f32_portable(g, dv_data(a.q), dv_data(a.k), dv_data(a.v), data_or_null(a.bias), dv_data(o),
                                      dv_data(lse), dv_data(dout), data_or_null(dq), data_or_null(dk),
                                      data_or_null(dv), data_or_null(db), w);
    }
    dv_release(work);
    dv_release(dout);
    attn_args_release(&a);
    if (dq) dv_ag_give(n, 0, dq);
    if (dk) dv_ag_give(n, 1, dk);
    if (dv) dv_ag_give(n, 2, dv);
    if (db) dv_ag_give(n, 3, db);
}

dv_tensor *dv_attention(dv_tensor *q, dv_tensor *k, dv_tensor *v, const dv_attention_opts *opts) {
    static const dv_attention_opts defaults = {0};
    if (!opts) opts = &defaults;
    attn_args a;
    attn_prepare(q, k, v, opts->bias, opts->key_padding_mask, opts->scale, opts->causal, opts->causal_offset,
                 opts->dropout, opts->dropout_seed, &a);
    const dv_attn_geom *g = &a.g;
    dv_tensor *o = dv_empty_on(q->dtype, DV_SHAPE(g->B, g->Hq, g->Tq, g->Dv), q->device);
    dv_tensor *lse = dv_empty_on(q->dtype, DV_SHAPE(g->B, g->Hq, g->Tq), q->device);
    dv_tensor *work = attn_work(g, false, q);
    void *w = data_or_null(work);
    if (q->device.type == DV_CUDA) {
        dv_cuda_attention_fwd(g, a.q, a.k, a.v, a.bias, o, lse);
    } else if (q->dtype == DV_F64) {
        dv_attention_fwd_f64_portable(g, dv_data(a.q), dv_data(a.k), dv_data(a.v), data_or_null(a.bias), dv_data(o),
                                      dv_data(lse), w);
    }
#ifndef DV_NO_AVX512
    else if (use_avx512(q)) {
        dv_attention_fwd_f32_avx512(g, dv_data(a.q), dv_data(a.k), dv_data(a.v), data_or_null(a.bias), dv_data(o),
                                    dv_data(lse), w);
    }
#endif
    else {
        dv_attention_fwd_f32_portable(g, dv_data(a.q), dv_data(a.k), dv_data(a.v), data_or_null(a.bias), dv_data(o),
                                      dv_data(lse), w);
    }
    dv_release(work);

    dv_tensor *ins[4] = {q, k, v, opts->bias};
    int nin = opts->bias ? 4 : 3;
    if (dv_ag_wanted(nin, ins)) {
        dv_node *n = dv_ag_record(o, "attention", attention_backward, nin, ins);
        /* saving o itself would make a cycle (o holds the node): save a detached alias */
        dv_tensor *od = dv_detach(o);
        dv_node_save(n, od);
        dv_release(od);
        dv_node_save(n, lse);
        if (a.keep) dv_node_save(n, a.keep);
        n->iarg[0] = g->causal;
        n->iarg[1] = g->causal_offset;
        n->iarg[2] = opts->bias != NULL;
        n->iarg[3] = a.keep != NULL;
        n->farg[0] = g->scale;
        n->farg[1] = g->dropout;
        n->iarg[4] = (int64_t)g->dropout_seed;  /* the backward regenerates the mask from it */
    }
    dv_release(lse);
    attn_args_release(&a);
    return o;
}
