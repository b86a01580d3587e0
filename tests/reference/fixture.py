"""Writer for the test fixture format read by tests/util.c (ut_fixture_open).

"DVFX0001", u32 count, then per tensor: u32 name_len, utf-8 name, u32 dtype code
(dv_dtype: 0 f32, 1 f64, 4 i32, 5 i64, 7 bool), u32 ndim, i64 shape[ndim], raw little-endian data.

A case named C holds C.in0, C.in1, ... (inputs), C.out (torch's output), C.gout (the output
gradient fed to backward) and C.grad<i> for each input that gets a gradient.
"""
import struct

import torch

_CODES = {torch.float32: 0, torch.float64: 1, torch.int32: 4, torch.int64: 5, torch.bool: 7}


def write(path, tensors):
    """tensors: dict name -> torch.Tensor (written in insertion order)."""
    with open(path + ".tmp", "wb") as f:
        f.write(b"DVFX0001")
        f.write(struct.pack("<I", len(tensors)))
        for name, t in tensors.items():
            t = t.detach().contiguous().cpu()
            b = name.encode()
            f.write(struct.pack("<I", len(b)))
            f.write(b)
            f.write(struct.pack("<II", _CODES[t.dtype], t.dim()))
            f.write(struct.pack("<%dq" % t.dim(), *t.shape))
            if t.dtype == torch.bool:
                f.write(t.to(torch.uint8).numpy().tobytes())
            else:
                f.write(t.numpy().astype(t.numpy().dtype.newbyteorder("<")).tobytes())
    import os
    os.replace(path + ".tmp", path)


def add_case(out, name, fn, inputs, grad=None, seed=0):
    """Run fn(*inputs) in torch; record inputs, output, a random output gradient and the
    input gradients. grad: list of bools, which inputs get gradients (default: float ones)."""
    g = torch.Generator().manual_seed(seed)
    ins = []
    for i, x in enumerate(inputs):
        x = x.detach().clone()
        want = x.is_floating_point() if grad is None else grad[i]
        if want:
            x.requires_grad_(True)
        ins.append(x)
        out[f"{name}.in{i}"] = x
    y = fn(*ins)
    out[f"{name}.out"] = y
    if y.is_floating_point() and any(x.requires_grad for x in ins):
        gout = torch.randn(y.shape, generator=g, dtype=y.dtype)
        out[f"{name}.gout"] = gout
        grads = torch.autograd.grad(y, [x for x in ins if x.requires_grad], gout, allow_unused=True)
        k = 0
        for i, x in enumerate(ins):
            if x.requires_grad:
                gi = grads[k]
                k += 1
                out[f"{name}.grad{i}"] = gi if gi is not None else torch.zeros_like(x)
    return y
