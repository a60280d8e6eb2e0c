#!/usr/bin/env bash
# One lent-GPU call (BUDGET seconds, 480 by default) for the MFU item of the benchmarks issue: candidate changes to
# the compiled ~85M-parameter, 1024-token training step, each timed against the package's step in one process with
# its loss after 200 more steps (bench/mfu_variants.py), then, with the time left, the step's profile (bench/profile_step.py
# --train-compile: top kernels, kernel time by kind, wall time against the kernels' busy time). The default variants
# check the landed winners against the old step (fp32-residual+loss-eager) and give coordinate-descent tuning the
# time its compilation needs; session 11's two calls ran the variants listed in bench/README.md ("MFU variants").
# The batch-size and profile tables there came from earlier versions of this script: their commands are listed.
#
# Expects: the repo as working directory, tinyshakespeare copied to .gpu/data/tinyshakespeare and the CLI's
# pure-Python wheels in .whl/ (see scripts/gpu_common.sh). Results come back as $OUT/results.tgz.
# Env: OUT, BUDGET (seconds for the whole script), VARIANTS (bench/mfu_variants.py --variants), BATCH, QUICK=1 for a
# CPU dry run of the same steps with tiny sizes.
set -uo pipefail
BUDGET=${BUDGET:-480}
source scripts/gpu_common.sh

if [ "${QUICK:-0}" = 1 ]; then
  DEVICE=cpu; SIZE="--size tiny --length 64"; BATCH=${BATCH:-4}; MORE="--train-more 10 --train-steps 2 --eager"
  VARIANTS=${VARIANTS:-"baseline heads-128 fp32-residual+loss-eager qkv-split winners"}; PROFILE="--train-batch 4"
else
  DEVICE=cuda; SIZE="--size base --length 1024"; BATCH=${BATCH:-64}; MORE=""; PROFILE="--train-batch 32 --train-compile"
  VARIANTS=${VARIANTS:-"baseline heads-128 fp32-residual+loss-eager coordinate-descent"}
fi
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; $PY -c "import torch; print(torch.__version__)"; } \
  > "$W/results/device.txt" 2>&1
log "device: $(tr '\n' ' ' < "$W/results/device.txt")"

# -- 1: the variants, the card to itself --------------------------------------------------------------------------
# shellcheck disable=SC2086  # SIZE, MORE and VARIANTS are lists
timeout $(( $(left) - 70 )) $PY -m bench.mfu_variants --device $DEVICE $SIZE --batch "$BATCH" $MORE \
  --data-dir "$DATA/tinyshakespeare" --variants $VARIANTS --json "$W/results/mfu-variants.json" --no-readme \
  > "$W/logs/variants.log" 2>&1
log "variants exit $?: $(grep -h 'ms/step\|FAILED' "$W/logs/variants.log" | tr '\n' ' ')"

# -- 2: where the compiled step spends its time, with the time left ----------------------------------------------
if [ "$(left)" -gt 60 ]; then
  # shellcheck disable=SC2086  # SIZE and PROFILE are lists
  timeout $(( $(left) - 10 )) $PY -m bench.profile_step --device $DEVICE $SIZE $PROFILE --vocab-sizes \
    --json "$W/results/profile-train.json" --no-readme > "$W/logs/profile.log" 2>&1
  log "profile exit $?: $(grep -h 'training step\|by kind' "$W/logs/profile.log" | tr '\n' ' ')"
fi

log "done; $(left) s of the budget left"
tar -C "$W" -czf "$OUT/results.tgz" results logs
ls -la "$OUT"
