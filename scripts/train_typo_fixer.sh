#!/usr/bin/env bash
# Recipe of the shipped `typo-fixer` model: a character-level conditional diffusion model that turns text corrupted
# on the fly (data/corruption.py) back into clean English: the sentences of Norvig's big.txt (public-domain books),
# a share of them with tokenised spacing (as JFLEG is), and single words drawn from symspellpy's English frequency
# dictionary (82,765 words, by the square root of their counts). The evaluation sets are never trained on.
# Usage: scripts/train_typo_fixer.sh OUT [extra train flags]
# Env: DATA (../shared/data), WORDS (default: symspellpy's dictionary, `pip install "textdiffusion[bench]"`), DEVICE,
# MINUTES, WORKERS, BATCH, WORD_FRACTION, PYTHON.
# The shipped model: this recipe on one H200 (scripts/gpu_typo_fixer.sh), 2,000 steps with BATCH=512 WORD_FRACTION=0.5,
# then 8,900 steps more with the defaults (`--init-from` the first); on a CPU, expect
# a weak model unless it runs for many hours.
set -euo pipefail
OUT=${1:?usage: $0 OUT [flags]}; shift
DATA=${DATA:-../shared/data}
PYTHON=${PYTHON:-python}
WORDS=${WORDS:-$("$PYTHON" -c "import os, symspellpy; print(os.path.join(os.path.dirname(symspellpy.__file__), 'frequency_dictionary_en_82_765.txt'))")}
"$PYTHON" -m textdiffusion train --task denoise --out "$OUT" \
  --data "$DATA/spelling/norvig/big.txt.gz" --valid-fraction 0.01 --words "$WORDS" \
  --preset small --n-layers 8 --max-len 256 --max-chars 96 \
  --word-fraction "${WORD_FRACTION:-0.8}" --word-clean-rate 0.3 --tokenized-rate 0.3 \
  --steps 1000000 --batch-size "${BATCH:-1024}" --lr 2e-3 --warmup-steps 300 \
  --eval-every 1000 --eval-batches 4 --save-every 1000 --log-every 100 --workers "${WORKERS:-0}" \
  --max-minutes "${MINUTES:-80}" --device "${DEVICE:-auto}" --seed 0 --quiet "$@"
