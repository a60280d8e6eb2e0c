#!/usr/bin/env bash
# Recipe of a small image captioning model trained on the tiny COCO 2017 subset (../shared/data/coco_tiny: 50
# training images with 5 captions each; 35 visible validation images, 175 captions). Far too little data to learn to
# describe new photographs: it shows the captioning path end to end (image encoder, cross-attention, learnt caption
# length) on real images. Score it with `python -m bench.captioning --model OUT`.
# Usage: scripts/train_caption_coco.sh OUT [extra train flags]
# Env: DATA (../shared/data), DEVICE, MINUTES, BATCH, PYTHON.
set -euo pipefail
OUT=${1:?usage: $0 OUT [flags]}; shift
D=${DATA:-../shared/data}/coco_tiny
PYTHON=${PYTHON:-python}
"$PYTHON" -m textdiffusion train --task caption --out "$OUT" \
  --data "$D/captions_train2017.tsv" --valid "$D/captions_val2017.visible.tsv" --image-root "$D/images" \
  --tokenizer bpe --bpe-vocab-size 1000 --max-len 64 \
  --image-size 64 --patch-size 8 --image-layers 2 --n-layers 4 --dim 256 --n-heads 4 --dropout 0.1 \
  --steps 1000000 --batch-size "${BATCH:-32}" --lr 1e-3 --warmup-steps 100 \
  --eval-every 250 --eval-batches 6 --save-every 250 --log-every 50 \
  --max-minutes "${MINUTES:-25}" --device "${DEVICE:-auto}" --seed 0 --quiet "$@"
