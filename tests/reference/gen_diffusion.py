"""Reference values for the diffusion schedulers (tests/test_diffusion.c -> nn/diffusion.c).

Run from the repository root:  /usr/bin/python3 tests/reference/gen_diffusion.py
Writes tests/reference/diffusion.bin. Deterministic (fixed seeds).

The target is Hugging Face diffusers' DDPMScheduler and DDIMScheduler (the samplers 3D Diffuser
Actor and RoboDual use), but diffusers itself is not a dependency: this is our own
implementation, written from the equations of the papers (DDPM: Ho et al. 2020, eq. 7 and 15;
DDIM: Song et al. 2021, eq. 12 and 16; the cosine schedule: Nichol & Dhariwal 2021, eq. 17)
plus the documented behaviour of diffusers' configuration options. It computes the way a
PyTorch f32 sampler does -- the schedule tensors are f32, every per-step scalar is a 0-d f32
tensor -- so its numbers are the ones diffusers produces, to f32 rounding.

What is recorded (every case is self-describing: its configuration is stored next to it):
  sched<i>.cfg            f64 [beta_schedule, T, beta_start, beta_end]
  sched<i>.betas, .alphas_cumprod    f32 (T)
  ts<i>.cfg               i64 [T, N, spacing, steps_offset]
  ts<i>.timesteps         i64, what set_timesteps(N) gives
  noise<i>.cfg            f64 [beta_schedule, T, beta_start, beta_end]
  noise<i>.x0, .noise, .timesteps (i64, per batch element), .noisy (add_noise), .velocity
  loop<i>.cfg             f64, see LOOP_FIELDS
  loop<i>.x_init          the starting sample x_T, shape (B, L, D)
  loop<i>.bias, .noise    (S, B, L, D): the "model" of step k is  w * x + bias[k];  noise[k]
                          is the Gaussian noise the step may add (the C side gets the same)
  loop<i>.out, .x0        (S, B, L, D): x_{t-1} and the (clipped) predicted x_0 after step k
"""
import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
import fixture  # noqa: E402

F32 = torch.float32
BETA = {"linear": 0, "scaled_linear": 1, "squaredcos_cap_v2": 2}
PRED = {"epsilon": 0, "sample": 1, "v_prediction": 2}
SPACING = {"leading": 0, "trailing": 1, "linspace": 2}
VARIANCE = {"fixed_small": 0, "fixed_small_log": 1, "fixed_large": 2}
LOOP_FIELDS = ["kind", "T", "beta_schedule", "beta_start", "beta_end", "prediction", "clip",
               "clip_range", "spacing", "steps_offset", "N", "variance", "set_alpha_to_one",
               "eta", "use_clipped_model_output", "w"]


