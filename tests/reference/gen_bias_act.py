"""PyTorch reference values for the fused bias + activation op (nn/bias_act.c,
tests/test_bias_act.c): y = act(x + b) for none, relu, gelu (erf), gelu_tanh, quick_gelu and
silu, with the gradients of x and b for a random output gradient.

Run from the repository root:  /usr/bin/python3 tests/reference/gen_bias_act.py
Writes tests/reference/bias_act.bin. Deterministic.
"""
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture  # noqa: E402

torch.manual_seed(0)
out = {}

ACTS = {
    "none": lambda z: z,
    "relu": F.relu,
    "gelu": F.gelu,
    "gelu_tanh": lambda z: F.gelu(z, approximate="tanh"),
    "quick_gelu": lambda z: z * torch.sigmoid(1.702 * z),
    "silu": F.silu,
}

for k, (name, act) in enumerate(ACTS.items()):
    # (B, T, N) with N = 37: a full 16-lane block, a second and a tail of 5
    x = torch.randn(3, 5, 37) * 2.5
    b = torch.randn(37)
    fixture.add_case(out, name, lambda x, b, act=act: act(x + b), [x, b], seed=10 + k)

# no bias
fixture.add_case(out, "silu_nobias", F.silu, [torch.randn(6, 20) * 3], seed=20)

fixture.write(os.path.join(os.path.dirname(os.path.abspath(__file__)), "bias_act.bin"), out)
print("wrote", len(out), "tensors")
