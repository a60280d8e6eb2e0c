"""Hyperparameter search: every grid point trains, the table is ranked and saved, a divergent trial is recorded."""

from __future__ import annotations

import json
import math

from textdiffusion.checkpoint import load_pretrained
from textdiffusion.config import DataConfig, ModelConfig, TrainConfig
from textdiffusion.training.search import format_trials, search


def test_search_ranks_every_trial_and_survives_a_divergent_one(tmp_path, corpus_file):
    config = TrainConfig(
        steps=6,
        batch_size=4,
        warmup_steps=1,
        log_every=1,
        eval_every=0,
        device="cpu",
        ema_decay=0.0,
    )
    trials = search(
        DataConfig(data=(str(corpus_file),)),
        config,
        out=tmp_path / "search",
        lrs=(3e-3, 1e-5, 1e6),  # 1e6 blows the weights up: the loss becomes inf/NaN
        batch_sizes=(4,),
        model=ModelConfig(n_layers=1, n_heads=2, dim=32, max_len=32),
        progress=False,
    )
    assert [t.lr for t in trials][:2] == [3e-3, 1e-5]  # a useful rate beats a tiny one
    assert trials[0].valid_bits_per_char < trials[1].valid_bits_per_char < math.inf
    assert trials[-1].lr == 1e6 and trials[-1].error and math.isinf(trials[-1].valid_bits_per_char)
    saved = json.loads((tmp_path / "search" / "search.json").read_text())
    assert [row["lr"] for row in saved] == [t.lr for t in trials]
    assert load_pretrained(trials[0].out).config.model.dim == 32  # each trial is a loadable model
    assert "diverged" in format_trials(trials).splitlines()[-1]
