#!/usr/bin/python3
"""tests/reference/gen_npy.py — small .npy / .npz / pickle files written by real numpy and
Python, read by tests/test_npy.c, tests/test_pickle.c and tests/test_fuzz_formats.c.

    /usr/bin/python3 tests/reference/gen_npy.py      (numpy 1.24 from Debian)

Every array is a deterministic function of its shape (values = arange, scaled per dtype), so
the C tests recompute the expected values instead of storing them twice: element i (flat,
C order) of a numeric array is value(dtype, i) below, mirrored in tests/test_npy.c.
Outputs go to tests/reference/npy/ (a few tens of KiB in all).
"""
import io
import math
import os
import pickle
import zipfile

import numpy as np

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "npy")


def value(kind, n):
    """the values of element 0..n-1 for a dtype kind: keep in sync with expect() in test_npy.c"""
    i = np.arange(n, dtype=np.int64)
    if kind == "b":
        return (i % 3) == 1
    if kind == "u":
        return i * 7 + 3
    if kind == "i":
        return (i * 7 + 3) * np.where(i % 2 == 1, -1, 1)
    return (i * 0.25 - 1.5).astype(np.float64)  # exact in f2/f4/f8


def arr(dtype, shape, order="C"):
    dt = np.dtype(dtype)
    n = int(np.prod(shape)) if len(shape) else 1
    a = value(dt.kind, n).astype(dt).reshape(shape)
    return np.asfortranarray(a) if order == "F" else a


def save(name, a):
    np.save(os.path.join(OUT, name), a)


def lang_ann(n=3, dim=384):
    """a dict shaped like CALVIN's lang_annotations/auto_lang_ann.npy"""
    emb = (np.arange(n * dim, dtype=np.float32) / 1000.0 - 0.5).reshape(n, 1, dim)
    return {
        "language": {
            "ann": ["open the drawer", "push the red block to the left", "lift the blue block from the table"][:n],
            "task": ["open_drawer", "push_red_block_left", "lift_blue_block_table"][:n],
            "emb": emb,
        },
        "info": {
            "episodes": [],
            "indx": [(10 * k, 10 * k + 7) for k in range(n)],
        },
    }


def pickle_mix(long=True):
    """a mix of every Python type the C reader models (same object for each protocol); the
    fuzz tests use the short form (they parse every prefix: time grows with size squared)"""
    shared = [1, 2]
    return {
        "none": None, "t": True, "f": False,
        "small": 7, "neg": -300, "i32": 2**31 - 1, "big": 2**62 + 5, "negbig": -(2**40),
        "pi": 3.25, "nan_free": -0.0,
        "s": "h\u00e9llo \u2603", "empty_s": "",
        "b": b"\x00\x01\xffbytes", "empty_b": b"",
        "list": [1, "two", 3.0, None, [4, (5, 6)]],
        "tuple0": (), "tuple1": (1,), "tuple2": (1, 2), "tuple3": (1, 2, 3), "tuple5": (1, 2, 3, 4, 5),
        "nested": {"a": {"b": {"c": [True]}}},
        "shared1": shared, "shared2": shared,
        7: "int key",
        "long_list": list(range(1500 if long else 3)),  # more than one APPENDS batch
        "long_str": "x" * (300 if long else 3),         # BINUNICODE rather than SHORT_BINUNICODE
    }


def statistics_yaml():
    """a statistics.yaml in CALVIN's layout (robot_obs / scene_obs NormalizeVector entries,
    action bounds), written by hand in the styles found in the wild: flow lists over several
    lines, block lists, comments, quotes; plus extra keys exercising the rest of the subset.
    Values are made up (deterministic)."""
    def nums(n, k):
        return [round(math.sin(k * 7.1 + i * 1.3) * (1 + i % 4), 6) for i in range(n)]

    def flow(v, per_line=5, indent=6):
        rows = [", ".join(repr(x) for x in v[i:i + per_line]) for i in range(0, len(v), per_line)]
        return "[" + (",\n" + " " * indent).join(rows) + "]"

    rm, rs, sm, ss = nums(15, 1), [abs(x) + 0.01 for x in nums(15, 2)], nums(24, 3), [abs(x) + 0.01 for x in nums(24, 4)]
    lo, hi = nums(7, 5), nums(7, 6)
    t = "# statistics of the training split (made up)\n---\n"
    t += "robot_obs:\n  - _target_: calvin_agent.utils.transforms.NormalizeVector\n"
    t += "    mean: " + flow(rm) + "\n    std: " + flow(rs, 4, 10) + "   # per dimension\n"
    t += "scene_obs:\n- _target_: 'calvin_agent.utils.transforms.NormalizeVector'\n  mean:\n"
    t += "".join("  - %r\n" % x for x in sm) + "  std:\n" + "".join("    - %r\n" % x for x in ss)
    t += "act_min_bound: " + flow(lo, 10) + "\n"
    t += "act_max_bound: [" + ", ".join("%r" % x for x in hi) + ",]  # trailing comma\n"
    t += "extra:\n  flow_map: {a: 1, b: [2, 3], 'c d': \"e#f\"}\n  empty:\n  nothing: ~\n"
    t += "  flag: true\n  exp: [1e-3, -2.5E+2, .5, -.inf]\n  text: \"tab\\there \\u00e9\"\n"
    t += "  nested:\n    - - 1\n      - 2\n    - [3, [4, 5]]\n"
    return t


