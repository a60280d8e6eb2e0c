#!/usr/bin/env bash
# Recipe of the shipped `captioner`: one image-captioning model trained on everything offline at once.
#   photos   ../shared/data/coco_tiny (50 training images) + 3/4 of coco_mini (88 images), 5 captions each,
#            every row repeated 8 times (scripts/caption_data.py);
#   drawings Debian's openclipart-svg, rendered at 96 px with captions from title and tags
#            (scripts/render_openclipart.py; 80/20 split by file);
#   scenes   6,000 generated shape scenes (scripts/make_scenes.py; the 500 validation scenes hold colour-shape pairs
#            never seen in training).
# Then `python -m bench.captioning --model OUT --data WORK/data` scores it on every validation set.
# Usage: scripts/train_captioner.sh OUT WORK [extra train flags]    (WORK holds the rendered data)
# Env: DATA (../shared/data), DEVICE, MINUTES, PYTHON. Needs `apt-get install openclipart-svg librsvg2-bin`.
set -euo pipefail
OUT=${1:?usage: $0 OUT WORK [flags]}; WORK=${2:?usage: $0 OUT WORK [flags]}; shift 2
PYTHON=${PYTHON:-python}
[ -f "$WORK/scenes/train.tsv" ] || "$PYTHON" scripts/make_scenes.py "$WORK/scenes" --train 6000 --valid 500 --size 96 --seed 0
[ -f "$WORK/openclipart/train.tsv" ] || "$PYTHON" scripts/render_openclipart.py "$WORK/openclipart" --size 96 --jobs 2
"$PYTHON" scripts/caption_data.py "$WORK/data" --shared "${DATA:-../shared/data}" \
  --scenes "$WORK/scenes" --clipart "$WORK/openclipart" --photo-repeat 8 --overwrite
D=$WORK/data
"$PYTHON" -m textdiffusion train --task caption --out "$OUT" \
  --data "$D/train.tsv" --valid "$D/valid_coco_tiny.tsv" \
  --tokenizer bpe --bpe-vocab-size 1000 --max-len 32 \
  --image-size 64 --patch-size 8 --image-stem patch --image-layers 2 --n-layers 4 --dim 256 --n-heads 4 \
  --dropout 0.1 --steps 1000000 --batch-size 32 --lr 1e-3 --warmup-steps 200 \
  --eval-every 1000 --eval-batches 6 --save-every 500 --log-every 100 \
  --max-minutes "${MINUTES:-70}" --device "${DEVICE:-auto}" --seed 0 --quiet "$@"
