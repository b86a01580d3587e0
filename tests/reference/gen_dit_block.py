"""PyTorch reference for one adaLN-Zero DiT block (Peebles & Xie 2023, Sec. 3.2, Fig. 3), with
the optional cross-attention sub-layer RoboDual's specialist adds (tests/test_dit_block.c):

    shift1, scale1, gate1, shift2, scale2, gate2 = Linear(SiLU(c)).chunk(6)   adaLN_modulation
    x = x + gate1 * attn(LN(x) * (1 + scale1) + shift1)       LN: no affine, eps 1e-6; attn: timm
                                                              layout, fused qkv, out proj "proj"
    x = x + cross_attn(norm_ca(x), ctx)                       (cross case only; LN with affine)
    x = x + gate2 * mlp(LN(x) * (1 + scale2) + shift2)        mlp: fc1 -> GELU(tanh) -> fc2

The block is written here with torch.nn.functional from those definitions. adaLN_modulation
gets random weights (not DiT's zero init) so the gates are nonzero and every branch counts.
Stored: the inputs x, c, ctx; every parameter "param.<name>" under the names the C registry
uses; for two cases ("cross" and "nocross") the output, the output gradient fed to backward
and the gradient of every input and parameter ("<case>.grad.<name>").

Run from the repository root:  /usr/bin/python3 tests/reference/gen_dit_block.py
Writes tests/reference/dit_block.bin. Deterministic.
"""
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture  # noqa: E402

torch.manual_seed(0)
B, T, C, H, Cc, Tk, Cx = 2, 8, 32, 4, 24, 11, 20   # Cc: condition width, Cx: context width
D = C // H


def lin(o, i, s=None):
    s = s if s is not None else i ** -0.5
    return torch.randn(o, i) * s, torch.randn(o) * 0.1


params = {}
for name, (o, i) in {"attn.qkv": (3 * C, C), "attn.proj": (C, C),
                     "cross_attn.q_proj": (C, C), "cross_attn.k_proj": (C, Cx),
                     "cross_attn.v_proj": (C, Cx), "cross_attn.o_proj": (C, C),
                     "mlp.fc1": (4 * C, C), "mlp.fc2": (C, 4 * C),
                     "adaLN_modulation.1": (6 * C, Cc)}.items():
    w, b = lin(o, i)
    params[name + ".weight"], params[name + ".bias"] = w, b
params["norm_ca.weight"] = 1 + 0.1 * torch.randn(C)
params["norm_ca.bias"] = 0.1 * torch.randn(C)


def attention(q, k, v):  # (B, H, Tq, D) (B, H, Tk, D)
    s = q @ k.transpose(-1, -2) * D ** -0.5
    return s.softmax(-1) @ v


def heads(y):  # (B, T, C) -> (B, H, T, D)
    return y.reshape(y.shape[0], y.shape[1], H, D).transpose(1, 2)


def merge(a):
    return a.transpose(1, 2).reshape(a.shape[0], a.shape[2], C)


def block(p, x, c, ctx, cross):
    mod = F.linear(F.silu(c), p["adaLN_modulation.1.weight"], p["adaLN_modulation.1.bias"])
    sh1, sc1, g1, sh2, sc2, g2 = [m.unsqueeze(1) for m in mod.chunk(6, dim=1)]
    h = F.layer_norm(x, (C,), eps=1e-6) * (1 + sc1) + sh1
    qkv = F.linear(h, p["attn.qkv.weight"], p["attn.qkv.bias"]).reshape(B, T, 3, H, D).permute(2, 0, 3, 1, 4)
    a = merge(attention(qkv[0], qkv[1], qkv[2]))
    x = x + g1 * F.linear(a, p["attn.proj.weight"], p["attn.proj.bias"])
    if cross:
        n = F.layer_norm(x, (C,), p["norm_ca.weight"], p["norm_ca.bias"], eps=1e-6)
        q = heads(F.linear(n, p["cross_attn.q_proj.weight"], p["cross_attn.q_proj.bias"]))
        k = heads(F.linear(ctx, p["cross_attn.k_proj.weight"], p["cross_attn.k_proj.bias"]))
        v = heads(F.linear(ctx, p["cross_attn.v_proj.weight"], p["cross_attn.v_proj.bias"]))
        x = x + F.linear(merge(attention(q, k, v)), p["cross_attn.o_proj.weight"], p["cross_attn.o_proj.bias"])
    h = F.layer_norm(x, (C,), eps=1e-6) * (1 + sc2) + sh2
    m = F.linear(F.gelu(F.linear(h, p["mlp.fc1.weight"], p["mlp.fc1.bias"]), approximate="tanh"),
                 p["mlp.fc2.weight"], p["mlp.fc2.bias"])
    return x + g2 * m


inputs = {"x": torch.randn(B, T, C), "c": torch.randn(B, Cc), "ctx": torch.randn(B, Tk, Cx)}
out = {}
for k, v in inputs.items():
    out[k] = v
for k, v in params.items():
    out["param." + k] = v
g = torch.Generator().manual_seed(1)
for case in ("cross", "nocross"):
    leaves = {k: v.clone().requires_grad_(True) for k, v in list(inputs.items()) + list(params.items())}
    p = {k: leaves[k] for k in params}
    y = block(p, leaves["x"], leaves["c"], leaves["ctx"], case == "cross")
    gout = torch.randn(y.shape, generator=g)
    y.backward(gout)
    out[case + ".out"] = y
    out[case + ".gout"] = gout
    for k, v in leaves.items():
        gr = v.grad if v.grad is not None else torch.zeros_like(v)
        out[case + ".grad." + k] = gr

fixture.write(os.path.join(os.path.dirname(os.path.abspath(__file__)), "dit_block.bin"), out)
print("wrote", len(out), "tensors")
