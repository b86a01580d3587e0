#!/usr/bin/env bash
# bench/gpu_report.sh — everything issue 4 asks to run on a GPU machine, in one command, with
# one report: the build, `make test-cuda` (GPU vs CPU for every kernel), the CUDA benchmark
# table beside PyTorch (bench/cuda_torch.py, when python3 has torch with CUDA), the same GEMM
# rows with the opt-in wgmma path (DV_CUDA_WGMMA=1), the DiT specialist's chunk latency and
# training step on the GPU beside the same network in torch on the same GPU (bench dit --device
# cuda: the paper preset with the peer, the released preset's shape without one), and the DiT
# trained on the GPU end to end.
#
#   bash bench/gpu_report.sh [OUT_DIR]        (default: build/gpu_report)
#
# Writes OUT_DIR/report.txt (everything, in order) and prints it as it goes. Each part runs
# even when an earlier one failed; the exit status is that of the first failure. Meant for a
# lent GPU machine with a limited time budget: the build uses every core, the benchmarks each
# take seconds, the whole report a few minutes on an H100 (most of it the build).
#
# Not here: profiling (nsys / ncu), multi-GPU runs.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${1:-build/gpu_report}"
mkdir -p "$out"
report="$out/report.txt"
: >"$report"
status=0
jobs=$(nproc 2>/dev/null || echo 2)

# one part: a title, the command, its output (also on the terminal), its exit status
part() {
    local title="$1"
    shift
    {
        echo
        echo "==== $title"
        echo "\$ $*"
    } | tee -a "$report"
    "$@" 2>&1 | tee -a "$report"
    local rc=${PIPESTATUS[0]}
    echo "---- exit $rc" | tee -a "$report"
    if [ "$rc" -ne 0 ] && [ "$status" -eq 0 ]; then status=$rc; fi
}

{
    echo "dualvla GPU report, $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader 2>/dev/null ||
        echo "(nvidia-smi not found)"
    python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.is_available())' 2>/dev/null ||
        echo "(python3 has no torch: the benchmark's peer columns will say n/a)"
} | tee -a "$report"

part "build" make -j"$jobs" all
part "dualvla info" ./build/dualvla info
part "make test-cuda (every kernel on the GPU against the CPU)" ./build/test-cuda
part "GEMM (mma.sync) beside torch.matmul" ./build/bench --device cuda gemm
part "GEMM with the wgmma path (DV_CUDA_WGMMA=1)" env DV_CUDA_WGMMA=1 ./build/bench --device cuda gemm
part "flash attention beside scaled_dot_product_attention" ./build/bench --device cuda attention
part "fused AdamW beside torch.optim.AdamW(fused=True)" ./build/bench --device cuda adamw
part "memory-bound kernels beside the device-to-device copy" ./build/bench --device cuda bandwidth

# the DiT specialist on the GPU (random weights): one chunk at batch 1, one training step at
# batch 64; the torch peer (bench/dit_torch.py --device cuda) builds the paper network only
part "DiT specialist on the GPU beside torch on the GPU (paper preset)" \
    ./build/bench --device cuda dit --preset paper
part "DiT specialist on the GPU, the released preset's shape (no peer)" \
    ./build/bench --device cuda dit --preset released --no-torch

# the DiT specialist trained on the GPU end to end, on a small synthetic CALVIN split
data="$out/calvin_synth"
part "synthetic CALVIN split" ./build/dualvla calvin-synth --out "$data" --episodes 8 --seed 1
part "train dit --device cuda (tiny preset, 200 steps)" \
    ./build/dualvla train dit --data "$data" --preset tiny --steps 200 --out "$out/dit_cuda" --device cuda --quiet
part "the same run on the CPU, 20 steps (for the loss and speed beside it)" \
    ./build/dualvla train dit --data "$data" --preset tiny --steps 20 --out "$out/dit_cpu" --quiet

echo | tee -a "$report"
echo "report: $report (exit $status)" | tee -a "$report"
exit "$status"
