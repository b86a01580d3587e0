"""PyTorch peer of `build/bench dit`: the same DiT specialist (the reference modules of
tests/reference/gen_dit.py, float32, random weights) timed the way bench/bench_dit.c times ours.

  infer   batch 1: encoders + resamplers + latents once, then 5 DDIM steps, each one batched
          pass of the conditional and unconditional inputs (CFG 3) — the same algorithm as
          dv_dit_sample
  train   batch B: encode + noise + denoise + MSE + backward + AdamW step

  infer (released style)  the same work as the official code schedules it: ViTs once, then
          each of the 2 x 5 model calls re-runs the adapters (CFG as two separate calls)

Prints machine-readable lines for the C bench:
  torch_infer_times <s> <s> ...   torch_infer_released_style_times <s> <s> ...  (single chunks)
  torch_train_s <best s>   torch_peak_rss_mb <MiB>
(--infer-reps 0 or --train-reps 0 skips that part)
Run: /usr/bin/python3 bench/dit_torch.py [--preset paper] [--batch 64] [--threads 2]

--device cuda[:N]: the model, its AdamW state and the inputs on that GPU (the reference modules
build masks, tables and paddings with plain torch.* factory calls: they see a copy of the torch
module whose factories default to the GPU — not torch.set_default_device, whose per-call
dispatch hook would slow every op of the launch-bound batch-1 chunk), every timed call ended
by torch.cuda.synchronize() (the warm-up too); torch's defaults otherwise (f32, TF32 off for
matmuls, on for cuDNN convolutions). Instead of the RSS line it prints
  torch_cuda_step_peak_mb <MiB>   max_memory_allocated() during a training step above
                                  memory_allocated() before it (the last timed step)
  torch_cuda_peak_mb <MiB>        max_memory_allocated() during that step, in all (weights,
                                  AdamW state and inputs included; with --train-reps 0 over
                                  the inference)
Without CUDA in this torch it says so on stderr and exits 2. On the CPU (the default) the
behaviour is that of the script before the option existed.
"""
import argparse
import os
import resource
import sys
import time
import types

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "reference"))
import gen_dit as ref  # noqa: E402

PRESETS = {
    "paper": dict(layers=6, heads=8, hidden=256, mlp_ratio=4, chunk=8, action_dim=7, proprio_dim=15,
                  gen_latent_dim=4096, gen_latent_tokens=8, rotary_dims=32, image_size=224, patch=16,
                  vit_layers=6, vit_hidden=256, vit_heads=8, vit_dim_head=32, rgb_vit_layers=12,
                  rgb_vit_hidden=384, rgb_vit_heads=6, static_frames=1, resampler_queries=8,
                  causal=1, vit_cls=0, depth_pool=0, global_latents=0, drop_latent_tokens=1,
                  ca_norm_residual=0, pred="sample"),
}


FACTORIES = ("arange", "empty", "eye", "full", "linspace", "ones", "rand", "randint", "randn", "tensor",
             "zeros")


def torch_on(dev):
    """a copy of the torch module whose factory functions put their result on dev unless told"""
    m = types.ModuleType(f"torch_on_{dev}")
    m.__dict__.update(torch.__dict__)
    for name in FACTORIES:
        def factory(*args, _f=getattr(torch, name), **kw):
            kw.setdefault("device", dev)
            return _f(*args, **kw)
        setattr(m, name, factory)
    return m


def inputs(cfg, B, g):
    I, d = cfg["image_size"], g.device
    return dict(rgb_static=torch.rand(B, cfg["static_frames"], 3, I, I, generator=g, device=d),
                rgb_gripper=torch.rand(B, 3, I, I, generator=g, device=d),
                depth_static=torch.rand(B, 1, I, I, generator=g, device=d),
                depth_gripper=torch.rand(B, 1, I, I, generator=g, device=d),
                proprio=torch.randn(B, cfg["proprio_dim"], generator=g, device=d),
                gen_actions=torch.rand(B, cfg["chunk"], 7, generator=g, device=d) * 2 - 1,
                gen_latents=torch.randn(B, cfg["gen_latent_tokens"], cfg["gen_latent_dim"], generator=g,
                                        device=d))


