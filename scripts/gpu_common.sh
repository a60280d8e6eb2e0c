# Shared set-up of the lent-GPU scripts (sourced): folders, the CLI's pure-Python wheels from .whl/ (the device image
# lacks them), the time budget, a log, and `pack MODEL_DIR NAME` (bf16 weights + config + tokenizer, tarred and split
# into <= 15 MiB parts under $OUT, the most one file may be to come back from the device machine).
# Env: OUT, W (work folder), DATA, BUDGET (seconds), PY.
# The working tree sent with a call may be 64 MiB at most, and the shipped models make the tracked files 65 MiB. The
# scripts need none of them, so before a call untrack two (their files stay):
#   git rm -r -q --cached textdiffusion/pretrained/typo-fixer textdiffusion/pretrained/yelp-sentiment
#   printf '/textdiffusion/pretrained/typo-fixer/\n/textdiffusion/pretrained/yelp-sentiment/\n' >> .git/info/exclude
# and after it: `git reset -q HEAD -- textdiffusion/pretrained` and remove those two lines again.
START=$(date +%s)
BUDGET=${BUDGET:-585}
OUT=${OUT:-/tmp/gpu-out}
W=${W:-/tmp/gpu-work}
DATA=${DATA:-.gpu/data}
mkdir -p "$OUT" "$W/logs" "$W/results" "$W/pack"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    2>/dev/null && export PYTHONPATH=/tmp/site:$PWD || exit 1
else
  export PYTHONPATH=$PWD
fi
PY=${PY:-python3}
left() { echo $((BUDGET - ($(date +%s) - START))); }
log() { echo "[$(( $(date +%s) - START ))s] $*" | tee -a "$W/logs/session.log"; }
pack() {
  $PY -c "
import sys, torch
from textdiffusion.checkpoint import load_pretrained, save_pretrained
p = load_pretrained(sys.argv[1])
save_pretrained(p.model, p.tokenizer, sys.argv[2], config=p.config, dtype=torch.bfloat16)
" "$1" "$W/pack/$2" && tar -C "$W/pack" -cf "$W/pack/$2.tar" "$2" && split -b 15M -d "$W/pack/$2.tar" "$OUT/$2.tar.part"
}
