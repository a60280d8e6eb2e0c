#!/usr/bin/env bash
# One lent-GPU call (BUDGET seconds, 540 by default) for block diffusion (issue 21, item 3; bench/block_diffusion.py):
# AR, block 4, block 16 and full MDLM models of the "small" shape (6 layers x 384, ~10M parameters, 256-token context)
# trained on the same tinyshakespeare tokens, each scored on valid.txt (AR exact, the others by their ELBO), then the
# sampling speed of the block sampler against AR with a KV cache at batch 1 and 16 for block sizes 1, 4 and 16.
#
# Sizing: a block model trains on [x_t ; x_0] (twice the tokens through the network, a (2L)^2 mask), so it steps at
# about half the AR/MDLM rate; on the CPU the tiny models ran 20k (AR), 18k (MDLM), 9k (block 16) and 6k (block 4)
# tokens/s. TOKENS (default 4M per model, 244 steps of 64 x 256) is chosen so that the four runs and the speed cases
# fit the budget on one H100 without compilation; raise it with a longer budget. Nothing here has run on a GPU yet:
# the first call should check the per-model train seconds in the log and rescale TOKENS.
#
# Expects: the repo as working directory, tinyshakespeare copied to .gpu/data/tinyshakespeare and the CLI's
# pure-Python wheels in .whl/ (see scripts/gpu_common.sh). Results come back as $OUT/results.tgz.
# Env: OUT, BUDGET, TOKENS, QUICK=1 for a CPU dry run of the same steps with the tiny shape.
set -uo pipefail
BUDGET=${BUDGET:-540}
source scripts/gpu_common.sh

if [ "${QUICK:-0}" = 1 ]; then
  DEVICE=cpu; SHAPE="--quick --tokens ${TOKENS:-50000} --eval-windows 8"
else
  DEVICE=cuda
  SHAPE="--n-layers 6 --n-heads 6 --dim 384 --seq-len 256 --batch-size 64 --tokens ${TOKENS:-4000000} --lr 1e-3"
  SHAPE="$SHAPE --warmup-steps 50 --ema-decay 0 --eval-samples 16 --eval-windows 200"
fi
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; $PY -c "import torch; print(torch.__version__)"; } \
  > "$W/results/device.txt" 2>&1
log "device: $(tr '\n' ' ' < "$W/results/device.txt")"

# shellcheck disable=SC2086  # SHAPE is a list
timeout $(( $(left) - 20 )) $PY -m bench.block_diffusion --device $DEVICE $SHAPE \
  --data-dir "$DATA/tinyshakespeare" --out "$W/runs" --json "$W/results/block-diffusion-$DEVICE.json" \
  > "$W/logs/block-diffusion.log" 2>&1
log "block diffusion exit $?: $(grep -h 'bits/char\|tokens/s\|FAILED' "$W/logs/block-diffusion.log" | tr '\n' ' ')"

log "done; $(left) s of the budget left"
tar -C "$W" -czf "$OUT/results.tgz" results logs
ls -la "$OUT"
