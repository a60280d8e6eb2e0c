#!/usr/bin/env bash
# One lent-GPU call (about 4 minutes) for the MFU item of the benchmarks issue: the compiled ~85M-parameter,
# 1024-token training step timed at three batch sizes, and eager (bench/speed.py: per-step and steady-state MFU), then
# profiled (bench/profile_step.py --train-compile: top kernels, kernel time by kind, wall time against the kernels'
# busy time). ATTNS lists the attention kernels to profile (auto: PyTorch's choice, which is cuDNN's on an H200).
#
# Expects: the repo as working directory, tinyshakespeare copied to .gpu/data/tinyshakespeare and the CLI's
# pure-Python wheels in .whl/ (see scripts/gpu_common.sh). Results come back as $OUT/results.tgz.
# Env: OUT, BUDGET (seconds for the whole script), CONFIGS (bench/speed.py --train-configs), QUICK=1 for a CPU dry
# run of the same steps with tiny sizes.
set -uo pipefail
BUDGET=${BUDGET:-330}
source scripts/gpu_common.sh

if [ "${QUICK:-0}" = 1 ]; then
  DEVICE=cpu; CONFIGS=${CONFIGS:-"tiny:64:4:eager tiny:64:8:eager"}; ATTNS=${ATTNS:-"auto flash"}
  PROFILE_SIZE="--size tiny --length 64 --train-batch 4"; SPEED_LIMIT=120
else
  DEVICE=cuda; ATTNS=${ATTNS:-auto}
  CONFIGS=${CONFIGS:-"base:1024:32:compiled base:1024:64:compiled base:1024:128:compiled base:1024:32:eager"}
  PROFILE_SIZE="--size base --length 1024 --train-batch 32 --train-compile"; SPEED_LIMIT=220
fi
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; $PY -c "import torch; print(torch.__version__)"; } \
  > "$W/results/device.txt" 2>&1
log "device: $(tr '\n' ' ' < "$W/results/device.txt")"

# -- 1: training throughput and MFU per batch size, the card to itself ---------------------------------------------
# shellcheck disable=SC2086  # CONFIGS is a list
timeout $SPEED_LIMIT $PY bench/speed.py --device $DEVICE --only training --data-dir "$DATA/tinyshakespeare" \
  --train-configs $CONFIGS --json "$W/results/speed-training.json" --no-readme > "$W/logs/speed.log" 2>&1
log "speed bench exit $?: $(grep -h 'train \|FAILED' "$W/logs/speed.log" | tr '\n' ' ')"

# -- 2: where the compiled step spends its time (torch.profiler: top kernels, time by kind), per attention kernel ---
for ATTN in $ATTNS; do
  [ "$(left)" -gt 60 ] || break
  # shellcheck disable=SC2086  # PROFILE_SIZE is a list
  timeout $(( $(left) - 10 )) $PY bench/profile_step.py --device $DEVICE $PROFILE_SIZE --train-attention $ATTN \
    --vocab-sizes --json "$W/results/profile-train-$ATTN.json" --no-readme > "$W/logs/profile-$ATTN.log" 2>&1
  log "profile $ATTN exit $?: $(grep -h 'training step\|by kind' "$W/logs/profile-$ATTN.log" | tr '\n' ' ')"
done

log "done; $(left) s of the budget left"
tar -C "$W" -czf "$OUT/results.tgz" results logs
ls -la "$OUT"