def main():
    os.makedirs(OUT, exist_ok=True)
    for old in os.listdir(OUT):
        os.remove(os.path.join(OUT, old))

    # one file per dtype, C order, shape (2, 3)
    for dt in ["|b1", "|u1", "|i1", "<u2", "<i2", "<u4", "<i4", "<u8", "<i8", "<f2", "<f4", "<f8"]:
        save("dt_%s.npy" % dt[1:], arr(dt, (2, 3)))
    # big endian and Fortran order, and both
    save("be_f4.npy", arr(">f4", (3, 4)))
    save("be_i8.npy", arr(">i8", (5,)))
    save("be_f8.npy", arr(">f8", (2, 2)))
    save("be_i2.npy", arr(">i2", (3,)))
    save("fortran_f4.npy", arr("<f4", (3, 4), "F"))
    save("fortran_u1_3d.npy", arr("|u1", (2, 3, 4), "F"))
    save("fortran_be_i4.npy", arr(">i4", (4, 3), "F"))
    # shapes: scalar, empty, 1-d, 4-d
    save("scalar_f8.npy", arr("<f8", ()))
    save("empty_f4.npy", arr("<f4", (0, 3)))
    save("vec_i8.npy", arr("<i8", (7,)))
    save("nd4_f4.npy", arr("<f4", (2, 1, 3, 2)))
    # format versions 2.0 and 3.0 (numpy picks them only for huge headers: write them directly)
    a = arr("<f4", (2, 3))
    with open(os.path.join(OUT, "v2_f4.npy"), "wb") as f:
        np.lib.format.write_array(f, a, version=(2, 0))
    with open(os.path.join(OUT, "v3_f4.npy"), "wb") as f:
        np.lib.format.write_array(f, a, version=(3, 0))
    # CALVIN-like per-frame archives, stored and deflated
    frame = dict(
        actions=arr("<f8", (7,)), rel_actions=arr("<f8", (7,)),
        robot_obs=arr("<f8", (15,)), scene_obs=arr("<f8", (24,)),
        rgb_static=arr("|u1", (8, 8, 3)), depth_static=arr("<f4", (8, 8)),
        big_endian=arr(">f4", (3,)), fortran=arr("<i4", (2, 3), "F"),
    )
    np.savez(os.path.join(OUT, "frame_stored.npz"), **frame)
    np.savez_compressed(os.path.join(OUT, "frame_deflated.npz"), **frame)
    # a longer deflated member (several deflate blocks, dynamic Huffman codes)
    rng = np.random.RandomState(5)
    np.savez_compressed(os.path.join(OUT, "noise_deflated.npz"),
                        noise=(rng.rand(40, 50) * 4).astype(np.float32).round(1), ramp=arr("<f4", (3000,)))
    # zip64: zipfile writes zip64 extra fields and the zip64 end records only past 4 GiB;
    # lower its limit so that this small archive has all of them
    limit = zipfile.ZIP64_LIMIT
    zipfile.ZIP64_LIMIT = 64
    try:
        with zipfile.ZipFile(os.path.join(OUT, "zip64.npz"), "w", zipfile.ZIP_DEFLATED, allowZip64=True) as z:
            for k in ["a", "b"]:
                with z.open(k + ".npy", "w", force_zip64=True) as f:
                    np.lib.format.write_array(f, arr("<f4", (4, 5)) * (2 if k == "b" else 1))
            with z.open("c.npy", "w", force_zip64=True) as f:
                np.lib.format.write_array(f, arr("<i8", (3,)))
    finally:
        zipfile.ZIP64_LIMIT = limit
    # pickles: CALVIN's annotation dict through np.save(allow_pickle=True) ...
    np.save(os.path.join(OUT, "auto_lang_ann.npy"), lang_ann(), allow_pickle=True)
    # ... a scene_info-like dict with numpy scalars, object arrays, and a numeric array
    np.save(os.path.join(OUT, "scene_info.npy"),
            {"calvin_scene_D": [np.int64(0), np.int64(99)], "calvin_scene_A": [np.int64(100), np.int64(219)]},
            allow_pickle=True)
    obj = np.empty((2, 2), dtype=object)
    obj[0, 0], obj[0, 1], obj[1, 0], obj[1, 1] = "a", 1, None, arr("<f4", (2,))
    np.save(os.path.join(OUT, "objarray.npy"), obj, allow_pickle=True)
    np.save(os.path.join(OUT, "objarray_fortran.npy"), np.asfortranarray(obj), allow_pickle=True)
    # plain pickles of a type mix and of arrays, protocols 2..5
    for proto in [2, 3, 4, 5]:
        with open(os.path.join(OUT, "mix_p%d.pkl" % proto), "wb") as f:
            pickle.dump(pickle_mix(), f, protocol=proto)
        arrays = {
            "f4": arr("<f4", (2, 3)), "be_i8": arr(">i8", (4,)), "fortran_f8": arr("<f8", (2, 3), "F"),
            "u1": arr("|u1", (5,)), "scalar_f4": np.float32(2.5), "scalar_i8": np.int64(-9),
            "b1": arr("|b1", (3,)), "lang": lang_ann(2),
        }
        with open(os.path.join(OUT, "arrays_p%d.pkl" % proto), "wb") as f:
            pickle.dump(arrays, f, protocol=proto)
    # small versions for the fuzz tests
    np.save(os.path.join(OUT, "fuzz_lang_ann.npy"), lang_ann(2, 4), allow_pickle=True)
    for proto in [2, 5]:
        with open(os.path.join(OUT, "fuzz_mix_p%d.pkl" % proto), "wb") as f:
            pickle.dump(pickle_mix(long=False), f, protocol=proto)
        with open(os.path.join(OUT, "fuzz_arrays_p%d.pkl" % proto), "wb") as f:
            pickle.dump({"f4": arr("<f4", (2, 3)), "be_i8": arr(">i8", (2,)), "fortran_f8": arr("<f8", (2, 2), "F"),
                         "scalar_i8": np.int64(-9)}, f, protocol=proto)
    # a pickle that must be refused: it names a global outside numpy's array machinery
    with open(os.path.join(OUT, "evil_p3.pkl"), "wb") as f:
        f.write(b"\x80\x03cos\nsystem\nX\x04\x00\x00\x00echoq\x00\x85q\x01Rq\x02.")
    # raw deflate streams from zlib with every strategy, for the inflate tests
    import zlib
    src = (b"".join(b"frame %d: open the drawer, push the block %s; " % (i, b"left" if i % 3 else b"right")
                    for i in range(40)) + bytes((np.arange(1024) * 7 % 251).astype(np.uint8)) + bytes(512) + bytes(rng.randint(0, 256, 700).astype(np.uint8)))
    streams = {"src": np.frombuffer(src, np.uint8)}
    for name, level, strategy in [("stored", 0, zlib.Z_DEFAULT_STRATEGY), ("fast", 1, zlib.Z_DEFAULT_STRATEGY),
                                  ("default", 6, zlib.Z_DEFAULT_STRATEGY), ("best", 9, zlib.Z_DEFAULT_STRATEGY),
                                  ("filtered", 6, zlib.Z_FILTERED), ("huffman_only", 6, zlib.Z_HUFFMAN_ONLY),
                                  ("rle", 6, zlib.Z_RLE), ("fixed", 6, zlib.Z_FIXED)]:
        c = zlib.compressobj(level, zlib.DEFLATED, -15, 9, strategy)
        # several flushes: several blocks of different kinds in one stream
        z = c.compress(src[:1000]) + c.flush(zlib.Z_FULL_FLUSH) + c.compress(src[1000:]) + c.flush()
        streams["z_" + name] = np.frombuffer(z, np.uint8)
    np.savez(os.path.join(OUT, "deflate_streams.npz"), **streams)
    # statistics.yaml: checked by PyYAML, and the numbers it reads written to an npz for the C test
    text = statistics_yaml()
    with open(os.path.join(OUT, "statistics.yaml"), "w") as f:
        f.write(text)
    import yaml
    d = yaml.safe_load(text)
    expected = {
        "robot_obs.0.mean": d["robot_obs"][0]["mean"], "robot_obs.0.std": d["robot_obs"][0]["std"],
        "scene_obs.0.mean": d["scene_obs"][0]["mean"], "scene_obs.0.std": d["scene_obs"][0]["std"],
        "act_min_bound": d["act_min_bound"], "act_max_bound": d["act_max_bound"],
        "extra.exp": d["extra"]["exp"], "extra.flow_map.b": d["extra"]["flow_map"]["b"],
    }
    np.savez(os.path.join(OUT, "statistics_expected.npz"), **{k: np.array(v, np.float64) for k, v in expected.items()})
    # the same dict as PyYAML writes it in block style (what OmegaConf.save looks like)
    with open(os.path.join(OUT, "statistics_block.yaml"), "w") as f:
        yaml.safe_dump(d, f, default_flow_style=False)
    total = sum(os.path.getsize(os.path.join(OUT, n)) for n in os.listdir(OUT))
    print("wrote %d files, %d bytes, into %s" % (len(os.listdir(OUT)), total, OUT))


if __name__ == "__main__":
    main()