def timed(fn, n, sync=lambda: None):
    """seconds of n single calls after a warm-up call, each ended by sync() (the GPU's queue)"""
    fn()  # warm-up
    sync()
    ts = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        sync()
        ts.append(time.perf_counter() - t0)
    return ts


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="paper")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--infer-reps", type=int, default=5)
    ap.add_argument("--train-reps", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    a = ap.parse_args()
    try:
        dev = torch.device(a.device)
    except RuntimeError:
        dev = None
    if dev is None or dev.type not in ("cpu", "cuda"):
        sys.exit(f"dit_torch.py: --device {a.device}: expected cpu, cuda or cuda:N")
    cuda = dev.type == "cuda"
    if cuda and not torch.cuda.is_available():
        print(f"dit_torch.py: --device {a.device}: this torch ({torch.__version__}) has no usable CUDA",
              file=sys.stderr)
        sys.exit(2)
    torch.set_num_threads(a.threads)
    torch.set_default_dtype(torch.float32)
    if cuda:
        if dev.index is None:
            dev = torch.device("cuda", torch.cuda.current_device())
        torch.cuda.set_device(dev)
        ref.torch = torch_on(dev)
    torch.manual_seed(0)
    cfg = PRESETS[a.preset]
    pol = ref.Policy(cfg).to(dev)
    for n, p in pol.named_parameters():
        p.requires_grad_(not n.startswith("vision_encoder."))
    g = torch.Generator(device=dev).manual_seed(0)
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    T, N, S = 100, 5, 3.0
    ac = ref.alphas_cumprod(T).float()

    inp1 = inputs(cfg, 1, g)

    def infer():
        with torch.no_grad():
            enc = pol.encode(inp1)
            enc2 = (torch.cat([enc[0]] * 2), torch.cat([enc[1]] * 2), torch.cat([enc[2]] * 2), enc[3])
            x = torch.randn(1, cfg["chunk"], 7, device=dev)
            d2 = torch.tensor([False, True], device=dev)
            for t in range(T - T // N, -1, -(T // N)):
                o = pol.denoise(enc2, torch.cat([x, x]), torch.full((2,), t, dtype=torch.int64, device=dev), d2)
                o = o[1:] + S * (o[:1] - o[1:])
                x = ref.ddim_step(ac, o, t, x, T, N, cfg["pred"])
        return x

    def infer_released_style():
        # as the official predict_action runs it: the ViTs once, then every model call re-runs
        # the adapters (resamplers, latent adapter, cross-attention K/V), CFG as two calls
        with torch.no_grad():
            feats = pol.features(inp1)
            x = torch.randn(1, cfg["chunk"], 7, device=dev)
            for t in range(T - T // N, -1, -(T // N)):
                tt = torch.full((1,), t, dtype=torch.int64, device=dev)
                oc = pol.denoise(pol.adapt(inp1, feats), x, tt, torch.tensor([False], device=dev))
                ou = pol.denoise(pol.adapt(inp1, feats), x, tt, torch.tensor([True], device=dev))
                x = ref.ddim_step(ac, ou + S * (oc - ou), t, x, T, N, cfg["pred"])
        return x

    if a.infer_reps > 0:
        ts = timed(infer, a.infer_reps, sync)
        print("torch_infer_times " + " ".join(f"{t:.6f}" for t in ts), flush=True)
        ts = timed(infer_released_style, a.infer_reps, sync)
        print("torch_infer_released_style_times " + " ".join(f"{t:.6f}" for t in ts), flush=True)

    B = a.batch if a.train_reps > 0 else 1
    inpB = inputs(cfg, B, g)
    actions = torch.rand(B, cfg["chunk"], 7, generator=g, device=dev) * 2 - 1
    opt = torch.optim.AdamW([p for p in pol.parameters() if p.requires_grad], lr=1e-4, weight_decay=1e-3)

    step_peak = [0]

    def train():
        if cuda:
            sync()
            live = torch.cuda.memory_allocated(dev)
            torch.cuda.reset_peak_memory_stats(dev)
        t = torch.randint(0, T, (B,), generator=g, device=dev)
        noise = torch.randn(B, cfg["chunk"], 7, generator=g, device=dev)
        drop = torch.rand(B, generator=g, device=dev) < 0.1
        enc = pol.encode(inpB)
        al = ac[t][:, None, None]
        pred = pol.denoise(enc, al.sqrt() * actions + (1 - al).sqrt() * noise, t, drop)
        loss = F.mse_loss(pred, noise if cfg["pred"] == "epsilon" else actions)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if cuda:
            sync()
            step_peak[0] = torch.cuda.max_memory_allocated(dev) - live

    if a.train_reps > 0:
        t_tr = min(timed(train, a.train_reps, sync))
        print(f"torch_train_s {t_tr:.6f}", flush=True)
    if cuda:
        # train() resets the peak: with training this is the last step's total (weights, AdamW
        # state, inputs included), without it the inference's
        if a.train_reps > 0:
            print(f"torch_cuda_step_peak_mb {step_peak[0] / 1048576:.1f}", flush=True)
        print(f"torch_cuda_peak_mb {torch.cuda.max_memory_allocated(dev) / 1048576:.1f}", flush=True)
    else:
        print(f"torch_peak_rss_mb {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f}", flush=True)


if __name__ == "__main__":
    main()
