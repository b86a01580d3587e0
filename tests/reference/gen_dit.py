"""PyTorch reference for the DiT specialist (models/dit): writes tests/reference/dit.bin.

A plain re-statement of RoboDual's specialist in torch (our own code, written from the
released network's structure: DiT_SingleTokenAction inside DiffusionDiTImagePolicy), with the
same parameter names as models/dit, so the C test loads these weights by name. The paper /
released differences are the same switches as the C config. Dropout is off (the C model has
none). All parameters are drawn at random (not the zero adaLN/output init) so every path
carries signal.

Cases (keys):
  blk.*      one DiT block: in x (B,k,C), c (B,C), ctx (B,N,C) -> out, and input gradients
  <tag>.p.<name>   parameters of a tiny model           <tag>.in.<input>  its inputs
  <tag>.den        one denoiser call (t, drop given)     <tag>.loss, <tag>.g.<name>  loss + grads
  <tag>.sample     DDIM (5 steps, CFG 3) from <tag>.noise
for tag "tp" (tiny preset, paper switches, x0 prediction) and "tr" (tiny preset with the
released switches, epsilon prediction).

The "tr" model stores only the parameters it does not share with "tp" (every parameter is
drawn from a generator seeded by its name, so shared names have equal values).
bench/dit_torch.py imports the modules below to time the same network in float32.

Run: /usr/bin/python3 tests/reference/gen_dit.py   (torch 1.13, numpy)
"""
import math
import os
import sys
import zlib

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
import fixture  # noqa: E402



# ---- sensory encoders -------------------------------------------------------------------------
def heads_attn(q, k, v, H, causal=False, mask=None):
    """q (B,Tq,H*D), k/v (B,Tk,H*D) -> (B,Tq,H*D); mask (B,Tk) bool keep."""
    B, Tq, HD = q.shape
    D = HD // H
    q = q.view(B, Tq, H, D).transpose(1, 2)
    k = k.reshape(B, -1, H, D).transpose(1, 2)
    v = v.reshape(B, -1, H, D).transpose(1, 2)
    return sdpa(q, k, v, causal, mask).transpose(1, 2).reshape(B, Tq, HD)


def sdpa(q, k, v, causal=False, mask=None):
    s = (q @ k.transpose(-2, -1)) * q.shape[-1] ** -0.5
    if causal:
        Tq, Tk = s.shape[-2:]
        s = s.masked_fill(~torch.ones(Tq, Tk, dtype=torch.bool, device=s.device).tril(), float("-inf"))
    if mask is not None:
        s = s.masked_fill(~mask[:, None, None, :], float("-inf"))
    return s.softmax(-1) @ v


class VitLayer(nn.Module):  # vit.py: layers.i.0 (attention), layers.i.1 (feed-forward)
    def __init__(s, dim, heads, dim_head, mlp):
        super().__init__()
        s.heads = heads
        inner = heads * dim_head
        s.a = nn.Module()
        s.a.norm = nn.LayerNorm(dim)
        s.a.to_qkv = nn.Linear(dim, 3 * inner, bias=False)
        s.a.to_out = nn.Sequential(nn.Linear(inner, dim))
        s.f = nn.Module()
        s.f.net = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, mlp), nn.GELU(), nn.Identity(), nn.Linear(mlp, dim))


