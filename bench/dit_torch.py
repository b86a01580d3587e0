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
"""
import argparse
import os
import resource
import sys
import time

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


def inputs(cfg, B, g):
    I = cfg["image_size"]
    return dict(rgb_static=torch.rand(B, cfg["static_frames"], 3, I, I, generator=g),
                rgb_gripper=torch.rand(B, 3, I, I, generator=g),
                depth_static=torch.rand(B, 1, I, I, generator=g),
                depth_gripper=torch.rand(B, 1, I, I, generator=g),
                proprio=torch.randn(B, cfg["proprio_dim"], generator=g),
                gen_actions=torch.rand(B, cfg["chunk"], 7, generator=g) * 2 - 1,
                gen_latents=torch.randn(B, cfg["gen_latent_tokens"], cfg["gen_latent_dim"], generator=g))


def timed(fn, n):
    """seconds of n single calls after a warm-up call"""
    fn()  # warm-up
    ts = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return ts


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="paper")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--infer-reps", type=int, default=5)
    ap.add_argument("--train-reps", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.set_default_dtype(torch.float32)
    torch.manual_seed(0)
    cfg = PRESETS[a.preset]
    pol = ref.Policy(cfg)
    for n, p in pol.named_parameters():
        p.requires_grad_(not n.startswith("vision_encoder."))
    g = torch.Generator().manual_seed(0)
    T, N, S = 100, 5, 3.0
    ac = ref.alphas_cumprod(T).float()

    inp1 = inputs(cfg, 1, g)

    def infer():
        with torch.no_grad():
            enc = pol.encode(inp1)
            enc2 = (torch.cat([enc[0]] * 2), torch.cat([enc[1]] * 2), torch.cat([enc[2]] * 2), enc[3])
            x = torch.randn(1, cfg["chunk"], 7)
            d2 = torch.tensor([False, True])
            for t in range(T - T // N, -1, -(T // N)):
                o = pol.denoise(enc2, torch.cat([x, x]), torch.full((2,), t, dtype=torch.int64), d2)
                o = o[1:] + S * (o[:1] - o[1:])
                x = ref.ddim_step(ac, o, t, x, T, N, cfg["pred"])
        return x

    def infer_released_style():
        # as the official predict_action runs it: the ViTs once, then every model call re-runs
        # the adapters (resamplers, latent adapter, cross-attention K/V), CFG as two calls
        with torch.no_grad():
            feats = pol.features(inp1)
            x = torch.randn(1, cfg["chunk"], 7)
            for t in range(T - T // N, -1, -(T // N)):
                tt = torch.full((1,), t, dtype=torch.int64)
                oc = pol.denoise(pol.adapt(inp1, feats), x, tt, torch.tensor([False]))
                ou = pol.denoise(pol.adapt(inp1, feats), x, tt, torch.tensor([True]))
                x = ref.ddim_step(ac, ou + S * (oc - ou), t, x, T, N, cfg["pred"])
        return x

    if a.infer_reps > 0:
        ts = timed(infer, a.infer_reps)
        print("torch_infer_times " + " ".join(f"{t:.6f}" for t in ts), flush=True)
        ts = timed(infer_released_style, a.infer_reps)
        print("torch_infer_released_style_times " + " ".join(f"{t:.6f}" for t in ts), flush=True)

    B = a.batch if a.train_reps > 0 else 1
    inpB = inputs(cfg, B, g)
    actions = torch.rand(B, cfg["chunk"], 7, generator=g) * 2 - 1
    opt = torch.optim.AdamW([p for p in pol.parameters() if p.requires_grad], lr=1e-4, weight_decay=1e-3)

    def train():
        t = torch.randint(0, T, (B,), generator=g)
        noise = torch.randn(B, cfg["chunk"], 7, generator=g)
        drop = torch.rand(B, generator=g) < 0.1
        enc = pol.encode(inpB)
        al = ac[t][:, None, None]
        pred = pol.denoise(enc, al.sqrt() * actions + (1 - al).sqrt() * noise, t, drop)
        loss = F.mse_loss(pred, noise if cfg["pred"] == "epsilon" else actions)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    if a.train_reps > 0:
        t_tr = min(timed(train, a.train_reps))
        print(f"torch_train_s {t_tr:.6f}", flush=True)
    print(f"torch_peak_rss_mb {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f}", flush=True)


if __name__ == "__main__":
    main()
