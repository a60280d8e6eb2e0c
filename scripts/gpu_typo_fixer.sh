#!/usr/bin/env bash
# One lent-GPU call (one H100/H200, under 10 minutes): time training throughput and MFU (bench/speed.py), then train
# the shipped `typo-fixer` alone on the card (scripts/train_typo_fixer.sh), pack it in bf16 and score it with
# `textdiffusion eval-denoise` (the baselines run on the CPU beforehand: they need no GPU).
#
# Expects: the repo as working directory, the data copied to .gpu/data (spelling/, jfleg/, tinyshakespeare/ and
# words/frequency_dictionary_en_82_765.txt, symspellpy's dictionary) and the wheels of the CLI's pure-Python
# dependencies in .whl/ (tyro, docstring-parser, typeguard).
# Env: OUT (results folder), BUDGET (seconds for the whole script), MIN (training minutes), SKIP_SPEED=1, PROFILE=1
# (also profile the compiled 85M / 1024-token training step), INIT (a model folder to go on from, e.g.
# .gpu/init/typo-fixer), QUICK=1 for a CPU dry run.
set -uo pipefail
BUDGET=${BUDGET:-560}
source scripts/gpu_common.sh

if [ "${QUICK:-0}" = 1 ]; then  # a CPU dry run of the same steps with tiny sizes
  DEVICE=cpu; MIN=${MIN:-0.4}; WORKERS=2; BATCH=32
  TYPO="--preset tiny --n-layers 2 --max-len 256 --eval-every 20 --save-every 20 --log-every 10"
  SPEED="--quick"; DENOISE="--limit 20"; SPEED_LIMIT=60
  PROFILE_SIZE="--size tiny --length 64 --train-batch 4"
else
  DEVICE=cuda; MIN=${MIN:-5.5}; WORKERS=12; BATCH=${BATCH:-1024}; TYPO=""
  SPEED=""; DENOISE="--batch-size 512"; SPEED_LIMIT=110
  PROFILE_SIZE="--size base --length 1024 --train-batch 32"
fi
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; $PY -c "import torch; print(torch.__version__)"; } \
  > "$W/results/device.txt" 2>&1
log "device: $(tr '\n' ' ' < "$W/results/device.txt")"

# -- 1: training throughput and MFU (character model and the 85M / 1024-token configuration), the card to itself --
[ "${SKIP_SPEED:-0}" = 1 ] || timeout $SPEED_LIMIT $PY -m bench.speed --device $DEVICE --only training --data-dir "$DATA/tinyshakespeare" \
  --json "$W/results/speed-training.json" --no-readme $SPEED > "$W/logs/speed.log" 2>&1
log "speed bench exit $?: $(grep -h 'train ' "$W/logs/speed.log" | tr '\n' ' ')"
# where the compiled 85M / 1024-token training step spends its time (torch.profiler, top kernels), about a minute
[ "${PROFILE:-0}" = 1 ] && { timeout $SPEED_LIMIT $PY -m bench.profile_step --device $DEVICE $PROFILE_SIZE --train-compile \
  --vocab-sizes --json "$W/results/profile-train.json" --no-readme > "$W/logs/profile.log" 2>&1
  log "profile exit $?: $(grep -h 'top operators' "$W/logs/profile.log")"; }

# -- 2: the typo-fixer, alone on the card for MIN minutes ---------------------------------------------------------
DATA=$DATA WORDS="$DATA/words/frequency_dictionary_en_82_765.txt" PYTHON=$PY MINUTES=$MIN DEVICE=$DEVICE \
  WORKERS=$WORKERS BATCH=$BATCH scripts/train_typo_fixer.sh "$W/typo" $TYPO ${INIT:+--init-from "$INIT"} > "$W/logs/typo.log" 2>&1
log "typo-fixer exit $?: $(grep -h 'valid\|tok/s' "$W/logs/typo.log" | tail -2 | tr '\n' ' ')"
cp "$W/typo/train_args.json" "$W/results/typo-train_args.json" 2>/dev/null

# -- 3: pack in bf16 (<= 15 MiB parts) and score it --------------------------------------------------------------
if [ -f "$W/typo/model.safetensors" ]; then
  pack "$W/typo" typo-fixer && log "packed typo-fixer"
  timeout $(( $(left) - 10 )) $PY -m textdiffusion eval-denoise --model "$W/pack/typo-fixer" --data-dir "$DATA" \
    --no-baselines --jfleg-split both --device $DEVICE --json $DENOISE --out "$W/results/denoise" \
    > "$W/results/denoise.json" 2> "$W/logs/denoise.log"
  log "denoise eval exit $?"
fi
log "done; $(left) s of the budget left"
tar -C "$W" -czf "$OUT/results.tgz" results logs
ls -la "$OUT"
