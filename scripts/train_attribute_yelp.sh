#!/usr/bin/env bash
# Recipe of a sentiment-transfer model for Yelp reviews: a label-conditioned diffusion model of the training pool's
# sentences (../shared/data/yelp/trainpool: 73,124 negative and 108,121 positive lines; the test sentences are never
# trained on), BPE tokens, the label dropped for 10% of the lines (classifier-free guidance). Score it with
# `python -m bench.attribute_style --model OUT`.
# Usage: scripts/train_attribute_yelp.sh OUT [extra train flags]
# Env: DATA (../shared/data), DEVICE, MINUTES, BATCH, PYTHON.
set -euo pipefail
OUT=${1:?usage: $0 OUT [flags]}; shift
D=${DATA:-../shared/data}/yelp
PYTHON=${PYTHON:-python}
"$PYTHON" -m textdiffusion train --task style --out "$OUT" \
  --data "$D/trainpool/sentiment.trainpool.0" "$D/trainpool/sentiment.trainpool.1" --labels negative positive \
  --valid "$D/sentiment.dev.0" "$D/sentiment.dev.1" --tokenizer bpe --bpe-vocab-size 8192 \
  --n-layers 4 --dim 256 --n-heads 4 --max-len 64 \
  --steps 1000000 --batch-size "${BATCH:-64}" --lr 1e-3 --warmup-steps 200 \
  --eval-every 500 --eval-batches 8 --save-every 500 --log-every 100 \
  --max-minutes "${MINUTES:-40}" --device "${DEVICE:-auto}" --seed 0 --quiet "$@"
