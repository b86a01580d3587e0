"""PyTorch reference values for the spatial and indexing ops (tests/test_conv.c,
tests/test_pool_resize.c, tests/test_index.c).

Run from the repository root:  /usr/bin/python3 tests/reference/gen_spatial.py
Writes tests/reference/spatial.bin. Deterministic (fixed seeds). Every case C also stores C.cfg,
an i64 vector with the op's integer arguments, so the C tests read them from here:
  conv_*:      stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, groups
  maxpool_*, avgpool_*:  kh, kw, sh, sw, ph, pw
  adaptive_*:  out_h, out_w
  bilinear_*:  out_h, out_w, align_corners          nearest_*:  out_h, out_w
  gather_*, index_select_*, concat_*:  dim
"""
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
import fixture  # noqa: E402

torch.manual_seed(4321)
out = {}
seed = [0]


def r(*shape, dtype=torch.float32):
    return torch.randn(*shape, dtype=dtype)


def case(name, fn, inputs, cfg, grad=None):
    seed[0] += 1
    fixture.add_case(out, name, fn, inputs, grad=grad, seed=seed[0])
    out[name + ".cfg"] = torch.tensor(cfg, dtype=torch.int64)


# ---- conv2d: (name, x shape, Cout, kernel, stride, padding, dilation, groups, bias, dtype) ----
convs = [
    ("conv_basic", (2, 3, 7, 6), 4, (3, 3), (1, 1), (1, 1), (1, 1), 1, True, torch.float32),
    ("conv_stride2", (2, 4, 9, 8), 6, (3, 3), (2, 2), (1, 1), (1, 1), 1, True, torch.float32),
    ("conv_dilated", (1, 3, 10, 9), 5, (3, 2), (1, 2), (2, 0), (2, 3), 1, False, torch.float32),
    ("conv_groups", (2, 6, 8, 7), 9, (3, 3), (1, 1), (1, 1), (1, 1), 3, True, torch.float32),
    ("conv_depthwise", (2, 8, 9, 9), 8, (3, 3), (2, 2), (1, 1), (1, 1), 8, False, torch.float32),
    ("conv_1x1", (2, 16, 5, 6), 12, (1, 1), (1, 1), (0, 0), (1, 1), 1, True, torch.float32),
    ("conv_1x1_stride2", (2, 8, 7, 7), 12, (1, 1), (2, 2), (0, 0), (1, 1), 1, False, torch.float32),
    # ViT-L/14 patch embedding shape (stride = kernel = 14, no bias), small channel count
    ("conv_patch14", (1, 3, 42, 28), 16, (14, 14), (14, 14), (0, 0), (1, 1), 1, False, torch.float32),
    # ResNet stem 7x7 / 2, pad 3
    ("conv_stem7", (1, 3, 20, 20), 8, (7, 7), (2, 2), (3, 3), (1, 1), 1, False, torch.float32),
    ("conv_f64", (2, 4, 6, 5), 6, (3, 3), (2, 1), (1, 2), (1, 1), 2, True, torch.float64),
]
for name, xs, cout, k, s, p, d, g, bias, dt in convs:
    x = r(*xs, dtype=dt)
    w = r(cout, xs[1] // g, *k, dtype=dt) * 0.3
    ins = [x, w] + ([r(cout, dtype=dt)] if bias else [])

    def fn(x, w, b=None, s=s, p=p, d=d, g=g):
        return F.conv2d(x, w, b, stride=s, padding=p, dilation=d, groups=g)
    case(name, fn, ins, [s[0], s[1], p[0], p[1], d[0], d[1], g])

# ---- pooling ----
pools = [  # (name, x shape, kernel, stride, padding)
    ("pool_k3s2p1", (2, 3, 9, 8), (3, 3), (2, 2), (1, 1)),
    ("pool_k2s2", (2, 2, 8, 6), (2, 2), (2, 2), (0, 0)),
    ("pool_k3s1", (1, 3, 6, 7), (3, 2), (1, 2), (1, 1)),
]
for name, xs, k, s, p in pools:
    x = r(*xs)
    case("max" + name, lambda x, k=k, s=s, p=p: F.max_pool2d(x, k, s, p), [x], [k[0], k[1], s[0], s[1], p[0], p[1]])
    case("avg" + name, lambda x, k=k, s=s, p=p: F.avg_pool2d(x, k, s, p), [x], [k[0], k[1], s[0], s[1], p[0], p[1]])
for name, xs, o in [("adaptive_down", (2, 3, 7, 10), (3, 4)), ("adaptive_up", (1, 2, 3, 5), (5, 7)),
                    ("adaptive_global", (2, 4, 5, 5), (1, 1))]:
    case(name, lambda x, o=o: F.adaptive_avg_pool2d(x, o), [r(*xs)], list(o))

# ---- resizing ----
for name, xs, o in [("up", (2, 2, 5, 4), (9, 11)), ("down", (1, 3, 12, 10), (5, 4)), ("up2x", (1, 2, 4, 3), (8, 6)),
                    ("mixed", (1, 2, 7, 3), (3, 8))]:
    for align in (False, True):
        case(f"bilinear_{name}_{'ac' if align else 'noac'}",
             lambda x, o=o, a=align: F.interpolate(x, size=o, mode="bilinear", align_corners=a), [r(*xs)],
             [o[0], o[1], int(align)])
    case(f"nearest_{name}", lambda x, o=o: F.interpolate(x, size=o, mode="nearest"), [r(*xs)], [o[0], o[1]])
case("bilinear_f64_noac", lambda x: F.interpolate(x, size=(7, 5), mode="bilinear", align_corners=False),
     [r(2, 1, 4, 6, dtype=torch.float64)], [7, 5, 0])

# ---- indexing ----
ids = torch.tensor([[3, 1, 3, 0], [5, 3, 3, 2]], dtype=torch.int64)  # repeated ids
case("embedding_repeat", lambda w, i: F.embedding(i, w), [r(6, 5), ids], [0])
x = r(3, 5, 4)
case("gather_dim1", lambda x, i: torch.gather(x, 1, i), [x, torch.randint(0, 5, (3, 7, 2))], [1])
case("gather_dim2", lambda x, i: torch.gather(x, 2, i), [x, torch.randint(0, 4, (2, 5, 6))], [2])
case("index_select_dim1", lambda x, i: torch.index_select(x, 1, i), [x, torch.tensor([4, 0, 4, 2, 1, 4])], [1])
case("index_select_dim0", lambda x, i: torch.index_select(x, 0, i), [x, torch.tensor([2, 2, 0])], [0])
case("concat_dim1", lambda a, b, c: torch.cat([a, b, c], 1), [r(2, 3, 4), r(2, 1, 4), r(2, 5, 4)], [1])

fixture.write(os.path.join(os.path.dirname(__file__), "spatial.bin"), out)
print(f"wrote {len(out)} tensors")
