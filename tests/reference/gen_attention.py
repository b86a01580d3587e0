"""PyTorch reference values for the fused attention op (tests/test_attention.c, nn/attention.c).

Run from the repository root:  /usr/bin/python3 tests/reference/gen_attention.py
Writes tests/reference/attention.bin. Deterministic: fixed seeds, CPU, float32.

The reference is torch.nn.functional.scaled_dot_product_attention where the installed torch has
it (>= 2.0); older versions (Debian's 1.13) get the same maths written out — what SDPA's math
backend computes: softmax(q k^T * scale + attn_mask) v, where a boolean attn_mask is True for
"take part" and is_causal is the top-left aligned tril(ones(Tq, Tk)). Grouped-query attention
is expressed by repeating each key/value head Hq/Hkv times (repeat_interleave over heads), so
the k/v gradients come back summed over a group.

Inputs of a case, in order: q, k, v, then the key padding mask (bool (B, Tk), True = keep) if
the case has one, then the bias if it has one. The C side knows each case's scale, causal flag
and causal offset from its own table (tests/test_attention.c).
"""
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture  # noqa: E402

torch.manual_seed(0)
out = {}


def randn(*shape):
    return torch.randn(*shape, dtype=torch.float64).to(torch.float32)


def sdpa(q, k, v, keep=None, bias=None, causal=False, scale=None):
    """scaled_dot_product_attention with GQA (repeated k/v heads), a (B, Tk) keep mask and an
    additive bias. Masks are merged into one attn_mask, as SDPA takes only one."""
    hq, hkv = q.shape[1], k.shape[1]
    if hq != hkv:
        k = k.repeat_interleave(hq // hkv, dim=1)
        v = v.repeat_interleave(hq // hkv, dim=1)
    tq, tk = q.shape[2], k.shape[2]
    allowed = None
    if keep is not None:
        allowed = keep[:, None, None, :]
    if causal:
        tril = torch.ones(tq, tk, dtype=torch.bool).tril()
        allowed = tril if allowed is None else allowed & tril
    mask = allowed
    if bias is not None:
        mask = bias if allowed is None else bias.masked_fill(~allowed, float("-inf"))
    if scale is None:
        scale = 1.0 / math.sqrt(q.shape[-1])
    if hasattr(F, "scaled_dot_product_attention"):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale)
    s = q @ k.transpose(-2, -1) * scale
    if mask is not None:
        s = s.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool else s + mask
    return torch.softmax(s, dim=-1) @ v


def qkv(b, hq, hkv, tq, tk, d, dv=None):
    return [randn(b, hq, tq, d), randn(b, hkv, tk, d), randn(b, hkv, tk, dv or d)]


case = fixture.add_case
# causal self-attention, head dim 24 (a masked vector tail), T across a 64-key tile edge
case(out, "causal", lambda q, k, v: sdpa(q, k, v, causal=True), qkv(1, 1, 1, 37, 37, 24), seed=1)
# cross-attention Tq != Tk, plain and causal (top-left aligned, like torch's is_causal)
case(out, "cross", lambda q, k, v: sdpa(q, k, v), qkv(1, 2, 2, 20, 70, 16), seed=2)
case(out, "cross_causal", lambda q, k, v: sdpa(q, k, v, causal=True), qkv(1, 2, 2, 20, 70, 16), seed=3)
# key padding: batch 0 drops a few scattered keys, batch 1 its last 13
keep = torch.ones(2, 40, dtype=torch.bool)
keep[0, [3, 17, 18, 31]] = False
keep[1, 27:] = False
case(out, "padded", lambda q, k, v, m: sdpa(q, k, v, keep=m), qkv(2, 1, 1, 40, 40, 16) + [keep],
     grad=[True, True, True, False], seed=4)
case(out, "padded_causal", lambda q, k, v, m: sdpa(q, k, v, keep=m, causal=True), qkv(2, 1, 1, 40, 40, 16) + [keep],
     grad=[True, True, True, False], seed=5)
# grouped-query attention: 4 query heads on 2 kv heads, head dim 40, causal; multi-query cross
case(out, "gqa", lambda q, k, v: sdpa(q, k, v, causal=True), qkv(1, 4, 2, 17, 17, 40), seed=6)
case(out, "mqa_cross", lambda q, k, v: sdpa(q, k, v), qkv(1, 4, 1, 9, 50, 32), seed=7)
# additive biases that take a gradient: a full (1, H, Tq, Tk) one and a per-key (B, 1, 1, Tk) one
case(out, "bias", lambda q, k, v, b: sdpa(q, k, v, bias=b), qkv(1, 2, 2, 12, 70, 16) + [randn(1, 2, 12, 70)], seed=8)
case(out, "bias_keys", lambda q, k, v, b: sdpa(q, k, v, bias=b, causal=True),
     qkv(2, 2, 2, 24, 24, 16) + [randn(2, 1, 1, 24)], seed=9)
# a KV-cache decode step: one query sees all 40 cached keys (the C side: causal, offset Tk - Tq)
case(out, "decode", lambda q, k, v: sdpa(q, k, v), qkv(2, 1, 1, 1, 40, 32), seed=10)
# explicit scale, value head dim different from the key head dim
case(out, "scale_dv48", lambda q, k, v: sdpa(q, k, v, scale=0.3), qkv(1, 1, 1, 17, 29, 32, dv=48), seed=11)

path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "attention.bin")
fixture.write(path, out)
print("wrote", len(out), "tensors,", os.path.getsize(path), "bytes to", path)
