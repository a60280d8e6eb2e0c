#!/usr/bin/env bash
# One lent-GPU session (one H100/H200, under 10 minutes): train the shipped models and the benchmark models side by
# side, evaluate them, time the GPU benchmarks, and pack everything into $OUT.
#
# Expects: the repo as working directory, the data copied to .gpu/data (tinyshakespeare/, spelling/, jfleg/, words/) and the
# wheels of the CLI's pure-Python dependencies in .whl/ (tyro, docstring-parser, typeguard).
# Env: OUT (results folder), BUDGET (seconds for the whole script), QUICK=1 for a CPU dry run with tiny sizes.
set -uo pipefail
BUDGET=${BUDGET:-585}
source scripts/gpu_common.sh

if [ "${QUICK:-0}" = 1 ]; then  # a CPU dry run of the same steps with tiny sizes
  DEVICE=cpu; MIN=${MIN:-0.3}; Q="--quick"
  SHK="--preset tiny --batch-size 16 --eval-every 20 --save-every 20 --log-every 10"
  TYPO="--preset tiny --max-len 288 --batch-size 16 --eval-every 20 --save-every 20 --log-every 10"
  JUDGE="--preset tiny --batch-size 16 --eval-every 20 --save-every 20 --log-every 10"
  WORKERS=2; EVAL="--samples 2 --max-windows 8"; DENOISE="--limit 20"
  SPEED="--quick"; PARTICLES="--quick"
else
  DEVICE=cuda; MIN=${MIN:-4.5}; Q=""; SHK=""; TYPO=""
  JUDGE="--n-layers 8 --n-heads 8 --dim 512 --batch-size 128"  # ~25M parameters: larger than what it judges
  WORKERS=8; EVAL="--samples 32 --batch-size 256"; DENOISE="--batch-size 512"
  SPEED="--steps 64"; PARTICLES=""
fi
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; $PY -c "import torch; print(torch.__version__)"; } \
  > "$W/results/device.txt" 2>&1
log "device: $(tr '\n' ' ' < "$W/results/device.txt")"

# -- phase 1: every training run side by side ------------------------------------------------------------------------
export PYTHON=$PY DATA
MINUTES=$MIN DEVICE=$DEVICE scripts/train_shakespeare_char.sh "$W/shk" $SHK > "$W/logs/shk.log" 2>&1 &
PID_SHK=$!
WORDS="$DATA/words/frequency_dictionary_en_82_765.txt" MINUTES=$MIN DEVICE=$DEVICE WORKERS=$WORKERS scripts/train_typo_fixer.sh "$W/typo" $TYPO > "$W/logs/typo.log" 2>&1 &
PID_TYPO=$!
# the judge of sample quality: a larger AR model on the same corpus
$PY -m textdiffusion train --objective ar --out "$W/judge" --data "$DATA/tinyshakespeare/train.txt" \
  --valid "$DATA/tinyshakespeare/valid.txt" --dropout 0.1 --steps 100000 --lr 1e-3 --warmup-steps 200 \
  --eval-every 1000 --eval-batches 4 --save-every 1000 --log-every 50 --max-minutes "$MIN" --device $DEVICE \
  --quiet $JUDGE > "$W/logs/judge.log" 2>&1 &
PID_JUDGE=$!
log "training: shakespeare-char $PID_SHK, typo-fixer $PID_TYPO, judge $PID_JUDGE"
# diffusion vs AR likelihood at two sizes, the same tokens each (its own time budget)
timeout $(( 60 * ${MIN%.*} + 90 )) $PY -m bench.likelihood --data-dir "$DATA/tinyshakespeare" --device $DEVICE \
  --sizes mini small --out "$W/likelihood" --json "$W/results/likelihood.json" --no-readme --max-minutes "$MIN" $Q \
  > "$W/logs/likelihood.log" 2>&1
log "likelihood bench exit $?"
wait $PID_SHK; log "shakespeare-char exit $?"
wait $PID_TYPO; log "typo-fixer exit $?"
wait $PID_JUDGE; log "judge exit $?"

# -- phase 2: evaluate and pack the shipped models -------------------------------------------------------------------
[ -f "$W/typo/model.safetensors" ] && pack "$W/typo" typo-fixer && log "packed typo-fixer"
if [ -f "$W/shk/model.safetensors" ]; then
  pack "$W/shk" shakespeare-char && log "packed shakespeare-char"
  for seed in ${EVAL_SEEDS:-0 1}; do
    timeout 90 $PY -m textdiffusion eval --model "$W/pack/shakespeare-char" --data "$DATA/tinyshakespeare/valid.txt" \
      --seed $seed --device $DEVICE --json $EVAL > "$W/results/eval-shakespeare-seed$seed.json" 2>> "$W/logs/eval.log"
    log "shakespeare-char (bf16) valid, seed $seed: $(cat "$W/results/eval-shakespeare-seed$seed.json" | cut -c1-200)"
  done
fi

# -- phase 3: task evaluations and GPU benchmarks, while time is left ------------------------------------------------
if [ -d "$W/likelihood/small-ar" ] && [ -f "$W/judge/model.safetensors" ] && [ "$(left)" -gt 80 ]; then
  timeout 75 $PY -m bench.quality --diffusion "$W/likelihood/small-diffusion" --ar "$W/likelihood/small-ar" \
    --judge "$W/judge" --data-dir "$DATA/tinyshakespeare" --device $DEVICE --out "$W/quality" \
    --json "$W/results/quality.json" --png "$W/results/quality.png" --no-readme --max-minutes 1.0 $Q \
    > "$W/logs/quality.log" 2>&1
  log "quality bench exit $?"
fi
if [ -d "$W/pack/typo-fixer" ] && [ "$(left)" -gt 65 ]; then
  timeout 60 $PY -m textdiffusion eval-denoise --model "$W/pack/typo-fixer" --data-dir "$DATA" --no-baselines \
    --jfleg-split both --device $DEVICE --json $DENOISE --out "$W/results/denoise" \
    > "$W/results/denoise.json" 2> "$W/logs/denoise.log"
  log "denoise eval exit $?"
fi
if [ "${SKIP_BENCH:-0}" != 1 ] && [ "$(left)" -gt 45 ]; then
  timeout $(( $(left) - 30 )) $PY -m bench.speed --device $DEVICE --json "$W/results/speed.json" --no-readme $SPEED \
    > "$W/logs/speed.log" 2>&1
  log "speed bench exit $?"
fi
if [ "${SKIP_BENCH:-0}" != 1 ] && [ "$(left)" -gt 20 ]; then
  timeout $(( $(left) - 8 )) $PY -m bench.bench_particles --device $DEVICE --json "$W/results/particles.json" \
    --no-readme $PARTICLES > "$W/logs/particles.log" 2>&1
  log "particles bench exit $?"
fi

# -- pack the small results ------------------------------------------------------------------------------------------
for run in shk typo judge; do
  cp "$W/$run/train_args.json" "$W/results/$run-train_args.json" 2>/dev/null
done
log "done; $(left) s of the budget left"
tar -C "$W" -czf "$OUT/results.tgz" results logs
ls -la "$OUT"