# ---- the forward process ------------------------------------------------------------------
def linspace_f32(a, b, n):
    """linspace(a, b, n) in f32 the way PyTorch's CPU kernel (torch >= 2.1) computes it, every
    operation rounded to f32: step = (b - a) / (n - 1), the first n // 2 points counted up from a
    and the rest down from b. We spell it out instead of calling torch.linspace because older
    torch builds vectorise it and land a few ulps elsewhere -- and those ulps matter: the DDPM
    step's beta_t = 1 - abar_t / abar_{t-1} cancels to ~1e-4, so a one-ulp change of abar moves
    a 100-step DDPM trajectory by ~4e-5."""
    a, b = np.float32(a), np.float32(b)
    if n == 1:
        return torch.tensor([a], dtype=F32)
    step = (b - a) / np.float32(n - 1)
    v = [a + step * np.float32(i) if i < n // 2 else b - step * np.float32(n - 1 - i) for i in range(n)]
    return torch.tensor(np.array(v, dtype=np.float32))


def make_betas(kind, T, b0, b1):
    if kind == "linear":
        return linspace_f32(b0, b1, T)
    if kind == "scaled_linear":  # linear in sqrt(beta), then squared
        return linspace_f32(b0 ** 0.5, b1 ** 0.5, T) ** 2
    if kind == "squaredcos_cap_v2":
        # alpha_bar(s) = cos^2(((s + 0.008) / 1.008) * pi / 2); beta_i = 1 - alpha_bar((i+1)/T) /
        # alpha_bar(i/T), capped at 0.999 so the last step is not a division by ~0
        def abar(s):
            return math.cos((s + 0.008) / 1.008 * math.pi / 2) ** 2
        return torch.tensor([min(1 - abar((i + 1) / T) / abar(i / T), 0.999) for i in range(T)], dtype=F32)
    raise ValueError(kind)


def make_schedule(kind, T, b0=1e-4, b1=0.02):
    betas = make_betas(kind, T, b0, b1)
    alphas_cumprod = torch.cumprod(1.0 - betas, dim=0)
    return betas, alphas_cumprod


# ---- inference timesteps --------------------------------------------------------------------
def inference_timesteps(T, N, spacing, offset):
    if spacing == "leading":  # every (T // N)-th step from 0, descending, shifted by offset
        k = T // N
        return np.array([i * k for i in range(N)][::-1], dtype=np.int64) + offset
    if spacing == "trailing":  # count down from T in steps of T / N (float), round half-even, -1
        return np.round(np.arange(T, 0, -T / N)).astype(np.int64) - 1
    if spacing == "linspace":  # N points evenly over [0, T-1], rounded half-even, descending
        return np.linspace(0, T - 1, N).round()[::-1].astype(np.int64)
    raise ValueError(spacing)


# ---- predicted x_0 and its noise ------------------------------------------------------------
def predict_x0(pred, a_t, m, x):
    if pred == "epsilon":    # x = sqrt(a) x0 + sqrt(1-a) eps
        return (x - (1 - a_t) ** 0.5 * m) / a_t ** 0.5
    if pred == "sample":
        return m
    if pred == "v_prediction":  # v = sqrt(a) eps - sqrt(1-a) x0
        return a_t ** 0.5 * x - (1 - a_t) ** 0.5 * m
    raise ValueError(pred)


def predict_eps(pred, a_t, m, x, x0):
    if pred == "epsilon":
        return m
    if pred == "sample":
        return (x - a_t ** 0.5 * x0) / (1 - a_t) ** 0.5
    return a_t ** 0.5 * m + (1 - a_t) ** 0.5 * x


def clip(c, x0):
    return x0.clamp(-c["clip_range"], c["clip_range"]) if c["clip"] else x0


# ---- DDPM (Ho et al. 2020): posterior q(x_{t-1} | x_t, x_0) between inference steps ------------
def ddpm_step(c, ac, timesteps, m, t, x, z):
    i = int(np.nonzero(timesteps == t)[0][0])
    prev = int(timesteps[i + 1]) if i + 1 < len(timesteps) else -1
    a_t = ac[t]
    a_prev = ac[prev] if prev >= 0 else torch.tensor(1.0)
    alpha = a_t / a_prev             # the one-step alpha between t and prev
    beta = 1 - alpha
    x0 = clip(c, predict_x0(c["prediction"], a_t, m, x))
    # posterior mean (eq. 7): sqrt(a_prev) beta / (1 - a_t) x0 + sqrt(alpha) (1 - a_prev) / (1 - a_t) x_t
    mean = (a_prev ** 0.5 * beta / (1 - a_t)) * x0 + (alpha ** 0.5 * (1 - a_prev) / (1 - a_t)) * x
    if t > 0:
        var = ((1 - a_prev) / (1 - a_t) * beta).clamp(min=1e-20)  # posterior variance beta~
        if c["variance"] == "fixed_small":
            std = var ** 0.5
        elif c["variance"] == "fixed_small_log":
            std = torch.exp(0.5 * torch.log(var))
        else:  # fixed_large: the forward beta itself
            std = beta ** 0.5
        mean = mean + std * z
    return mean, x0


# ---- DDIM (Song et al. 2021, eq. 12 and 16) ---------------------------------------------------
def ddim_step(c, ac, m, t, x, z):
    prev = t - c["T"] // c["N"]
    a_t = ac[t]
    if prev >= 0:
        a_prev = ac[prev]
    else:
        a_prev = torch.tensor(1.0) if c["set_alpha_to_one"] else ac[0]
    x0_raw = predict_x0(c["prediction"], a_t, m, x)
    eps = predict_eps(c["prediction"], a_t, m, x, x0_raw)  # from the unclipped x0
    x0 = clip(c, x0_raw)
    var = (1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev)
    sigma = c["eta"] * var ** 0.5
    if c["use_clipped_model_output"]:
        eps = (x - a_t ** 0.5 * x0) / (1 - a_t) ** 0.5
    out = a_prev ** 0.5 * x0 + (1 - a_prev - sigma ** 2) ** 0.5 * eps
    if c["eta"] > 0:
        out = out + sigma * z
    return out, x0


# ---- cases ----------------------------------------------------------------------------------
out = {}


def cfg_tensor(c):
    enc = {"kind": {"ddpm": 0, "ddim": 1}[c["kind"]], "beta_schedule": BETA[c["beta_schedule"]],
           "prediction": PRED[c["prediction"]], "spacing": SPACING[c["spacing"]],
           "variance": VARIANCE[c["variance"]]}
    return torch.tensor([float(enc.get(k, c[k])) for k in LOOP_FIELDS], dtype=torch.float64)


def loop_case(idx, seed, shape=(2, 4, 3), **kw):
    c = dict(kind="ddpm", T=100, beta_schedule="linear", beta_start=1e-4, beta_end=0.02,
             prediction="epsilon", clip=True, clip_range=1.0, spacing="leading", steps_offset=0,
             N=10, variance="fixed_small", set_alpha_to_one=True, eta=0.0,
             use_clipped_model_output=False, w=0.5)
    c.update(kw)
    _, ac = make_schedule(c["beta_schedule"], c["T"], c["beta_start"], c["beta_end"])
    ts = inference_timesteps(c["T"], c["N"], c["spacing"], c["steps_offset"])
    g = torch.Generator().manual_seed(seed)
    S = len(ts)
    x = torch.randn(shape, generator=g, dtype=F32)
    bias = 0.5 * torch.randn((S,) + shape, generator=g, dtype=F32)
    noise = torch.randn((S,) + shape, generator=g, dtype=F32)
    name = f"loop{idx}"
    out[name + ".cfg"] = cfg_tensor(c)
    out[name + ".x_init"] = x.clone()
    out[name + ".bias"] = bias
    out[name + ".noise"] = noise
    outs, x0s = [], []
    for k, t in enumerate(ts):
        m = c["w"] * x + bias[k]  # a stand-in denoiser that depends on its input
        if c["kind"] == "ddpm":
            x, x0 = ddpm_step(c, ac, ts, m, int(t), x, noise[k])
        else:
            x, x0 = ddim_step(c, ac, m, int(t), x, noise[k])
        outs.append(x)
        x0s.append(x0)
    out[name + ".out"] = torch.stack(outs)
    out[name + ".x0"] = torch.stack(x0s)
    return torch.stack(outs)


def main():
    # schedules
    for i, (kind, T) in enumerate([("linear", 100), ("scaled_linear", 100), ("squaredcos_cap_v2", 100),
                                   ("linear", 1000), ("scaled_linear", 1000), ("squaredcos_cap_v2", 1000)]):
        betas, ac = make_schedule(kind, T)
        out[f"sched{i}.cfg"] = torch.tensor([BETA[kind], T, 1e-4, 0.02], dtype=torch.float64)
        out[f"sched{i}.betas"] = betas
        out[f"sched{i}.alphas_cumprod"] = ac
    # SD-style scaled_linear range, to exercise beta_start / beta_end
    betas, ac = make_schedule("scaled_linear", 1000, 0.00085, 0.012)
    out["sched6.cfg"] = torch.tensor([BETA["scaled_linear"], 1000, 0.00085, 0.012], dtype=torch.float64)
    out["sched6.betas"] = betas
    out["sched6.alphas_cumprod"] = ac

    # set_timesteps
    ts_cases = [(100, 10, "leading", 0), (100, 100, "leading", 0), (100, 5, "leading", 0),
                (100, 3, "leading", 0), (100, 7, "leading", 1), (1000, 50, "leading", 1),
                (100, 1, "leading", 0), (100, 10, "trailing", 0), (100, 8, "trailing", 0),
                (100, 3, "trailing", 0), (1000, 7, "trailing", 0), (100, 29, "trailing", 0),
                (17, 7, "trailing", 0), (100, 1, "trailing", 0), (100, 10, "linspace", 0),
                (100, 7, "linspace", 0), (1000, 6, "linspace", 0), (100, 1, "linspace", 0),
                (100, 100, "linspace", 0)]
    for i, (T, N, sp, off) in enumerate(ts_cases):
        out[f"ts{i}.cfg"] = torch.tensor([T, N, SPACING[sp], off], dtype=torch.int64)
        out[f"ts{i}.timesteps"] = torch.from_numpy(inference_timesteps(T, N, sp, off))

    # add_noise and the v-prediction target, per-batch timesteps
    g = torch.Generator().manual_seed(7)
    for i, kind in enumerate(["linear", "scaled_linear", "squaredcos_cap_v2"]):
        _, ac = make_schedule(kind, 100)
        x0 = torch.randn(5, 4, 3, generator=g, dtype=F32)
        noise = torch.randn(5, 4, 3, generator=g, dtype=F32)
        t = torch.tensor([0, 37, 99, 63, 99], dtype=torch.int64)
        sa = (ac[t] ** 0.5).view(-1, 1, 1)
        sb = ((1 - ac[t]) ** 0.5).view(-1, 1, 1)
        out[f"noise{i}.cfg"] = torch.tensor([BETA[kind], 100, 1e-4, 0.02], dtype=torch.float64)
        out[f"noise{i}.x0"] = x0
        out[f"noise{i}.noise"] = noise
        out[f"noise{i}.timesteps"] = t
        out[f"noise{i}.noisy"] = sa * x0 + sb * noise
        out[f"noise{i}.velocity"] = sa * noise - sb * x0

    # sampling loops: every schedule x prediction type x clip_sample, for both samplers
    idx = 0
    for kind, N in [("ddpm", 10), ("ddim", 5)]:
        for sched in ["linear", "scaled_linear", "squaredcos_cap_v2"]:
            for pred in ["epsilon", "sample", "v_prediction"]:
                for cl in [True, False]:
                    loop_case(idx, 1000 + idx, kind=kind, N=N, beta_schedule=sched, prediction=pred, clip=cl)
                    idx += 1
    extras = [
        # 3D Diffuser Actor: position / rotation schedulers, 100 train and 100 inference steps
        dict(kind="ddpm", N=100, beta_schedule="scaled_linear", shape=(1, 5, 3)),
        dict(kind="ddpm", N=100, beta_schedule="squaredcos_cap_v2", shape=(1, 5, 6)),
        dict(kind="ddpm", variance="fixed_small_log", beta_schedule="squaredcos_cap_v2"),
        dict(kind="ddpm", variance="fixed_large"),
        dict(kind="ddpm", spacing="trailing", N=8),
        dict(kind="ddpm", spacing="linspace", N=7, beta_schedule="scaled_linear"),
        dict(kind="ddpm", steps_offset=1, N=10),
        dict(kind="ddpm", clip_range=0.5, prediction="sample"),
        dict(kind="ddpm", T=1000, N=20, beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012),
        # RoboDual: DDIM, squaredcos, 100 train steps, 5 inference steps (eta 0)
        dict(kind="ddim", N=5, beta_schedule="squaredcos_cap_v2", shape=(2, 8, 7)),
        dict(kind="ddim", N=10, eta=0.5),
        dict(kind="ddim", N=10, eta=1.0, beta_schedule="squaredcos_cap_v2", prediction="v_prediction"),
        dict(kind="ddim", N=10, set_alpha_to_one=False),
        dict(kind="ddim", N=10, set_alpha_to_one=False, beta_schedule="scaled_linear", eta=0.3),
        dict(kind="ddim", N=8, spacing="trailing"),
        dict(kind="ddim", N=7, spacing="linspace"),
        dict(kind="ddim", N=10, steps_offset=1),
        dict(kind="ddim", N=10, prediction="sample", use_clipped_model_output=True),
        dict(kind="ddim", N=10, prediction="epsilon", use_clipped_model_output=True, clip_range=0.8),
        dict(kind="ddim", N=3, beta_schedule="squaredcos_cap_v2"),  # 100 // 3 = 33: uneven
    ]
    for e in extras:
        loop_case(idx, 1000 + idx, **e)
        idx += 1

    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "diffusion.bin")
    fixture.write(path, out)
    print("wrote", len(out), "tensors,", idx, "sampling loops,", os.path.getsize(path), "bytes")


if __name__ == "__main__":
    main()
