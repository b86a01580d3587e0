"""PyTorch reference trajectories for optim/ (tests/test_optim.c reads tests/reference/optim.bin).

Run from the repository root:  /usr/bin/python3 tests/reference/gen_optim.py

Optimiser cases C (AdamW / SGD, f32 and f64), four parameters in two groups with different
hyperparameters, T steps with fixed random gradients; some parameters have no gradient on some
steps (torch skips them: no decay, no state change):
  C.init.<p>      the parameter before the first step
  C.grad.<p>      (T, *shape) the gradient fed at each step (rows without a gradient are 0)
  C.has_grad      (T, nparams) bool
  C.lr_mult       (T,) the LambdaLR multiplier used at each step (f64)
  C.traj.<p>      (T, *shape) the parameter after each step
  C.<state>.<p>   the final optimiser state (exp_avg, exp_avg_sq, step / momentum_buffer)
Clipping cases: clip.grad<i> before, clip.out<i> after clip_grad_norm_, clip.total (f64).
Schedules: sched.<name>.mult (f64) at steps 0 .. len-1, from transformers' formulas.
"""
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture  # noqa: E402

T = 12
PARAMS = [("w1", (4, 5)), ("w2", (3, 7)), ("bias", (7,)), ("gain", (6,))]
GROUP_OF = [0, 0, 1, 1]
# steps (0-based) at which a parameter has no gradient
NO_GRAD = {"w2": {0, 4}, "gain": {3, 4, 8}}


def cosine_with_warmup(step, warmup, total, num_cycles=0.5):
    """transformers.get_cosine_schedule_with_warmup's lambda."""
    if step < warmup:
        return float(step) / float(max(1, warmup))
    progress = float(step - warmup) / float(max(1, total - warmup))
    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * float(num_cycles) * 2.0 * progress)))


def constant_with_warmup(step, warmup):
    if step < warmup:
        return float(step) / float(max(1.0, warmup))
    return 1.0


def run_optimiser(out, case, dtype, make_opt, state_keys, schedule):
    g = torch.Generator().manual_seed(sum(map(ord, case)))
    params = []
    for name, shape in PARAMS:
        p = torch.randn(shape, generator=g, dtype=dtype).requires_grad_(True)
        out[f"{case}.init.{name}"] = p.detach().clone()
        params.append(p)
    grads = {name: torch.zeros((T,) + shape, dtype=dtype) for name, shape in PARAMS}
    has_grad = torch.ones(T, len(PARAMS), dtype=torch.bool)
    traj = {name: torch.zeros((T,) + shape, dtype=dtype) for name, shape in PARAMS}
    groups = [[p for p, gi in zip(params, GROUP_OF) if gi == k] for k in range(2)]
    opt = make_opt(groups)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule)
    mults = torch.zeros(T, dtype=torch.float64)
    for t in range(T):
        mults[t] = opt.param_groups[0]["lr"] / opt.param_groups[0]["initial_lr"]
        for k, (name, shape) in enumerate(PARAMS):
            if t in NO_GRAD.get(name, ()):
                params[k].grad = None
                has_grad[t, k] = False
            else:
                # gradients of varying scale, so the second moment matters
                gr = torch.randn(shape, generator=g, dtype=dtype) * (0.5 + t % 3)
                params[k].grad = gr.clone()
                grads[name][t] = gr
        opt.step()
        sched.step()
        for k, (name, _) in enumerate(PARAMS):
            traj[name][t] = params[k].detach()
    for name, _ in PARAMS:
        out[f"{case}.grad.{name}"] = grads[name]
        out[f"{case}.traj.{name}"] = traj[name]
    out[f"{case}.has_grad"] = has_grad
    out[f"{case}.lr_mult"] = mults
    for k, (name, _) in enumerate(PARAMS):
        st = opt.state[params[k]]
        for key in state_keys:
            v = st[key]
            if key == "step":
                v = torch.tensor(int(v.item()) if torch.is_tensor(v) else int(v), dtype=torch.int64)
            out[f"{case}.{key}.{name}"] = v


def adamw(groups):
    return torch.optim.AdamW([
        {"params": groups[0], "lr": 1e-2, "weight_decay": 0.1},
        {"params": groups[1], "lr": 3e-3, "weight_decay": 0.0, "betas": (0.8, 0.99), "eps": 1e-6},
    ])


def sgd_momentum(groups):
    return torch.optim.SGD([
        {"params": groups[0], "lr": 5e-2, "momentum": 0.9, "dampening": 0.1, "weight_decay": 1e-2},
        {"params": groups[1], "lr": 2e-2, "momentum": 0.5},
    ], lr=0.1)


def sgd_nesterov(groups):
    return torch.optim.SGD([
        {"params": groups[0], "lr": 5e-2, "momentum": 0.9, "nesterov": True, "weight_decay": 5e-2},
        {"params": groups[1], "lr": 2e-2, "momentum": 0.0, "weight_decay": 0.0},
    ], lr=0.1)


def main():
    out = {}
    for dtype, sfx in ((torch.float64, "f64"), (torch.float32, "f32")):
        run_optimiser(out, f"adamw_{sfx}", dtype, adamw, ["exp_avg", "exp_avg_sq", "step"],
                      lambda s: cosine_with_warmup(s, 3, T))
        run_optimiser(out, f"sgd_momentum_{sfx}", dtype, sgd_momentum, ["momentum_buffer"],
                      lambda s: constant_with_warmup(s, 2))
        run_optimiser(out, f"sgd_nesterov_{sfx}", dtype, sgd_nesterov, [], lambda s: 1.0)

    # clip_grad_norm_: one case that clips, one that does not; a parameter without a gradient
    g = torch.Generator().manual_seed(7)
    for case, max_norm in (("clip", 1.0), ("clip_noop", 100.0)):
        ps = [torch.zeros(s, requires_grad=True) for s in ((10,), (3, 4), (5,), (2, 2))]
        for i, p in enumerate(ps[:3]):
            p.grad = torch.randn(p.shape, generator=g) * (i + 1)
            out[f"{case}.grad{i}"] = p.grad.clone()
        total = torch.nn.utils.clip_grad_norm_(ps, max_norm)
        for i, p in enumerate(ps[:3]):
            out[f"{case}.out{i}"] = p.grad.clone()
        out[f"{case}.total"] = total.double().reshape(())
        out[f"{case}.max_norm"] = torch.tensor(max_norm, dtype=torch.float64)

    steps = range(0, 45)
    out["sched.cosine.mult"] = torch.tensor([cosine_with_warmup(s, 5, 40) for s in steps], dtype=torch.float64)
    out["sched.constant_with_warmup.mult"] = torch.tensor([constant_with_warmup(s, 5) for s in steps],
                                                          dtype=torch.float64)
    fixture.write(os.path.join(os.path.dirname(os.path.abspath(__file__)), "optim.bin"), out)


if __name__ == "__main__":
    main()
