#!/usr/bin/env bash
# The README's main job (`make run`): RoboDual's DiT specialist trained end to end on 2 cores.
#   1. generate a fresh synthetic CALVIN dataset (dualvla calvin-synth: scripted CALVIN tasks,
#      rendered, in CALVIN's on-disk layout);
#   2. train the "tiny" DiT preset on it for a few minutes (dualvla train dit), printing the
#      held-out action error of DDIM-sampled chunks before and after, the loss curve going
#      into build/demo/run/loss.csv and loss.svg;
#   3. sample one chunk for one validation frame and print it next to the ground truth, then
#      replay 16 control steps (generalist stand-in every 8, shifted-window conditioning,
#      temporal aggregation of overlapping chunks).
# The generalist is the documented stand-in (models/dit/standin.h). The kernel benchmarks are
# `make bench`. Environment: DEMO_OUT (default build/demo), DEMO_STEPS, DEMO_THREADS (2).
set -euo pipefail
# passive OpenMP waiting: on a machine whose cores are also busy with other work, spinning
# threads that wait for a descheduled peer make every parallel region ~10x slower
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
BUILD=${BUILD:-build}
OUT=${DEMO_OUT:-$BUILD/demo}
STEPS=${DEMO_STEPS:-1500}
THREADS=${DEMO_THREADS:-2}
EPISODES=${DEMO_EPISODES:-48}
export OMP_NUM_THREADS=$THREADS

./$BUILD/dualvla info
echo
echo "== 1. synthetic CALVIN data ($EPISODES episodes) -> $OUT/data"
rm -rf "$OUT/data" "$OUT/run"
mkdir -p "$OUT"
./$BUILD/dualvla calvin-synth --out "$OUT/data" --episodes "$EPISODES" --seed 1 --threads "$THREADS"
echo
echo "== 2. train the tiny DiT specialist ($STEPS steps, $THREADS threads)"
./$BUILD/dualvla train dit --data "$OUT/data" --preset tiny --steps "$STEPS" --out "$OUT/run" \
    --threads "$THREADS" --seed 0 --ckpt-every 500
echo
echo "== 3. one sampled chunk (validation episode 0, frame 12), then 16 control steps replayed open loop"
./$BUILD/dualvla act dit --ckpt "$OUT/run/ckpt.safetensors" --data "$OUT/data/validation" \
    --episode 0 --frame 12 --threads "$THREADS" --rollout 16
