"""Print, as JSON, what the shipped models write for the README's examples with fixed seeds and explicit sampling
settings, so that two commits can be compared: a refactor must leave this output unchanged.

    PYTHONPATH=. HF_HUB_OFFLINE=1 python scripts/shipped_outputs.py > outputs.json
"""

from __future__ import annotations

import json

import torch

from textdiffusion.pipelines import (
    DenoisePipeline,
    GenerationPipeline,
    InfillPipeline,
    StylePipeline,
)
from textdiffusion.tasks.denoise import Lexicon

torch.set_num_threads(1)
out = {}
generate = GenerationPipeline.from_pretrained("shakespeare-char")
out["generate"] = generate(2, length=96, steps=16, seed=0, sampler="cached").texts
infill = InfillPipeline.from_pretrained("shakespeare-char")
out["infill"] = infill("KING: ___ my lord", blank_length=12, seed=0, sampler="cached").text
out["infill_auto"] = infill("ROMEO: ___ love", seed=0, sampler="cached").text
fixer = DenoisePipeline.from_pretrained("typo-fixer")
out["denoise"] = fixer(["recieve", "Thsi is a tset."], lexicon=Lexicon()).texts
out["denoise_lines"] = fixer(["Thsi sentense has typos"], lexicon=None).texts
style = StylePipeline.from_pretrained("yelp-sentiment")
out["style"] = style(["the food was cold ."], to="positive").texts
print(json.dumps(out, indent=1))
