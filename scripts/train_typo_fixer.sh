#!/usr/bin/env bash
# Recipe of the shipped `typo-fixer` model: a character-level conditional diffusion model that turns text
# corrupted on the fly (data/corruption.py) back into Norvig's big.txt (clean public-domain English).
# Usage: scripts/train_typo_fixer.sh OUT [extra train flags]   (env: DATA, DEVICE, MINUTES, WORKERS, PYTHON)
set -euo pipefail
OUT=${1:?usage: $0 OUT [flags]}; shift
DATA=${DATA:-../shared/data}
PYTHON=${PYTHON:-python}
"$PYTHON" -m textdiffusion train --task denoise --out "$OUT" \
  --data "$DATA/spelling/norvig/big.txt.gz" --valid-fraction 0.01 \
  --preset small --max-len 288 --steps 100000 --batch-size 256 --lr 1.5e-3 --warmup-steps 300 \
  --eval-every 1000 --eval-batches 4 --save-every 1000 --log-every 50 --workers "${WORKERS:-6}" \
  --max-minutes "${MINUTES:-5}" --device "${DEVICE:-auto}" --seed 0 --quiet "$@"
