"""Started by torchrun from test_distributed.py: train a tiny model, then every rank dumps its parameters."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from textdiffusion.config import DataConfig, ModelConfig, TrainConfig
from textdiffusion.training import build_trainer, distributed

torch.set_num_threads(1)
data, out, parallel = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
trainer = build_trainer(
    DataConfig(data=(data,), valid_fraction=0.05, seq_len=32),
    TrainConfig(
        steps=6,
        batch_size=8,
        lr=1e-3,
        warmup_steps=2,
        eval_every=0,
        save_every=6,
        log_every=2,
        ema_decay=0.0,
        device="cpu",
        parallel=parallel,
    ),
    out=out,
    model=ModelConfig(n_layers=2, n_heads=2, dim=32, max_len=32),
    progress=False,
)
state = trainer._full_state()  # a collective under FSDP
rank = trainer.info.rank
trainer.run()
final = trainer._full_state() if parallel == "ddp" else None
if parallel == "ddp":
    torch.save(final, out / f"rank{rank}.pt")
else:
    torch.save(state, out / f"rank{rank}.pt")
distributed.cleanup()