class DepthViT(nn.Module):
    def __init__(s, image, patch, ch, dim, depth, heads, dim_head, mlp, cls):
        super().__init__()
        s.patch, s.heads, s.cls = patch, heads, cls
        n = (image // patch) ** 2
        pd = patch * patch * ch
        s.to_patch_embedding = nn.Sequential(nn.Identity(), nn.LayerNorm(pd), nn.Linear(pd, dim), nn.LayerNorm(dim))
        s.pos_embedding = nn.Parameter(torch.randn(1, n + 1, dim))
        s.cls_token = nn.Parameter(torch.randn(1, 1, dim))
        s.transformer = nn.Module()
        s.transformer.layers = nn.ModuleList()
        for _ in range(depth):
            L = VitLayer(dim, heads, dim_head, mlp)
            s.transformer.layers.append(nn.ModuleList([L.a, L.f]))
        s.transformer.norm = nn.LayerNorm(dim)

    def forward(s, img):
        B, c, Hh, W = img.shape
        p = s.patch
        x = img.reshape(B, c, Hh // p, p, W // p, p).permute(0, 2, 4, 3, 5, 1).reshape(B, -1, p * p * c)
        x = s.to_patch_embedding[3](s.to_patch_embedding[2](s.to_patch_embedding[1](x)))
        x = torch.cat([s.cls_token.expand(B, 1, -1), x], 1) + s.pos_embedding[:, : x.shape[1] + 1]
        for a, f in s.transformer.layers:
            h = a.norm(x)
            q, k, v = a.to_qkv(h).chunk(3, -1)
            x = x + a.to_out(heads_attn(q, k, v, s.heads))
            x = x + f.net(x)
        x = s.transformer.norm(x)
        return x if s.cls else x[:, 1:]


class RGBBlock(nn.Module):
    def __init__(s, dim, heads):
        super().__init__()
        s.heads = heads
        s.norm1 = nn.LayerNorm(dim, eps=1e-6)
        s.attn = nn.Module()
        s.attn.qkv = nn.Linear(dim, 3 * dim)
        s.attn.proj = nn.Linear(dim, dim)
        s.norm2 = nn.LayerNorm(dim, eps=1e-6)
        s.mlp = nn.Module()
        s.mlp.fc1 = nn.Linear(dim, 4 * dim)
        s.mlp.fc2 = nn.Linear(4 * dim, dim)

    def forward(s, x):
        q, k, v = s.attn.qkv(s.norm1(x)).chunk(3, -1)
        x = x + s.attn.proj(heads_attn(q, k, v, s.heads))
        return x + s.mlp.fc2(F.gelu(s.mlp.fc1(s.norm2(x))))


class RGBViT(nn.Module):  # timm VisionTransformer (DINO ViT-S/16 shape)
    def __init__(s, image, patch, dim, depth, heads, cls):
        super().__init__()
        s.cls = cls
        n = (image // patch) ** 2
        s.cls_token = nn.Parameter(torch.randn(1, 1, dim))
        s.pos_embed = nn.Parameter(torch.randn(1, n + 1, dim))
        s.patch_embed = nn.Module()
        s.patch_embed.proj = nn.Conv2d(3, dim, patch, patch)
        s.blocks = nn.ModuleList([RGBBlock(dim, heads) for _ in range(depth)])
        s.norm = nn.LayerNorm(dim, eps=1e-6)

    def forward(s, img):
        x = s.patch_embed.proj(img).flatten(2).transpose(1, 2)
        x = torch.cat([s.cls_token.expand(x.shape[0], 1, -1), x], 1) + s.pos_embed
        for b in s.blocks:
            x = b(x)
        x = s.norm(x)
        return x if s.cls else x[:, 1:]


class Perceiver(nn.Module):
    def __init__(s, dim, vis, heads, queries, media):
        super().__init__()
        s.heads = heads
        s.latents = nn.Parameter(torch.randn(queries, dim))
        s.media_pos_emb = nn.Parameter(torch.randn(media, 1, vis))
        s.proj = nn.Linear(vis, dim)
        a = nn.Module()
        a.norm_media, a.norm_latents = nn.LayerNorm(dim), nn.LayerNorm(dim)
        a.to_q = nn.Linear(dim, dim, bias=False)
        a.to_kv = nn.Linear(dim, 2 * dim, bias=False)
        a.to_out = nn.Linear(dim, dim, bias=False)
        ff = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, 4 * dim, bias=False), nn.GELU(), nn.Linear(4 * dim, dim, bias=False))
        s.layers = nn.ModuleList([nn.ModuleList([a, ff])])
        s.norm = nn.LayerNorm(dim)

    def forward(s, x):  # (B, M, n, vis) -> (B, M*Q, C)
        B, M = x.shape[:2]
        x = s.proj(x + s.media_pos_emb[:M])
        lat = s.latents.expand(B, M, -1, -1)
        for a, ff in s.layers:
            xn, ln = a.norm_media(x), a.norm_latents(lat)
            q = a.to_q(ln)
            k, v = a.to_kv(torch.cat([xn, ln], 2)).chunk(2, -1)
            o = heads_attn(q.flatten(0, 1), k.flatten(0, 1), v.flatten(0, 1), s.heads).view(q.shape)
            lat = a.to_out(o) + lat
            lat = ff(lat) + lat
        return s.norm(lat).flatten(1, 2)


class RMS(nn.Module):
    def __init__(s, dim):
        super().__init__()
        s.g = nn.Parameter(torch.ones(dim))

    def forward(s, x):
        n = torch.norm(x, dim=-1, keepdim=True) * x.shape[-1] ** -0.5
        return x / n.clamp(min=1e-8) * s.g


class MAP(nn.Module):
    def __init__(s, dim, vis, heads, queries):
        super().__init__()
        s.heads = heads
        s.projection = nn.Linear(vis, dim)
        s.latents = nn.Parameter(torch.randn(queries, dim) * 0.02)
        s.attn_norm, s.mlp_norm = RMS(dim), RMS(dim)
        s.attn = nn.Module()
        s.attn.q = nn.Linear(dim, dim, bias=False)
        s.attn.kv = nn.Linear(dim, 2 * dim, bias=False)
        s.attn.proj = nn.Linear(dim, dim)
        sw = nn.Module()
        sw.project = nn.Linear(dim, 8 * dim)
        s.mlp = nn.Sequential(sw, nn.Linear(4 * dim, dim))

    def forward(s, x):
        px = s.projection(x)
        lat = s.latents.expand(x.shape[0], -1, -1)
        k, v = s.attn.kv(px).chunk(2, -1)
        lat = s.attn_norm(lat + s.attn.proj(heads_attn(s.attn.q(lat), k, v, s.heads)))
        val, gate = s.mlp[0].project(lat).chunk(2, -1)
        return s.mlp_norm(lat + s.mlp[1](val * F.silu(gate)))


# ---- the action transformer -------------------------------------------------------------------
def rope_interleaved(x, rot):
    """x (B,H,T,D): rotate channel pairs (2i, 2i+1) of the first rot channels by t*theta^(-2i/rot)."""
    T = x.shape[-2]
    inv = 1.0 / (10000 ** (torch.arange(0, rot, 2, dtype=torch.float64) / rot))
    ang = torch.arange(T, dtype=torch.float64)[:, None] * inv[None]          # (T, rot/2)
    cos = ang.cos().repeat_interleave(2, -1).to(x.dtype)
    sin = ang.sin().repeat_interleave(2, -1).to(x.dtype)
    xr, xp = x[..., :rot], x[..., rot:]
    x1, x2 = xr[..., 0::2], xr[..., 1::2]
    rh = torch.stack([-x2, x1], -1).flatten(-2)
    return torch.cat([xr * cos + rh * sin, xp], -1)


class Block(nn.Module):
    def __init__(s, C, H, mlp, cfg):
        super().__init__()
        s.H, s.cfg = H, cfg
        s.attn_temporal = nn.Module()
        s.attn_temporal.qkv = nn.Linear(C, 3 * C)
        s.attn_temporal.proj = nn.Linear(C, C)
        s.mlp = nn.Module()
        s.mlp.fc1 = nn.Linear(C, mlp * C)
        s.mlp.fc2 = nn.Linear(mlp * C, C)
        s.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(C, 6 * C))
        ca = nn.Module()
        ca.layer_norm_v, ca.layer_norm_l = nn.LayerNorm(C), nn.LayerNorm(C)
        ca.attn = nn.Module()
        for n in ["v_proj", "l_proj", "values_l_proj", "out_v_proj"]:
            setattr(ca.attn, n, nn.Linear(C, C))
        ca.gamma_v = nn.Parameter(torch.full((C,), 1e-4))
        s.cross_attn = ca

    def forward(s, x, c, ctx, mask=None):
        B, K, C = x.shape
        cfg = s.cfg
        sh1, sc1, g1, sh2, sc2, g2 = s.adaLN_modulation(c).chunk(6, 1)
        mod = lambda h, sh, sc: F.layer_norm(h, (C,), eps=1e-6) * (1 + sc[:, None]) + sh[:, None]
        q, k, v = s.attn_temporal.qkv(mod(x, sh1, sc1)).view(B, K, 3, s.H, C // s.H).permute(2, 0, 3, 1, 4)
        if cfg["rotary_dims"]:
            q, k = rope_interleaved(q, cfg["rotary_dims"]), rope_interleaved(k, cfg["rotary_dims"])
        a = sdpa(q, k, v, causal=bool(cfg["causal"])).transpose(1, 2).reshape(B, K, C)
        x = x + g1[:, None] * s.attn_temporal.proj(a)
        ca = s.cross_attn
        xn, cn = ca.layer_norm_v(x), ca.layer_norm_l(ctx)
        o = heads_attn(ca.attn.v_proj(xn), ca.attn.l_proj(cn), ca.attn.values_l_proj(cn), s.H, mask=mask)
        x = (xn if cfg["ca_norm_residual"] else x) + ca.gamma_v * ca.attn.out_v_proj(o)
        h = s.mlp.fc2(F.gelu(s.mlp.fc1(mod(x, sh2, sc2)), approximate="tanh"))
        return x + g2[:, None] * h


def t_features(t):
    half = 128
    freqs = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float32) / half)
    a = t[:, None].float() * freqs[None]
    dt = torch.get_default_dtype()
    return torch.cat([torch.cos(a.to(dt)), torch.sin(a.to(dt))], -1)


