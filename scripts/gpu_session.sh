#!/usr/bin/env bash
# One lent-GPU session (one H100/H200, ~9 minutes): train the shipped models and the benchmark models side by side,
# evaluate them, time the GPU benchmarks, and pack everything into $OUT.
#
# Expects: the repo as working directory, data copied to .gpu/data (tinyshakespeare/, spelling/, jfleg/) and the
# wheels of the CLI's pure-Python dependencies in .whl/ (see bench/README.md, "GPU session").
# Env: OUT (results folder), BUDGET (seconds for the whole script, default 540), QUICK=1 for a CPU dry run.
set -uo pipefail
START=$(date +%s)
BUDGET=${BUDGET:-540}
OUT=${OUT:-/tmp/gpu-out}
W=${W:-/tmp/gpu-work}
DATA=${DATA:-.gpu/data}
mkdir -p "$OUT" "$W/logs" "$W/results"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site:$PWD || exit 1
else
  export PYTHONPATH=$PWD
fi
PY=${PY:-python3}
left() { echo $((BUDGET - ($(date +%s) - START))); }
log() { echo "[$(( $(date +%s) - START ))s] $*" | tee -a "$W/logs/session.log"; }

if [ "${QUICK:-0}" = 1 ]; then  # a CPU dry run of the same steps with tiny sizes
  DEVICE=cpu; MIN_MAIN=0.3; MIN_TYPO=0.3; SMALL="--preset tiny --batch-size 16 --eval-every 20 --save-every 20"
  TYPO_SMALL="--preset tiny --max-len 288 --batch-size 16 --eval-every 20 --save-every 20"; WORKERS=2
  LIK_ARGS="--quick"; EVAL_SAMPLES=2; EVAL_WINDOWS="--max-windows 8"; DENOISE_LIMIT="--limit 20"
else
  DEVICE=cuda; MIN_MAIN=${MIN_MAIN:-5.0}; MIN_TYPO=${MIN_TYPO:-5.0}; SMALL=""; TYPO_SMALL=""; WORKERS=8
  LIK_ARGS=""; EVAL_SAMPLES=32; EVAL_WINDOWS=""; DENOISE_LIMIT=""
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > "$W/results/gpu.txt" 2>&1
log "device: $(cat "$W/results/gpu.txt")"

# -- phase 1: training, side by side ---------------------------------------------------------------------------
export PYTHON=$PY DATA
MINUTES=$MIN_MAIN DEVICE=$DEVICE scripts/train_shakespeare_char.sh "$W/shk-a" $SMALL > "$W/logs/shk-a.log" 2>&1 &
PID_A=$!
MINUTES=$MIN_MAIN DEVICE=$DEVICE scripts/train_shakespeare_char.sh "$W/shk-b" --n-layers 8 --lr 1.5e-3 --dropout 0.15 $SMALL \
  > "$W/logs/shk-b.log" 2>&1 &
PID_B=$!
MINUTES=$MIN_TYPO DEVICE=$DEVICE WORKERS=$WORKERS scripts/train_typo_fixer.sh "$W/typo" $TYPO_SMALL > "$W/logs/typo.log" 2>&1 &
PID_C=$!
log "training started: shakespeare A=$PID_A B=$PID_B, typo-fixer=$PID_C"
if [ -f bench/likelihood.py ]; then
  timeout $(( $(left) - 230 )) $PY bench/likelihood.py --data-dir "$DATA/tinyshakespeare" --device $DEVICE \
    --out "$W/likelihood" --json "$W/results/likelihood.json" --no-readme --max-minutes ${LIK_MIN:-4.5} $LIK_ARGS \
    > "$W/logs/likelihood.log" 2>&1
  log "likelihood bench exit $?"
fi
wait $PID_A; log "shakespeare A exit $?"
wait $PID_B; log "shakespeare B exit $?"
wait $PID_C; log "typo-fixer exit $?"

