#!/usr/bin/env bash
# Recipe of the shipped `shakespeare-style` model: a source-start (--edit-gap 2) rewriter, modern English ->
# Shakespeare, on the sentence-aligned pairs of Xu et al. (2012) in Jhamtani et al.'s (2017) split
# (../shared/data/shakespeare_modern train, 18,395 pairs) plus the 9,273 eNotes pairs of shakespeare_plays brought
# to the same NLTK-tokenised form (scripts/shakespeare_style_data.py); the test pairs are never trained on.
# The shipped model: 6 layers of width 256, byte-level BPE of 4,096, 100 minutes on 2 CPU cores (one thread, beside
# another run): 2,900 steps of 64 pairs. Score it with `python -m bench.style_transfer --model OUT --steps 16`.
# Usage: scripts/train_style_shakespeare.sh OUT [extra train flags]
# Env: DATA (../shared/data), DEVICE, MINUTES, PYTHON.
set -euo pipefail
OUT=${1:?usage: $0 OUT [flags]}; shift
SHARED=${DATA:-../shared/data}
D=$SHARED/shakespeare_modern
PYTHON=${PYTHON:-python}
"$PYTHON" scripts/shakespeare_style_data.py "$OUT.data" --shared "$SHARED"
"$PYTHON" -m textdiffusion train --task style --out "$OUT" --edit-gap 2 \
  --data "$OUT.data/train.modern" --targets "$OUT.data/train.original" \
  --valid "$D/valid.modern.nltktok" --valid-targets "$D/valid.original.nltktok" \
  --tokenizer bpe --bpe-vocab-size 4096 --max-len 128 --preset small --dim 256 --n-heads 4 \
  --batch-size "${BATCH:-64}" --lr 1e-3 --dropout 0.1 --steps 20000 --eval-every 250 --save-every 250 \
  --max-minutes "${MINUTES:-100}" --device "${DEVICE:-auto}" --seed 0 --quiet "$@"
