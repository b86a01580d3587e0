"""PyTorch reference values for the reduction, normalisation and loss ops
(tests/test_reduce.c, tests/test_norm.c, tests/test_loss.c).

Run from the repository root:  /usr/bin/python3 tests/reference/gen_norm.py
Writes tests/reference/norm.bin. Deterministic: fixed seeds, CPU, float32 unless noted.
Each case name is the one the C tests ask for; the C side knows the op's extra arguments
(dim, keepdim, eps, ignore_index, ...) from the same table.
"""
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture  # noqa: E402

torch.manual_seed(0)
torch.use_deterministic_algorithms(True)
out = {}
case = fixture.add_case


def randn(*shape, scale=1.0, dtype=torch.float32):
    return torch.randn(*shape, dtype=torch.float64).mul(scale).to(dtype)


# ---- reductions --------------------------------------------------------------------------
case(out, "max_d1", lambda x: x.max(1).values, [randn(4, 7)], seed=1)
case(out, "max_d0_keep", lambda x: x.max(0, keepdim=True).values, [randn(3, 5, 2)], seed=2)
# ties: integer values, the gradient goes to the first maximum
ties = torch.tensor([[1., 3., 3., 0.], [2., 2., 1., 2.], [5., 5., 5., 5.]])
case(out, "max_ties", lambda x: x.max(1).values, [ties], seed=3)
case(out, "min_dneg", lambda x: x.min(-1).values, [randn(3, 6)], seed=4)
case(out, "min_ties_keep", lambda x: x.min(0, keepdim=True).values, [-ties], seed=5)
case(out, "argmax_d1", lambda x: x.argmax(1), [randn(5, 9)], grad=[False])
case(out, "argmax_ties_d0_keep", lambda x: x.argmax(0, keepdim=True), [ties.t().contiguous()], grad=[False])
case(out, "logsumexp_last", lambda x: torch.logsumexp(x, -1), [randn(4, 10)], seed=6)
case(out, "logsumexp_d0_keep_big", lambda x: torch.logsumexp(x, 0, keepdim=True), [randn(6, 3, scale=60)], seed=7)
case(out, "var_d02_keep", lambda x: torch.var(x, dim=(0, 2), correction=1, keepdim=True), [randn(3, 4, 5)], seed=8)
case(out, "var_all_c0", lambda x: torch.var(x, dim=None, correction=0), [randn(4, 6, scale=3)], seed=9)
case(out, "var_d1", lambda x: torch.var(x, dim=1, correction=1), [randn(5, 7) + 10], seed=10)
case(out, "cumsum_d1", lambda x: torch.cumsum(x, 1), [randn(3, 8)], seed=11)
case(out, "cumsum_d0", lambda x: torch.cumsum(x, 0), [randn(5, 2, 3)], seed=12)

# ---- softmax / norms ---------------------------------------------------------------------
case(out, "softmax_last", lambda x: F.softmax(x, -1), [randn(6, 37)], seed=20)
case(out, "softmax_d1", lambda x: F.softmax(x, 1), [randn(2, 5, 7)], seed=21)   # a non-last dim
case(out, "softmax_big", lambda x: F.softmax(x, -1), [randn(3, 20, scale=40)], seed=22)
case(out, "log_softmax_last", lambda x: F.log_softmax(x, -1), [randn(5, 33)], seed=23)
case(out, "log_softmax_d0", lambda x: F.log_softmax(x, 0), [randn(9, 4, scale=5)], seed=24)
case(out, "layer_norm_affine",
     lambda x, w, b: F.layer_norm(x, (48,), w, b, 1e-5),
     [randn(2, 3, 48), 1 + randn(48, scale=0.3), randn(48, scale=0.3)], seed=25)
case(out, "layer_norm_plain", lambda x: F.layer_norm(x, (40,), None, None, 1e-6), [randn(4, 40, scale=2) + 3], seed=26)
case(out, "layer_norm_weight", lambda x, w: F.layer_norm(x, (19,), w, None, 1e-5),
     [randn(5, 19), randn(19)], seed=27)


def rms_norm(x, w, eps):
    y = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)
    return y * w if w is not None else y


case(out, "rms_norm_weight", lambda x, w: rms_norm(x, w, 1e-6), [randn(3, 64), 1 + randn(64, scale=0.2)], seed=28)
case(out, "rms_norm_plain", lambda x: rms_norm(x, None, 1e-5), [randn(2, 2, 20)], seed=29)
# f64 through the portable f64 kernels
case(out, "layer_norm_f64", lambda x, w, b: F.layer_norm(x, (24,), w, b, 1e-5),
     [randn(3, 24, dtype=torch.float64), randn(24, dtype=torch.float64), randn(24, dtype=torch.float64)], seed=30)

# ---- losses ------------------------------------------------------------------------------
case(out, "mse", F.mse_loss, [randn(4, 5), randn(4, 5)], seed=40)
case(out, "l1", F.l1_loss, [randn(4, 5), randn(4, 5)], seed=41)
bce_x = randn(6, 5, scale=4)
bce_x[0, 0] = 0.0                    # the kink of max(x, 0) and |x|
bce_x[1, 1] = 60.0                   # exp would overflow in the naive form
bce_x[2, 2] = -60.0
case(out, "bce", F.binary_cross_entropy_with_logits, [bce_x, torch.rand(6, 5)], seed=42)
ce_t = torch.randint(0, 10, (8,))
case(out, "ce_basic", lambda x, t: F.cross_entropy(x, t), [randn(8, 10, scale=3), ce_t], seed=43)
ce_t2 = ce_t.clone()
ce_t2[[1, 4, 5]] = -100
case(out, "ce_ignore_default", lambda x, t: F.cross_entropy(x, t), [randn(8, 10), ce_t2], seed=44)
ce_t3 = torch.tensor([2, 0, 2, 1, 3, 2, 4], dtype=torch.int32)
case(out, "ce_ignore2_i32", lambda x, t: F.cross_entropy(x, t.long(), ignore_index=2),
     [randn(7, 5, scale=20), ce_t3], seed=45)
case(out, "ce_all_ignored", lambda x, t: F.cross_entropy(x, t),
     [randn(3, 4), torch.full((3,), -100, dtype=torch.int64)], seed=46)

path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "norm.bin")
fixture.write(path, out)
print(f"wrote {path}: {len(out)} tensors, {os.path.getsize(path)} bytes")