# -- phase 2: evaluate, choose, pack the shipped models --------------------------------------------------------
best=""; best_bpc=99
for run in shk-a shk-b; do
  [ -f "$W/$run/model.safetensors" ] || continue
  timeout 120 $PY -m textdiffusion eval --model "$W/$run" --data "$DATA/tinyshakespeare/valid.txt" --samples $EVAL_SAMPLES \
    $EVAL_WINDOWS --device $DEVICE --json > "$W/results/eval-$run.json" 2>> "$W/logs/eval.log"
  bpc=$($PY -c "import json;print(json.load(open('$W/results/eval-$run.json'))['bits_per_char'])" 2>/dev/null || echo 99)
  log "$run valid bits/char $bpc"
  if $PY -c "import sys; sys.exit(0 if float('$bpc') < float('$best_bpc') else 1)"; then best=$run; best_bpc=$bpc; fi
done
pack() {  # pack MODEL_DIR NAME: bf16 weights + config + tokenizer, split into <=15 MiB parts
  $PY -c "
import sys, torch
from textdiffusion.pipelines.base import DiffusionPipeline
from textdiffusion.checkpoint import load_pretrained, save_pretrained
p = load_pretrained(sys.argv[1])
save_pretrained(p.model, p.tokenizer, sys.argv[2], config=p.config, dtype=torch.bfloat16)
" "$1" "$W/pack/$2" && tar -C "$W/pack" -cf "$W/pack/$2.tar" "$2" && split -b 15M -d "$W/pack/$2.tar" "$OUT/$2.tar.part"
}
mkdir -p "$W/pack"
[ -n "$best" ] && pack "$W/$best" shakespeare-char && log "packed $best as shakespeare-char ($best_bpc bits/char)"
[ -f "$W/typo/model.safetensors" ] && pack "$W/typo" typo-fixer && log "packed typo-fixer"

# -- phase 3: task evaluations and GPU benchmarks, while time is left ----------------------------------------
if [ -f textdiffusion/cli/denoise_eval.py ] && [ -f "$W/typo/model.safetensors" ] && [ "$(left)" -gt 100 ]; then
  timeout $(( $(left) - 150 )) $PY -m textdiffusion eval-denoise --model "$W/typo" --data-dir "$DATA" --no-baselines \
    --jfleg-split both --batch-size 512 --device $DEVICE --json $DENOISE_LIMIT --out "$W/results/denoise" \
    > "$W/results/denoise.json" 2> "$W/logs/denoise.log"
  log "denoise eval exit $?"
fi
if [ -f bench/quality.py ] && [ -d "$W/likelihood/small-ar" ] && [ "$(left)" -gt 120 ]; then
  timeout $(( $(left) - 100 )) $PY bench/quality.py --diffusion "$W/likelihood/small-diffusion" \
    --ar "$W/likelihood/small-ar" --train-judge --device $DEVICE --out "$W/quality" --json "$W/results/quality.json" \
    --png "$W/results/quality.png" --no-readme --max-minutes 1.2 $LIK_ARGS > "$W/logs/quality.log" 2>&1
  log "quality bench exit $?"
fi
if [ -f bench/speed.py ] && [ "$(left)" -gt 60 ]; then
  timeout $(( $(left) - 25 )) $PY bench/speed.py --device $DEVICE --json "$W/results/speed.json" --no-readme $LIK_ARGS \
    > "$W/logs/speed.log" 2>&1
  log "speed bench exit $?"
fi
if [ -f bench/bench_particles.py ] && [ "$(left)" -gt 25 ]; then
  timeout $(( $(left) - 10 )) $PY bench/bench_particles.py --device $DEVICE --json "$W/results/particles.json" \
    --no-readme $LIK_ARGS > "$W/logs/particles.log" 2>&1
  log "particles bench exit $?"
fi

# -- pack the small results --------------------------------------------------------------------------------------
cp "$W"/*/train_args.json "$W/results/" 2>/dev/null
for run in shk-a shk-b typo; do tail -c 4000 "$W/logs/$run.log" > "$W/results/$run.log.tail" 2>/dev/null; done
cp "$W/logs/session.log" "$W/results/" 2>/dev/null
tar -C "$W" -czf "$OUT/results.tgz" results logs
log "done; $(left) s of the budget left"
ls -la "$OUT"
