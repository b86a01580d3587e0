"""Safetensors files written by Python, read by tests/test_safetensors.c.

Run from the repository root:  /usr/bin/python3 tests/reference/gen_safetensors.py
Deterministic (fixed seed). Debian has no `safetensors` package, so the format is written here
with struct + json, following the public description:
    u64 little-endian N | N bytes of JSON header | data buffer
    header = {name: {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}, ...,
              "__metadata__": {str: str}}      offsets are relative to the buffer start.
The reference writer pads the JSON with spaces so the buffer starts 8-byte aligned; so does
write_st unless pad=False.

Writes (tests/reference/):
  st_dtypes.safetensors     a tensor of every dtype dualvla reads, an I8 one (valid in the format,
                            not loadable by dualvla), f16/bf16 special values and random values,
                            each with torch's own f32 widening "<name>.f32"; random f32 values
                            "narrow.src" with torch's f16/bf16 rounding of them; a 0-d and an
                            empty tensor; __metadata__ with escapes and non-ASCII text.
  st_unaligned.safetensors  unpadded header and a 3-byte tensor first, so the F32/F16/BF16/I64
                            data sits at odd addresses (the reader must copy, not view).
  st_sharded/               model.safetensors.index.json + model-0000{1,2}-of-00002.safetensors
"""
import json
import os
import struct

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
_DT = {torch.float32: "F32", torch.float64: "F64", torch.float16: "F16", torch.bfloat16: "BF16",
       torch.int32: "I32", torch.int64: "I64", torch.uint8: "U8", torch.bool: "BOOL", torch.int8: "I8"}


def raw(t):
    """little-endian bytes of a tensor, row-major"""
    t = t.detach().contiguous().cpu()
    if t.dtype in (torch.float16, torch.bfloat16):
        t = t.view(torch.int16)
    if t.dtype == torch.bool:
        t = t.to(torch.uint8)
    a = t.numpy()
    return a.astype(a.dtype.newbyteorder("<")).tobytes()


def write_st(path, tensors, metadata=None, pad=True):
    """tensors: list of (name, torch.Tensor), laid out in the buffer in this order"""
    header, blobs, off = {}, [], 0
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, t in tensors:
        b = raw(t)
        header[name] = {"dtype": _DT[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    js = json.dumps(header, separators=(",", ":")).encode("utf-8")  # ensure_ascii: \u escapes
    if pad:
        js += b" " * (-(8 + len(js)) % 8)
    with open(path + ".tmp", "wb") as f:
        f.write(struct.pack("<Q", len(js)))
        f.write(js)
        for b in blobs:
            f.write(b)
    os.replace(path + ".tmp", path)
    return off


torch.manual_seed(20240601)

f16_special = torch.tensor([0.0, -0.0, 1.0, -2.5, 65504.0, -65504.0, 6.103515625e-05, 5.960464477539063e-08,
                            3.0e-6, float("inf"), float("-inf"), float("nan"), 0.1, 1.0 / 3.0], dtype=torch.float16)
bf16_special = torch.tensor([0.0, -0.0, 1.0, -2.5, 3.3895313892515355e38, 1.0e-40, 1.17549435e-38, float("inf"),
                             float("-inf"), float("nan"), 0.1, 1.0 / 3.0], dtype=torch.bfloat16)
f16_rand = (torch.randn(5, 7) * 3).half()
bf16_rand = (torch.randn(4, 6) * 100).bfloat16()
narrow_src = torch.randn(40) * torch.logspace(-9, 6, 40)

tensors = [
    ("f64", torch.randn(2, 3, dtype=torch.float64)),
    ("i64", torch.tensor([0, -1, 2**40 + 7, -(2**62) - 3, 2**63 - 1], dtype=torch.int64)),
    ("f32", torch.randn(3, 4)),
    ("i32", torch.tensor([[0, -7, 2**31 - 1], [-(2**31), 12345, 9]], dtype=torch.int32)),
    ("scalar", torch.tensor(3.25)),
    ("empty", torch.zeros(0, 3)),
    ("narrow.src", narrow_src),
    ("f16.special.f32", f16_special.float()),
    ("f16.rand.f32", f16_rand.float()),
    ("bf16.special.f32", bf16_special.float()),
    ("bf16.rand.f32", bf16_rand.float()),
    ("f16.special", f16_special),
    ("f16.rand", f16_rand),
    ("bf16.special", bf16_special),
    ("bf16.rand", bf16_rand),
    ("narrow.f16", narrow_src.half()),
    ("narrow.bf16", narrow_src.bfloat16()),
    ("u8", torch.arange(256, dtype=torch.int64).to(torch.uint8).reshape(16, 16)),
    ("bool", torch.tensor([[True, False, False], [True, True, False]])),
    ("i8", torch.tensor([-128, -1, 0, 1, 127], dtype=torch.int8)),
]
meta = {"format": "pt", "empty": "",
        "note": "quote \" backslash \\ slash / newline \n tab \t e-acute \u00e9 snowman \u2603 emoji \U0001F600"}
write_st(os.path.join(HERE, "st_dtypes.safetensors"), tensors, meta)

# misaligned on purpose: 3 bytes first and an unpadded header
write_st(os.path.join(HERE, "st_unaligned.safetensors"), [
    ("u8.head", torch.tensor([7, 8, 9], dtype=torch.uint8)),
    ("f32", torch.arange(5, dtype=torch.float32) * 0.5 - 1.0),   # -1, -0.5, 0, 0.5, 1
    ("f16", torch.tensor([1.0, -2.0, 0.5], dtype=torch.float16)),
    ("bf16", torch.tensor([3.0, -0.25, 1024.0], dtype=torch.bfloat16)),
    ("u8.mid", torch.tensor([1], dtype=torch.uint8)),
    ("i64", torch.tensor([-(2**40) - 1, 2**62 + 3], dtype=torch.int64)),
], {"kind": "unaligned"}, pad=False)

# two shards and an index (values: layer<k>.weight = k + arange(6)/10 as (2, 3), layer<k>.bias = -k * ones(3))
d = os.path.join(HERE, "st_sharded")
os.makedirs(d, exist_ok=True)
weight_map, total = {}, 0
for s, layers in ((1, [0, 1]), (2, [2])):
    fname = "model-%05d-of-00002.safetensors" % s
    ts = []
    for k in layers:
        ts.append(("layer%d.weight" % k, k + torch.arange(6, dtype=torch.float32).reshape(2, 3) / 10))
        ts.append(("layer%d.bias" % k, -k * torch.ones(3, dtype=torch.float32)))
    total += write_st(os.path.join(d, fname), ts, {"format": "pt", "shard": str(s)})
    for name, _ in ts:
        weight_map[name] = fname
with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
    json.dump({"metadata": {"total_size": total, "note": [1, 2.5, None, True]}, "weight_map": weight_map}, f, indent=2)
    f.write("\n")
print("wrote st_dtypes.safetensors, st_unaligned.safetensors, st_sharded/")
