"""PyTorch reference values for nn/timestep.c (tests/test_timestep.c): the sinusoidal
timestep embedding in the three conventions of the reference code (diffusers'
get_timestep_embedding, DiT's TimestepEmbedder.timestep_embedding, 3D Diffuser Actor's
SinusoidalPosEmb) and DiT's TimestepEmbedder module (sinusoid -> Linear -> SiLU -> Linear);
and for nn/adaln.c (tests/test_adaln.c): 3D Diffuser Actor's AdaLN (sequence-first, scale
then shift) and its diffusion-step + gripper-history conditioning signal.
The formulas are written here from those projects' published semantics, in f32 as they run.

Run from the repository root:  /usr/bin/python3 tests/reference/gen_timestep.py
Writes tests/reference/timestep.bin. Deterministic.
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


def diffusers_emb(t, dim, flip=False, shift=1.0, scale=1.0, max_period=10000.0):
    half = dim // 2
    ex = -math.log(max_period) * torch.arange(0, half, dtype=torch.float32)
    ex = ex / (half - shift)
    a = t[:, None].float() * torch.exp(ex)[None, :]
    a = scale * a
    e = torch.cat([torch.sin(a), torch.cos(a)], dim=-1)
    if flip:
        e = torch.cat([e[:, half:], e[:, :half]], dim=-1)
    if dim % 2 == 1:
        e = F.pad(e, (0, 1, 0, 0))
    return e


def dit_emb(t, dim, max_period=10000.0):
    half = dim // 2
    f = torch.exp(-math.log(max_period) * torch.arange(0, half, dtype=torch.float32) / half)
    a = t[:, None].float() * f[None]
    e = torch.cat([torch.cos(a), torch.sin(a)], dim=-1)
    if dim % 2:
        e = torch.cat([e, torch.zeros_like(e[:, :1])], dim=-1)
    return e


def sinpos_3dda(t, dim):
    half = dim // 2
    k = math.log(10000) / (half - 1)
    f = torch.exp(torch.arange(half) * -k)
    a = t[:, None] * f[None, :]
    return torch.cat((a.sin(), a.cos()), dim=-1)


steps = torch.tensor([0, 1, 17, 250, 500, 999], dtype=torch.int64)
times = torch.tensor([0.0, 0.37, 0.5, 0.999, 3.25], dtype=torch.float32)

out["dit_emb.in0"] = times
out["dit_emb.out"] = dit_emb(times, 256)
out["dit_emb_steps.in0"] = steps
out["dit_emb_steps.out"] = dit_emb(steps, 256)
out["dit_emb_odd.in0"] = steps
out["dit_emb_odd.out"] = dit_emb(steps, 7)
out["diffusers_emb.in0"] = steps
out["diffusers_emb.out"] = diffusers_emb(steps, 64)
out["diffusers_emb_var.in0"] = times
out["diffusers_emb_var.out"] = diffusers_emb(times, 33, flip=True, shift=0.5, scale=1000.0, max_period=500.0)
out["sinpos_emb.in0"] = steps
out["sinpos_emb.out"] = sinpos_3dda(steps, 120)
# the same in f64 throughout (the C f64 path)
d = 64
half = d // 2
f64 = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float64) / half)
a64 = steps.double()[:, None] * f64[None]
out["dit_emb_f64.in0"] = steps
out["dit_emb_f64.out"] = torch.cat([a64.cos(), a64.sin()], dim=-1)

# DiT's TimestepEmbedder(hidden 32, frequency_embedding_size 256); weights random (not the
# zero-bias init) so every gradient is exercised
hidden, fdim = 32, 256


def embedder(t, w1, b1, w2, b2):
    return F.linear(F.silu(F.linear(dit_emb(t, fdim), w1, b1)), w2, b2)


fixture.add_case(out, "t_embedder", embedder,
                 [steps, torch.randn(hidden, fdim) * 0.1, torch.randn(hidden) * 0.1,
                  torch.randn(hidden, hidden) * 0.2, torch.randn(hidden) * 0.1],
                 grad=[False, True, True, True, True], seed=3)


# 3D Diffuser Actor's AdaLN: x (N, B, C) sequence-first, cond (B, C); modulation =
# SiLU -> Linear(C, 2C); scale, shift = chunk(2); x * (1 + scale) + shift. Random (not zero)
# modulation weights so the test can fail.
C, B, N, nhist = 12, 2, 5, 3


def dda_adaln(x, cond, w, b):
    scale, shift = F.linear(F.silu(cond), w, b).chunk(2, dim=-1)
    return x * (1 + scale.unsqueeze(0)) + shift.unsqueeze(0)


fixture.add_case(out, "dda_adaln", dda_adaln,
                 [torch.randn(N, B, C), torch.randn(B, C), torch.randn(2 * C, C) * 0.3, torch.randn(2 * C) * 0.3],
                 seed=4)


# time_emb(t) + curr_gripper_emb(gripper.flatten(1)); t (B) steps, gripper (B, nhist, C)
def dda_cond(t, g, w1, b1, w2, b2, v1, c1, v2, c2):
    te = F.linear(F.relu(F.linear(sinpos_3dda(t, C), w1, b1)), w2, b2)
    ge = F.linear(F.relu(F.linear(g.flatten(1), v1, c1)), v2, c2)
    return te + ge


B3 = 3
fixture.add_case(out, "dda_adaln_cond", dda_cond,
                 [torch.tensor([0, 42, 99], dtype=torch.int64), torch.randn(B3, nhist, C),
                  torch.randn(C, C) * 0.3, torch.randn(C) * 0.3, torch.randn(C, C) * 0.3, torch.randn(C) * 0.3,
                  torch.randn(C, nhist * C) * 0.2, torch.randn(C) * 0.3, torch.randn(C, C) * 0.3, torch.randn(C) * 0.3],
                 grad=[False] + [True] * 9, seed=5)

fixture.write(os.path.join(os.path.dirname(os.path.abspath(__file__)), "timestep.bin"), out)
print("wrote", len(out), "tensors")
