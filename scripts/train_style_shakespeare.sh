#!/usr/bin/env bash
# Recipe of a modern English -> Shakespeare style model: a character-level conditional diffusion model trained on the
# sentence-aligned pairs of Xu et al. (2012), Jhamtani et al.'s (2017) split (../shared/data/shakespeare_modern:
# 18,395 training pairs, 1,218 validation pairs; the test pairs are never trained on). Score it with
# `python -m bench.style_transfer --model OUT`.
# Usage: scripts/train_style_shakespeare.sh OUT [extra train flags]
# Env: DATA (../shared/data), DEVICE, MINUTES, BATCH, PYTHON.
# On 2 CPU cores, 4 layers of width 256 (--n-layers 4 --dim 256 --n-heads 4 --batch-size 32) ran 1.3 steps a second.
set -euo pipefail
OUT=${1:?usage: $0 OUT [flags]}; shift
D=${DATA:-../shared/data}/shakespeare_modern
PYTHON=${PYTHON:-python}
"$PYTHON" -m textdiffusion train --task style --out "$OUT" \
  --data "$D/train.modern.nltktok" --targets "$D/train.original.nltktok" \
  --valid "$D/valid.modern.nltktok" --valid-targets "$D/valid.original.nltktok" \
  --preset small --max-len 320 --steps 1000000 --batch-size "${BATCH:-256}" --lr 1e-3 --warmup-steps 200 \
  --eval-every 500 --eval-batches 4 --save-every 500 --log-every 100 \
  --max-minutes "${MINUTES:-60}" --device "${DEVICE:-auto}" --seed 0 --quiet "$@"
