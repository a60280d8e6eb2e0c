#!/usr/bin/env bash
# One lent-GPU call (under 10 minutes) for the MFU item of the benchmarks issue: the compiled ~85M-parameter,
# 1024-token training step timed with each attention kernel and at two batch sizes (bench/speed.py: per-step and
# steady-state MFU), then profiled (bench/profile_step.py: top kernels, wall time against the kernels' busy time), and
# with the time left the small model's training step with sparse against dense logits (the Trainer keeps dense logits
# on GPUs until this is measured).
#
# Expects: the repo as working directory, tinyshakespeare copied to .gpu/data/tinyshakespeare and the CLI's
# pure-Python wheels in .whl/ (see scripts/gpu_common.sh). Results come back as $OUT/results.tgz.
# Env: OUT, BUDGET (seconds for the whole script), CONFIGS (bench/speed.py --train-configs), QUICK=1 for a CPU dry
# run of the same steps with tiny sizes.
set -uo pipefail
BUDGET=${BUDGET:-570}
source scripts/gpu_common.sh

if [ "${QUICK:-0}" = 1 ]; then
  DEVICE=cpu; CONFIGS=${CONFIGS:-"tiny:64:4:eager tiny:64:4:eager:flash tiny:64:8:eager"}
  PROFILE_SIZE="--size tiny --length 64 --train-batch 4"; SPEED_LIMIT=120
else
  DEVICE=cuda; CONFIGS=${CONFIGS:-"base:1024:32:compiled base:1024:32:compiled:cudnn base:1024:32:compiled:flash \
base:1024:64:compiled base:1024:32:eager"}
  PROFILE_SIZE="--size base --length 1024 --train-batch 32 --train-compile"; SPEED_LIMIT=360
fi
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; $PY -c "import torch; print(torch.__version__)"; } \
  > "$W/results/device.txt" 2>&1
log "device: $(tr '\n' ' ' < "$W/results/device.txt")"

# -- 1: training throughput and MFU per attention kernel and batch, the card to itself ----------------------------
# shellcheck disable=SC2086  # CONFIGS is a list
timeout $SPEED_LIMIT $PY bench/speed.py --device $DEVICE --only training --data-dir "$DATA/tinyshakespeare" \
  --train-configs $CONFIGS --json "$W/results/speed-training.json" --no-readme > "$W/logs/speed.log" 2>&1
log "speed bench exit $?: $(grep -h 'train \|FAILED' "$W/logs/speed.log" | tr '\n' ' ')"

# -- 2: where the compiled step spends its time (torch.profiler, top kernels), with what is left ------------------
timeout $(( $(left) - 15 )) $PY bench/profile_step.py --device $DEVICE $PROFILE_SIZE --vocab-sizes \
  --json "$W/results/profile-train.json" --no-readme > "$W/logs/profile.log" 2>&1
log "profile exit $?: $(grep -h 'training step' "$W/logs/profile.log")"

# -- 3: the small model's step with sparse against dense logits (and the sampler fast path), if time is left ------
[ "$(left)" -gt 60 ] && { timeout $(( $(left) - 15 )) $PY bench/profile_step.py --device $DEVICE --steps 64 \
  --json "$W/results/profile-steps.json" --no-readme > "$W/logs/profile-steps.log" 2>&1
  log "sparse/dense exit $?: $(grep -h 'train step' "$W/logs/profile-steps.log" | tr '\n' ' ')"; }

log "done; $(left) s of the budget left"
tar -C "$W" -czf "$OUT/results.tgz" results logs
ls -la "$OUT"