class Model(nn.Module):  # "model.*"
    def __init__(s, cfg):
        super().__init__()
        s.cfg = cfg
        C, A, Q = cfg["hidden"], cfg["action_dim"], cfg["resampler_queries"]
        s.x_embedder = nn.Linear(2 * A, C)
        s.t_embedder = nn.Module()
        s.t_embedder.mlp = nn.Sequential(nn.Linear(256, C), nn.SiLU(), nn.Linear(C, C))
        s.proprio_embedder = nn.Sequential(nn.Linear(cfg["proprio_dim"], C), nn.SiLU(), nn.Linear(C, C))
        s.context_adapter = nn.Linear(cfg["gen_latent_dim"], C)
        vis, dv = cfg["rgb_vit_hidden"], cfg["vit_hidden"]
        s.visual_adapter = Perceiver(C, vis, cfg["heads"], Q, cfg["static_frames"])
        if cfg["depth_pool"]:
            s.depth_adapter = MAP(C, dv, cfg["heads"], Q)
            s.gripper_depth_adapter = MAP(C, dv, cfg["heads"], Q)
        else:
            s.depth_adapter = Perceiver(C, dv, cfg["heads"], Q, 1)
            s.gripper_depth_adapter = Perceiver(C, dv, cfg["heads"], Q, 1)
        s.gripper_visual_adapter = Perceiver(C, vis, cfg["heads"], Q, 1)
        s.blocks = nn.ModuleList([Block(C, cfg["heads"], cfg["mlp_ratio"], cfg) for _ in range(cfg["layers"])])
        s.final_layer = nn.Module()
        s.final_layer.linear = nn.Linear(C, A)
        s.final_layer.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(C, 2 * C))


