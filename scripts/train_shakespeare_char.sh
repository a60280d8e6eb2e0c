#!/usr/bin/env bash
# Recipe of the shipped `shakespeare-char` model: a character-level masked diffusion LM on Tiny Shakespeare.
# Usage: scripts/train_shakespeare_char.sh OUT [extra train flags]   (env: DATA, DEVICE, MINUTES, PYTHON)
# On a GPU (bf16) the budget below is a few minutes; on a CPU pass e.g. MINUTES=600 and expect a weaker model.
set -euo pipefail
OUT=${1:?usage: $0 OUT [flags]}; shift
DATA=${DATA:-../shared/data}
PYTHON=${PYTHON:-python}
"$PYTHON" -m textdiffusion train --out "$OUT" \
  --data "$DATA/tinyshakespeare/train.txt" --valid "$DATA/tinyshakespeare/valid.txt" \
  --preset small --dropout 0.1 --steps 100000 --batch-size 256 --lr 2e-3 --warmup-steps 200 \
  --eval-every 1000 --eval-batches 4 --save-every 1000 --log-every 50 \
  --max-minutes "${MINUTES:-5}" --device "${DEVICE:-auto}" --seed 0 --quiet "$@"
