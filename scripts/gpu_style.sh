#!/usr/bin/env bash
# One lent-GPU call (one H100/H200, under 10 minutes): train the modern English -> Shakespeare style model alone on
# the card for MIN minutes (scripts/train_style_shakespeare.sh), pack it in bf16 and score it against the copy
# baseline (bench/style_transfer.py, all 1,096 visible test pairs).
#
# Expects: the repo as working directory, ../shared/data/shakespeare_modern copied to .gpu/data/shakespeare_modern
# and the CLI's pure-Python wheels in .whl/ (see scripts/gpu_common.sh). Results come back as $OUT/results.tgz and
# the packed model as $OUT/style-shakespeare.tar.part*.
# Env: OUT, BUDGET (seconds for the whole script), MIN (training minutes), QUICK=1 for a CPU dry run.
set -uo pipefail
BUDGET=${BUDGET:-540}
source scripts/gpu_common.sh

if [ "${QUICK:-0}" = 1 ]; then
  DEVICE=cpu; MIN=${MIN:-0.3}; BATCH=8; SIZE="--preset tiny --n-layers 2 --eval-every 20 --save-every 20"
  BENCH="--limit 20 --steps 4"
else
  DEVICE=cuda; MIN=${MIN:-6}; BATCH=${BATCH:-256}; SIZE=""; BENCH="--steps 8 16 32"
fi
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; $PY -c "import torch; print(torch.__version__)"; } \
  > "$W/results/device.txt" 2>&1
log "device: $(tr '\n' ' ' < "$W/results/device.txt")"

# shellcheck disable=SC2086  # SIZE is a list
DATA=$DATA PYTHON=$PY MINUTES=$MIN DEVICE=$DEVICE BATCH=$BATCH scripts/train_style_shakespeare.sh "$W/style" $SIZE \
  > "$W/logs/style.log" 2>&1
log "style exit $?: $(grep -h 'valid\|pairs' "$W/logs/style.log" | tail -3 | tr '\n' ' ')"
cp "$W/style/train_args.json" "$W/results/style-train_args.json" 2>/dev/null

if [ -f "$W/style/model.safetensors" ]; then
  pack "$W/style" style-shakespeare && log "packed style-shakespeare"
  # shellcheck disable=SC2086  # BENCH is a list
  timeout $(( $(left) - 10 )) $PY -m bench.style_transfer --model "$W/pack/style-shakespeare" --device $DEVICE \
    --data-dir "$DATA/shakespeare_modern" $BENCH --json "$W/results/style-transfer.json" --no-readme \
    > "$W/logs/style-bench.log" 2>&1
  log "style bench exit $?: $(grep -h 'BLEU' "$W/logs/style-bench.log" | tr '\n' ' ')"
fi
log "done; $(left) s of the budget left"
tar -C "$W" -czf "$OUT/results.tgz" results logs
ls -la "$OUT"