class Policy(nn.Module):
    def __init__(s, cfg):
        super().__init__()
        s.cfg = cfg
        s.model = Model(cfg)
        s.depth_encoder = DepthViT(cfg["image_size"], cfg["patch"], 1, cfg["vit_hidden"], cfg["vit_layers"],
                                   cfg["vit_heads"], cfg["vit_dim_head"], cfg["vit_hidden"] * 4, cfg["vit_cls"])
        s.vision_encoder = RGBViT(cfg["image_size"], cfg["patch"], cfg["rgb_vit_hidden"], cfg["rgb_vit_layers"],
                                  cfg["rgb_vit_heads"], cfg["vit_cls"])

    def features(s, inp):
        """the ViTs: (static RGB (B,S,n,Cr), gripper RGB, static depth, gripper depth)"""
        B, S = inp["rgb_static"].shape[:2]
        mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
        std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
        rgb = lambda im: s.vision_encoder((im - mean) / std)
        sf = rgb(inp["rgb_static"].flatten(0, 1)).unflatten(0, (B, S))
        return sf, rgb(inp["rgb_gripper"]), s.depth_encoder(inp["depth_static"]), s.depth_encoder(inp["depth_gripper"])

    def adapt(s, inp, feats):
        """resamplers + latent adapter + proprio -> (gen_actions padded, g, ctx, n_obs)"""
        m, cfg = s.model, s.cfg
        sf, gf, d, gd = feats
        B = sf.shape[0]
        s_rgb = m.visual_adapter(sf)
        g_rgb = m.gripper_visual_adapter(gf[:, None])
        if cfg["depth_pool"]:
            s_dep, g_dep = m.depth_adapter(d), m.gripper_depth_adapter(gd)
        else:
            s_dep, g_dep = m.depth_adapter(d[:, None]), m.gripper_depth_adapter(gd[:, None])
        obs = torch.cat([s_rgb, s_dep, g_rgb, g_dep], 1)
        lat = m.context_adapter(inp["gen_latents"])
        ctx = torch.cat([obs, lat], 1)
        g = m.proprio_embedder(inp["proprio"])
        if cfg["global_latents"]:
            g = g + lat.mean(1)
        ga = inp["gen_actions"]
        ga = torch.cat([ga, torch.zeros(B, cfg["chunk"] - ga.shape[1], ga.shape[2])], 1)
        return ga, g, ctx, obs.shape[1]

    def encode(s, inp):
        return s.adapt(inp, s.features(inp))

    def denoise(s, enc, x_t, t, drop):
        m, cfg = s.model, s.cfg
        ga, g, ctx, n_obs = enc
        x = m.x_embedder(torch.cat([ga, x_t], -1))
        keep = (~drop).to(x.dtype)[:, None]
        mask = None
        if cfg["drop_latent_tokens"]:
            mask = torch.ones(x.shape[0], ctx.shape[1], dtype=torch.bool)
            mask[:, n_obs:] = ~drop[:, None]
        c = g * keep + m.t_embedder.mlp(t_features(t))
        for b in m.blocks:
            x = b(x, c, ctx, mask)
        sh, sc = m.final_layer.adaLN_modulation(c).chunk(2, 1)
        h = F.layer_norm(x, (x.shape[-1],), eps=1e-6) * (1 + sc[:, None]) + sh[:, None]
        return m.final_layer.linear(h)


