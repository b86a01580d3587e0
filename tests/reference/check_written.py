#!/usr/bin/python3
"""tests/reference/check_written.py — does real numpy load what dualvla's writers write?

Run by hand (make test must never need Python):

    DV_TEST_KEEP=/tmp/dv_written ./build/test npy_written_for_numpy   # mkdir the folder first
    /usr/bin/python3 tests/reference/check_written.py /tmp/dv_written

It loads every file that tests/test_npy.c's npy_written_for_numpy writes with np.load
(allow_pickle only for auto_lang_ann.npy), checks dtypes, shapes and values against
gen_npy.py's value(), checks the zip archives with zipfile's own CRC test, and prints one
line per file; exit status 1 on any mismatch.
"""
import os
import sys
import zipfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_npy import arr, lang_ann  # noqa: E402

failed = 0


def check(cond, what):
    global failed
    print("%-4s %s" % ("ok" if cond else "FAIL", what))
    failed += not cond


def main(d):
    for t in ["b1", "u1", "i4", "i8", "f4", "f8"]:
        p = os.path.join(d, "dt_%s.npy" % t)
        a = np.load(p)
        want = arr(("|" if t[1] == "1" else "<") + t, (2, 3))
        check(a.dtype == want.dtype and a.shape == (2, 3) and np.array_equal(a, want), p)
    want = {"f4": arr("<f4", (5, 7)), "u1": arr("|u1", (4, 4, 3)), "i8": arr("<i8", (6,)), "f8": arr("<f8", ())}
    for kind in ["stored", "deflated"]:
        p = os.path.join(d, "frame_%s.npz" % kind)
        with zipfile.ZipFile(p) as z:
            check(z.testzip() is None, p + " (zipfile CRC test)")
            methods = {i.compress_type for i in z.infolist()}
            check(methods == {zipfile.ZIP_DEFLATED if kind == "deflated" else zipfile.ZIP_STORED},
                  p + " (compression method)")
        with np.load(p) as z:
            check(sorted(z.files) == sorted(want), p + " keys " + ",".join(z.files))
            for k, v in want.items():
                check(z[k].dtype == v.dtype and z[k].shape == v.shape and np.array_equal(z[k], v), "%s[%s]" % (p, k))
    p = os.path.join(d, "auto_lang_ann.npy")
    got = np.load(p, allow_pickle=True).item()
    ref = lang_ann(2)
    check(got["language"]["ann"] == ref["language"]["ann"] and got["language"]["task"] == ref["language"]["task"],
          p + " language.ann / task")
    e = got["language"]["emb"]
    check(e.dtype == np.float32 and e.shape == (2, 1, 384) and np.array_equal(e, ref["language"]["emb"]), p + " language.emb")
    check(got["info"]["indx"] == ref["info"]["indx"] and got["info"]["episodes"] == [], p + " info.indx / episodes")
    print("%d failed" % failed)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "/tmp/dv_written"))
