"""The sampling half of a search for a conditional task model: the best trial's model rewrites its validation sources
with each number of refinement steps, and the task's metric against the references picks the number (the training
half ranks trials by validation bits/char, which no sampling setting changes)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from textdiffusion.config import DataConfig, TrainConfig
from textdiffusion.tasks import TaskRequest, get_task

logger = logging.getLogger(__name__)

STEPS_NAME = "sampling_steps.json"
STEP_GRID = (4, 8, 16, 32, 64)


def score_steps(
    model: str | Path, data: DataConfig, config: TrainConfig, *, steps=STEP_GRID
) -> dict[str, Any] | None:
    """{"metric", "scores" {steps: value}, "best_steps"} of the model in `model` on its task's validation pairs
    (source prefix -> target); None for a task without a sampling metric or without such pairs (language models,
    attribute transfer, captions)."""
    from textdiffusion.pipelines import pipeline

    pipe = pipeline(model)
    task = get_task(pipe.config.task)
    if task.sampling_metric is None:
        return None
    made = task.prepare(
        TaskRequest(
            data=data,
            model=pipe.config.model,
            config=pipe.config.task_config,
            resumed=True,
            tokenizer=pipe.tokenizer,
            out=Path(model),
            seq_len=pipe.max_len,
            batch_size=config.batch_size,
            eval_batches=config.eval_batches,
            seed=config.seed,
        )
    )
    pad = pipe.tokenizer.pad_id
    sources, references, positions = [], [], {}
    for batch in made.valid.batches:
        if "prefix" not in batch:
            return None
        rows = zip(batch["prefix"], batch["prefix_mask"], batch["target"], batch["target_mask"])
        for prefix, prefix_mask, target, target_mask in rows:
            source = prefix[prefix_mask].tolist()
            sources.append(source)
            references.append([i for i in target[target_mask].tolist() if i != pad])
            positions[len(source)] = int(target_mask.sum())  # the task's length rule, as trained
    if not sources:
        return None
    metric = task.metrics[task.sampling_metric]
    refs = [[pipe.tokenizer.decode(r)] for r in references]
    scores = {}
    for n in steps:
        outputs, _ = pipe.generate_targets(
            sources, positions.__getitem__, steps=n, seed=config.seed
        )
        scores[n] = float(metric([pipe.tokenizer.decode(o) for o in outputs], refs))
        logger.info("%d sampling steps: %s %.2f", n, task.sampling_metric, scores[n])
    best = max(scores, key=lambda n: (scores[n], -n))  # ties: the cheaper sampler
    return {
        "metric": task.sampling_metric,
        "scores": scores,
        "best_steps": best,
        "model": str(model),
    }