# ---- diffusion (diffusers' DDIMScheduler arithmetic, squaredcos_cap_v2) -----------------------
def alphas_cumprod(T):
    ab = lambda u: math.cos((u + 0.008) / 1.008 * math.pi / 2) ** 2
    betas = torch.tensor([min(1 - ab((i + 1) / T) / ab(i / T), 0.999) for i in range(T)], dtype=torch.float32)
    return torch.cumprod(1.0 - betas, 0).double()


def ddim_step(ac, out, t, x, T, N, pred):
    prev = t - T // N
    a, ap = ac[t], (ac[prev] if prev >= 0 else torch.tensor(1.0))
    if pred == "epsilon":
        x0, eps = (x - (1 - a).sqrt() * out) / a.sqrt(), out
    else:
        x0 = out
        eps = (x - a.sqrt() * x0) / (1 - a).sqrt()
    x0 = x0.clamp(-1, 1)
    return ap.sqrt() * x0 + (1 - ap).sqrt() * eps


def tiny_cfg(released):
    """the "tiny" preset shrunk further (overrides in tests/test_dit.c) to keep the file small"""
    c = dict(layers=2, heads=2, hidden=16, mlp_ratio=4, chunk=8, action_dim=7, proprio_dim=15,
             gen_latent_dim=8, gen_latent_tokens=3, rotary_dims=8, image_size=16, patch=8,
             vit_layers=1, vit_hidden=16, vit_heads=2, vit_dim_head=8, rgb_vit_layers=1,
             rgb_vit_hidden=12, rgb_vit_heads=2, static_frames=2, resampler_queries=4,
             causal=1, vit_cls=0, depth_pool=0, global_latents=0, drop_latent_tokens=1,
             ca_norm_residual=0, pred="sample")
    if released:
        c.update(causal=0, vit_cls=1, depth_pool=1, global_latents=1, drop_latent_tokens=0,
                 ca_norm_residual=1, pred="epsilon", rotary_dims=4, vit_dim_head=16)
    return c


def randomize(mod):
    """every parameter drawn from a generator seeded by its name, so the two models share the
    values of the parameters they have in common (the fixture stores those once)"""
    for n, p in mod.named_parameters():
        g = torch.Generator().manual_seed(zlib.crc32(n.encode()))
        with torch.no_grad():
            skip = any(k in n for k in ("pos", "latents", "cls", "media"))
            if n.endswith("gamma_v"):
                p.copy_(0.5 + 0.2 * torch.randn(p.shape, generator=g))
            elif p.dim() == 1 and n.endswith((".weight", ".g")):  # norms
                p.copy_(1 + 0.1 * torch.randn(p.shape, generator=g))
            elif p.dim() >= 2 and not skip:
                p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(p[0].numel()))
            else:
                p.copy_(0.2 * torch.randn(p.shape, generator=g))


