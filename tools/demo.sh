#!/usr/bin/env bash
# The README's main job (`make run`). Until the first model lands: the engine's self check and
# the kernel benchmarks.
set -euo pipefail
BUILD=${BUILD:-build}
bash tools/peer_blas.sh
./$BUILD/dualvla info
./$BUILD/bench all
