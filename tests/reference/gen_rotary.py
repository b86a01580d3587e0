"""PyTorch reference values for nn/rotary.c and nn/modulate.c (tests/test_rotary.c,
tests/test_modulate.c). The formulas are written here from the papers' reference code:
HF transformers' LlamaRotaryEmbedding / apply_rotary_pos_emb (rotate_half), interleaved
pairs (RoboDual), 3D Diffuser Actor's RotaryPositionEncoding3D + embed_rotary, DiT's
modulate / adaLN-Zero and FiLM.

Run from the repository root:  /usr/bin/python3 tests/reference/gen_rotary.py
Writes tests/reference/rotary.bin. Deterministic. Angles are computed in float64 and the
tables cast to float32 (the C side does the same).
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
case = fixture.add_case


def randn(*shape):
    return torch.randn(*shape, dtype=torch.float64).float()


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def rope_tables(pos, rot, theta, interleaved):
    inv_freq = 1.0 / theta ** (torch.arange(0, rot, 2, dtype=torch.float64) / rot)
    ang = pos.double()[..., None] * inv_freq
    emb = torch.repeat_interleave(ang, 2, dim=-1) if interleaved else torch.cat((ang, ang), dim=-1)
    return emb.cos().float(), emb.sin().float()


def rope(x, pos, theta, rot, interleaved):
    cos, sin = rope_tables(pos, rot, theta, interleaved)
    if pos.dim() == 2:          # (B, T, rot) -> (B, 1, T, rot)
        cos, sin = cos[:, None], sin[:, None]
    xr, xp = x[..., :rot], x[..., rot:]
    if interleaved:
        x2 = torch.stack((-xr[..., 1::2], xr[..., 0::2]), dim=-1).reshape(xr.shape)
    else:
        x2 = rotate_half(xr)
    return torch.cat((xr * cos + x2 * sin, xp), dim=-1)


# LLaMA rotate-half, positions (T), a 64-dim head (theta 10000)
case(out, "rope_half", lambda x, p: rope(x, p, 10000.0, 64, False),
     [randn(2, 3, 5, 64), torch.arange(5, dtype=torch.int64)], grad=[True, False], seed=1)
# a KV-cache decode step: one token at position 37, theta 500000
case(out, "rope_decode", lambda x, p: rope(x, p, 500000.0, 40, False),
     [randn(1, 4, 1, 40), torch.tensor([37], dtype=torch.int64)], grad=[True, False], seed=2)
# interleaved pairs, only the first 24 of 40 channels, per-batch positions (B, T)
case(out, "rope_interleaved_partial", lambda x, p: rope(x, p, 10000.0, 24, True),
     [randn(2, 2, 6, 40), torch.tensor([[0, 1, 2, 3, 4, 5], [7, 9, 11, 13, 15, 17]], dtype=torch.int64)],
     grad=[True, False], seed=3)


def rotary3d_features(xyz, D):
    B, N, _ = xyz.shape
    da = D // 3
    div = torch.exp(torch.arange(0, da, 2, dtype=torch.float64) * (-math.log(10000.0) / da)).view(1, 1, -1)
    feats = []
    for ax in range(3):
        a = xyz[..., ax:ax + 1].double() * div
        feats.append((torch.stack([a.cos(), a.cos()], -1).view(B, N, -1),
                      torch.stack([a.sin(), a.sin()], -1).view(B, N, -1)))
    cos = torch.cat([f[0] for f in feats], -1)
    sin = torch.cat([f[1] for f in feats], -1)
    return torch.stack([cos, sin], -1).to(xyz.dtype)


def embed_rotary(x, cos, sin):
    x2 = torch.stack([-x[..., 1::2], x[..., ::2]], dim=-1).reshape_as(x)
    return x * cos + x2 * sin


xyz = torch.randn(2, 7, 3, dtype=torch.float64).float()
out["r3d_feat.in0"] = xyz
out["r3d_feat.out"] = rotary3d_features(xyz, 36)
case(out, "r3d_apply", lambda x, pe: embed_rotary(x, pe[..., 0], pe[..., 1]),
     [randn(2, 7, 36), rotary3d_features(xyz, 36)], grad=[True, False], seed=4)

# ---- adaLN / FiLM ---------------------------------------------------------------------------
def modulate(x, shift, scale):
    return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)


case(out, "modulate", modulate, [randn(2, 5, 40), randn(2, 40), randn(2, 40)], seed=10)
case(out, "ln_modulate", lambda x, sh, sc: modulate(F.layer_norm(x, (37,), eps=1e-6), sh, sc),
     [randn(3, 4, 37) * 2 + 1, randn(3, 37), randn(3, 37)], seed=11)
case(out, "gated_residual", lambda x, g, h: x + g.unsqueeze(1) * h,
     [randn(2, 6, 33), randn(2, 33), randn(2, 6, 33)], seed=12)
case(out, "film", lambda x, gm, bt: gm.unsqueeze(1) * x + bt.unsqueeze(1),
     [randn(2, 3, 20), randn(2, 20), randn(2, 20)], seed=13)

fixture.write(os.path.join(os.path.dirname(os.path.abspath(__file__)), "rotary.bin"), out)