def gen_model(out, tag, released, seed):
    g = torch.Generator().manual_seed(seed)
    cfg = tiny_cfg(released)
    pol = Policy(cfg)
    randomize(pol)
    for n, p in pol.named_parameters():
        shared = out.get(f"tp.p.{n}")
        if tag == "tp" or shared is None or shared.shape != p.shape:
            out[f"{tag}.p.{n}"] = p.float()
    pol = pol.float().double()  # weights at f32 precision, computed in f64
    for n, p in pol.named_parameters():
        p.requires_grad_(not n.startswith("vision_encoder."))
    B, S, I = 2, 2, cfg["image_size"]
    r = lambda *sh: torch.randn(*sh, generator=g).float().double()
    u = lambda *sh: torch.rand(*sh, generator=g).float().double()
    inp = dict(rgb_static=u(B, S, 3, I, I), rgb_gripper=u(B, 3, I, I), depth_static=u(B, 1, I, I),
               depth_gripper=u(B, 1, I, I), proprio=r(B, cfg["proprio_dim"]),
               gen_actions=(u(B, 6, 7) * 2 - 1), gen_latents=r(B, cfg["gen_latent_tokens"], cfg["gen_latent_dim"]))
    for k, v in inp.items():
        out[f"{tag}.in.{k}"] = v.float()
    actions = (u(B, cfg["chunk"], 7) * 2 - 1)
    t = torch.tensor([3, 71], dtype=torch.int64)
    noise = r(B, cfg["chunk"], 7)
    drop = torch.tensor([False, True])
    out[f"{tag}.actions"], out[f"{tag}.t"], out[f"{tag}.noise"], out[f"{tag}.drop"] = actions.float(), t, noise.float(), drop

    T, N = 100, 5
    ac = alphas_cumprod(T)
    # one training step: loss and parameter gradients
    enc = pol.encode(inp)
    a = ac[t][:, None, None]
    noisy = a.sqrt() * actions + (1 - a).sqrt() * noise
    pred = pol.denoise(enc, noisy, t, drop)
    out[f"{tag}.den"] = pred.float()
    target = noise if cfg["pred"] == "epsilon" else actions
    loss = F.mse_loss(pred, target)
    loss.backward()
    out[f"{tag}.loss"] = loss.detach().float().reshape(())
    for n, p in pol.named_parameters():
        if p.requires_grad:
            out[f"{tag}.g.{n}"] = (p.grad if p.grad is not None else torch.zeros_like(p)).float()

    # DDIM sampling with CFG (conditional and unconditional in one batch)
    with torch.no_grad():
        enc = pol.encode(inp)
        enc2 = (torch.cat([enc[0]] * 2), torch.cat([enc[1]] * 2), torch.cat([enc[2]] * 2), enc[3])
        x = r(B, cfg["chunk"], 7)
        out[f"{tag}.sample_noise"] = x.float()
        d2 = torch.tensor([False] * B + [True] * B)
        for t in [80, 60, 40, 20, 0]:
            o = pol.denoise(enc2, torch.cat([x, x]), torch.full((2 * B,), t, dtype=torch.int64), d2)
            oc, ou = o[:B], o[B:]
            o = ou + 3.0 * (oc - ou)
            x = ddim_step(ac, o, t, x, T, N, cfg["pred"])
        out[f"{tag}.sample"] = x.float()
    return pol


def main():
    torch.set_default_dtype(torch.float64)  # reference in f64; written as f32
    out = {}
    pol = gen_model(out, "tp", False, 1)
    gen_model(out, "tr", True, 2)
    # one block alone (paper switches): inputs, output, input gradients
    g = torch.Generator().manual_seed(3)
    blk = pol.model.blocks[1]
    x = torch.randn(2, 8, 16, generator=g).float().double().requires_grad_()
    c = torch.randn(2, 16, generator=g).float().double().requires_grad_()
    ctx = torch.randn(2, 11, 16, generator=g).float().double().requires_grad_()
    y = blk(x, c, ctx)
    gout = torch.randn(y.shape, generator=g).float().double()
    gx, gc, gctx = torch.autograd.grad(y, [x, c, ctx], gout)
    for k, v in dict(x=x, c=c, ctx=ctx, out=y, gout=gout, gx=gx, gc=gc, gctx=gctx).items():
        out[f"blk.{k}"] = v.float()
    path = os.path.join(os.path.dirname(__file__), "dit.bin")
    fixture.write(path, out)
    print(f"wrote {path}: {len(out)} tensors, {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    main()
