#!/usr/bin/env bash
# Recipe of the shipped `typo-fixer` model: a character-level conditional diffusion model that turns text
# corrupted on the fly (data/corruption.py) back into Norvig's big.txt (clean public-domain English).
# Usage: scripts/train_typo_fixer.sh OUT [extra train flags]   (env: DATA, DEVICE, MINUTES, WORKERS, PYTHON)
# The shipped model is this recipe run for 80 minutes on one CPU thread (OMP_NUM_THREADS=1, DEVICE=cpu); on a GPU
# give it a larger model and more time, e.g. `--preset small --batch-size 256 --workers 8` and MINUTES=30.
set -euo pipefail
OUT=${1:?usage: $0 OUT [flags]}; shift
DATA=${DATA:-../shared/data}
PYTHON=${PYTHON:-python}
"$PYTHON" -m textdiffusion train --task denoise --out "$OUT" \
  --data "$DATA/spelling/norvig/big.txt.gz" --valid-fraction 0.01 \
  --preset small --n-layers 4 --dim 256 --n-heads 4 --max-len 160 --max-chars 64 \
  --word-fraction 0.5 --word-clean-rate 0.35 --steps 100000 --batch-size 64 --lr 2e-3 --warmup-steps 200 \
  --eval-every 500 --eval-batches 2 --save-every 250 --log-every 25 --workers "${WORKERS:-0}" \
  --max-minutes "${MINUTES:-80}" --device "${DEVICE:-auto}" --seed 0 --quiet "$@"
