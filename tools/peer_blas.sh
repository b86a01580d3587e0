#!/usr/bin/env bash
# Makes sure the benchmark's peer, the system OpenBLAS, is present: the GEMM benchmark loads
# it with dlopen at run time to print ours / BLAS. It is never a build dependency; without it
# the benchmark prints only our figures.
have() { ldconfig -p 2>/dev/null | grep -q "libopenblas.so.0"; }
have && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing the benchmark peer: apt-get install -y libopenblas0-pthread"
    apt-get install -y libopenblas0-pthread >/dev/null 2>&1 || \
        (apt-get update >/dev/null 2>&1 && apt-get install -y libopenblas0-pthread >/dev/null 2>&1) || true
fi
have || echo "note: no OpenBLAS found; the GEMM benchmark will show our figures only (install: apt-get install -y libopenblas0-pthread)"
exit 0
