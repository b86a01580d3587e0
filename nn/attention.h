/* nn/attention.h — fused scaled-dot-product attention, with autograd.
 *
 *   out = dv_attention(q, k, v, &opts);
 *
 *   q    (B, Hq, Tq, D)      any strides (e.g. a transposed (B, T, H, D) projection)
 *   k    (B, Hkv, Tk, D)     Hq a multiple of Hkv: grouped-query attention, query head h
 *   v    (B, Hkv, Tk, Dv)    reads key/value head h / (Hq / Hkv)
 *   out  (B, Hq, Tq, Dv)     contiguous
 *
 *   out[b,h,i] = sum_j softmax_j( scale q[b,h,i] . k[b,g,j] + bias[b,h,i,j] ) v[b,g,j]
 *
 * over the keys j that are visible to query i:
 *   - causal: j <= i + causal_offset. causal_offset = 0 is torch's
 *     scaled_dot_product_attention(is_causal=True): the TOP-LEFT aligned tril(ones(Tq, Tk)),
 *     also when Tq != Tk. For a KV-cache decode step (queries at positions P.. of a sequence
 *     whose Tk = P + Tq keys are all cached) use causal_offset = Tk - Tq (bottom-right).
 *   - key_padding_mask (B, Tk), bool or u8: NONZERO / TRUE = KEEP the key (torch's boolean
 *     attn_mask convention, not nn.MultiheadAttention's key_padding_mask, where true = pad).
 *   - bias: an additive float mask or learned bias of q's dtype, broadcastable to
 *     (B, Hq, Tq, Tk) — e.g. (1, 1, Tq, Tk), (B, 1, 1, Tk), (Tq, Tk); -inf entries mask.
 *     It gets a gradient only if it requires one (then a (B, Hq, Tq or 1, Tk) buffer is
 *     allocated in backward and summed down to its shape: the one O(T^2) memory in the op,
 *     present only when a full (Tq, Tk) bias is trained).
 * A query row with no visible key gets zeros (not NaN) and sends no gradient.
 *
 * The (Tq, Tk) score matrix is never stored: the forward walks the keys in tiles with a
 * running max and sum per row (online softmax) and saves only out and the row logsumexps
 * (B, Hq, Tq); the backward recomputes the scores tile by tile (FlashAttention-2). Work memory
 * is O(Tq + Tk) per head. Gradients go to q, k, v (and bias) only where wanted; for GQA the
 * k/v gradients are summed over the query heads of a group.
 *
 * Dropout on the attention weights (training, as torch's attn_drop): `dropout` is the
 * probability, the mask a pure function of `dropout_seed` and (b, h, i, j) (kernels/attention.h),
 * so the backward regenerates it; the caller draws a fresh seed per call from its own generator
 * (a checkpointed rng keeps a resumed run bit for bit). 0 at inference.
 *
 * Dv may differ from D. On CUDA the same contract (bias, dropout with the same mask, masks, GQA)
 * runs on the flash kernels, with q, k, v rounded to bf16 for the tensor cores; head dims above
 * 128 are refused there with a message. Not here: f16/bf16 inputs.
 */
#ifndef DV_NN_ATTENTION_H
#define DV_NN_ATTENTION_H

#include "tensor/tensor.h"

typedef struct {
    double scale;                 /* 0 = 1 / sqrt(D) */
    bool causal;
    int64_t causal_offset;        /* with causal: key j visible to query i when j <= i + offset */
    dv_tensor *key_padding_mask;  /* (B, Tk) bool/u8, true = keep; NULL = none (borrowed) */
    dv_tensor *bias;              /* additive, broadcastable to (B, Hq, Tq, Tk); NULL = none */
    double dropout;               /* [0, 1): probability of zeroing a weight; 0 = none */
    uint64_t dropout_seed;        /* the mask's seed (with dropout > 0) */
} dv_attention_opts;

/* opts may be NULL: scale 1/sqrt(D), no mask, no bias. Returns a new reference. */
dv_tensor *dv_attention(dv_tensor *q, dv_tensor *k, dv_tensor *v, const dv_attention_opts *opts);

#endif
