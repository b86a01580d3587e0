#!/usr/bin/env python3
"""bench/cuda_torch.py — the PyTorch peer of `build/bench --device cuda ...` on the same GPU.

    python3 bench/cuda_torch.py gemm|attention|adamw

Prints one line per case, "<case> <seconds per call>", with the case names bench/bench_cuda.c
looks up; nothing else on stdout. The same shapes as bench_cuda.c: bf16 torch.matmul / F.linear
at 4096^3, 8192^3, 600x4096x4096, 600x11008x4096 (M x N x K) and f32 at 4096^3 (TF32 off); scaled_dot_product_attention
forward and backward (autograd.grad of the
output), bf16, (1, 32, T, 128) causal, T = 600 and 4096; torch.optim.AdamW(fused=True) over 64M
f32 parameters. Timed with CUDA events: a warm-up call, then calls filling ~0.3 s.
A peer to compare with, never a dependency of the build; exits 1 without torch or a GPU.
"""
import sys


def timed(fn, min_s=0.3):
    import torch
    fn()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    reps = 1
    while True:
        start.record()
        for _ in range(reps):
            fn()
        end.record()
        end.synchronize()
        sec = start.elapsed_time(end) / 1e3
        if sec >= min_s or reps >= 1 << 16:
            return sec / reps
        reps *= 2


def gemm():
    import torch
    import torch.nn.functional as F
    for (m, n, k) in [(4096, 4096, 4096), (8192, 8192, 8192), (600, 4096, 4096), (600, 11008, 4096)]:
        a = torch.randn(m, k, device="cuda", dtype=torch.bfloat16)
        b = torch.randn(k, n, device="cuda", dtype=torch.bfloat16)
        w = torch.randn(n, k, device="cuda", dtype=torch.bfloat16)
        print(f"gemm_{m}_{n}_{k}_0 {timed(lambda: torch.matmul(a, b)):.9g}", flush=True)
        print(f"gemm_{m}_{n}_{k}_1 {timed(lambda: F.linear(a, w)):.9g}", flush=True)
        del a, b, w
    torch.backends.cuda.matmul.allow_tf32 = False
    a, b = (torch.randn(4096, 4096, device="cuda") for _ in range(2))
    print(f"sgemm_4096 {timed(lambda: torch.matmul(a, b)):.9g}", flush=True)


def attention():
    import torch
    import torch.nn.functional as F
    for t in (600, 4096):
        q, k, v = (torch.randn(1, 32, t, 128, device="cuda", dtype=torch.bfloat16, requires_grad=True) for _ in range(3))
        with torch.no_grad():
            fn = lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True)
            print(f"attn_fwd_{t} {timed(fn):.9g}", flush=True)
        out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        g = torch.randn_like(out)
        bwd = lambda: torch.autograd.grad(out, (q, k, v), g, retain_graph=True)
        print(f"attn_bwd_{t} {timed(bwd):.9g}", flush=True)


def adamw():
    import torch
    n = 64 << 20
    p = torch.nn.Parameter(torch.rand(n, device="cuda"))
    p.grad = torch.rand(n, device="cuda")
    try:
        opt = torch.optim.AdamW([p], lr=1e-3, weight_decay=0.01, fused=True)
    except (TypeError, RuntimeError):
        opt = torch.optim.AdamW([p], lr=1e-3, weight_decay=0.01, foreach=True)
    print(f"adamw_64M {timed(opt.step):.9g}", flush=True)


def main():
    cases = {"gemm": gemm, "attention": attention, "adamw": adamw}
    if len(sys.argv) != 2 or sys.argv[1] not in cases:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        import torch
    except ImportError:
        print("cuda_torch.py: no torch", file=sys.stderr)
        return 1
    if not torch.cuda.is_available():
        print("cuda_torch.py: torch sees no CUDA device", file=sys.stderr)
        return 1
    cases[sys.argv[1]]()
    return 0


if __name__ == "__main__":
    sys.exit(main())
