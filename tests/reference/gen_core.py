"""PyTorch reference values for the core ops (tests/test_fixtures_core.c).

Run from the repository root:  /usr/bin/python3 tests/reference/gen_core.py
Writes tests/reference/core.bin. Deterministic (fixed seeds); f32 inputs, as the C side runs f32.
"""
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
import fixture  # noqa: E402

torch.manual_seed(1234)
out = {}


def r(*shape, positive=False):
    x = torch.randn(*shape, dtype=torch.float32)
    return x.abs() + 0.2 if positive else x


unary = {
    "neg": torch.neg, "exp": torch.exp, "log": torch.log, "sqrt": torch.sqrt,
    "rsqrt": torch.rsqrt, "abs": torch.abs, "tanh": torch.tanh, "sigmoid": torch.sigmoid,
    "relu": torch.relu, "gelu": lambda x: F.gelu(x), "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "quick_gelu": lambda x: x * torch.sigmoid(1.702 * x), "silu": F.silu, "square": torch.square,
    "pow": lambda x: torch.pow(x, 2.5), "clamp": lambda x: torch.clamp(x, -0.5, 0.7),
    "affine": lambda x: -1.5 * x + 0.25,
}
for i, (name, fn) in enumerate(unary.items()):
    fixture.add_case(out, "unary_" + name, fn,
                     [r(4, 33, positive=name in ("log", "sqrt", "rsqrt", "pow"))], seed=i)

binary = {"add": torch.add, "sub": torch.sub, "mul": torch.mul, "div": torch.div,
          "pow": torch.pow, "maximum": torch.maximum, "minimum": torch.minimum}
for i, (name, fn) in enumerate(binary.items()):
    pos = name in ("pow", "div")
    fixture.add_case(out, "binary_" + name, fn, [r(2, 3, 17, positive=pos), r(3, 1, positive=pos)], seed=100 + i)

fixture.add_case(out, "where", lambda c, a, b: torch.where(c, a, b),
                 [torch.rand(4, 1) > 0.5, r(4, 6), r(6)], grad=[False, True, True], seed=200)
fixture.add_case(out, "sum_dims", lambda x: x.sum(dim=(0, 2)), [r(3, 4, 5)], seed=201)
fixture.add_case(out, "mean_keepdim", lambda x: x.mean(dim=-1, keepdim=True), [r(3, 4, 5)], seed=202)
fixture.add_case(out, "views", lambda x: x.permute(1, 0, 2)[:, :, ::2].reshape(3, 1, 4).expand(2, 3, 5, 4) * 1.0,
                 [r(2, 3, 4)], seed=203)
fixture.add_case(out, "matmul_batched", torch.matmul, [r(2, 1, 5, 7), r(3, 7, 4)], seed=204)
fixture.add_case(out, "matmul_vec", torch.matmul, [r(7), r(2, 7, 3)], seed=205)
fixture.add_case(out, "linear", lambda x, w, b: F.linear(x, w, b), [r(2, 3, 20), r(9, 20), r(9)], seed=206)
fixture.add_case(out, "cast_f64", lambda x: x.double() * 3, [r(5)], seed=207)

fixture.write(os.path.join(os.path.dirname(__file__), "core.bin"), out)
print("wrote", len(out), "tensors")
