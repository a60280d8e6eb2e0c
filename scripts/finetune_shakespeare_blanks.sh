#!/usr/bin/env bash
# Second stage of the shipped `shakespeare-char`: fine-tune the H200-trained LM (scripts/train_shakespeare_char.sh)
# with variable-length blanks, so that `infill` fills a blank of unknown length in one left-to-right pass.
# The shipped model: two CPU runs on 2 cores (shared with other work), 600 steps in about 30 minutes, then 700 more in
# 60 minutes from its step-600 checkpoint once blanks were also masked from a point of their text on; batch 32 x 128
# characters. Here: one run of MINUTES.
# Usage: scripts/finetune_shakespeare_blanks.sh BASE OUT [extra train flags]   (env: DATA, MINUTES, PYTHON)
set -euo pipefail
BASE=${1:?usage: $0 BASE OUT [flags]}; OUT=${2:?usage: $0 BASE OUT [flags]}; shift 2
DATA=${DATA:-../shared/data}
PYTHON=${PYTHON:-python}
"$PYTHON" -m textdiffusion train --out "$OUT" --init-from "$BASE" \
  --data "$DATA/tinyshakespeare/train.txt" --valid "$DATA/tinyshakespeare/valid.txt" \
  --seq-len 128 --batch-size 32 --lr 3e-4 --dropout 0.1 --ema-decay 0.995 \
  --blank-rate 0.6 --max-blank 16 --mask-blanks 0.6 --steps 5000 --save-every 200 --eval-every 200 \
  --max-minutes "${MINUTES:-120}" --seed 0 --quiet "$@"
