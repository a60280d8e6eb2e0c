"""Unconditional generation and prompt completion: mask everything after the (optional) prompt, then sample."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable

import torch

from textdiffusion.samplers.block import check_sampling_memory
from textdiffusion.tasks.pipeline import (
    DiffusionPipeline,
    InputError,
    check_text,
    tokenizer_coverage,
)

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class GenerationOutput:
    texts: list[str]
    ids: torch.Tensor
    """int64 (n, length)."""
    seconds: float
    network_calls: int
    warnings: list[str] = dataclasses.field(default_factory=list)


class GenerationPipeline(DiffusionPipeline):
    """`pipe(n, length=256, prompt=None, steps=64, seed=0)` -> GenerationOutput."""

    task = "generate"

    def __call__(
        self,
        n: int = 1,
        *,
        length: int | None = None,
        prompt: str | None = None,
        steps: int | None = None,
        sampler: str | None = None,
        temperature: float | None = None,
        top_p: float | None = None,
        threshold: float | None = None,
        seed: int | None = None,
        generator: torch.Generator | None = None,
        callback: Callable | None = None,
        **options,
    ) -> GenerationOutput:
        length = self.max_len if length is None else length
        if n <= 0:
            raise InputError(f"n must be positive, got {n}")
        block_size = self.model.config.block_size
        if not 0 < length <= self.max_len and not (block_size and length > 0):
            raise InputError(
                f"length must be in 1..{self.max_len} (the model's context), got {length}"
            )
        # block diffusion slides its window: any length that fits in memory; and any model: any n that fits.
        # Checked before allocating (n = 10**9 texts would otherwise fail deep in torch.full)
        check_sampling_memory(self.model.config, (n, length), device=self.device)
        warnings: list[str] = []
        x_init = fixed = None
        if prompt is not None:
            check_text(prompt, what="prompt")
            ids = self.encode(prompt)
            if len(ids) >= length:
                raise InputError(
                    f"the prompt is {len(ids)} tokens long, which leaves nothing to generate in a length of "
                    f"{length} (the model's context is {self.max_len} tokens); shorten it or raise --length"
                )
            unseen = tokenizer_coverage(self.tokenizer, prompt)
            if unseen:
                warnings.append(
                    f"characters never seen in training are kept as bytes: {''.join(unseen)!r}"
                )
            x_init = torch.full((n, length), self.tokenizer.mask_id, dtype=torch.long)
            x_init[:, : len(ids)] = torch.tensor(ids)
            fixed = torch.zeros(n, length, dtype=torch.bool)
            fixed[:, : len(ids)] = True
        for message in warnings:
            logger.warning(message)
        out = self.sample(
            (n, length),
            steps=steps,
            sampler=sampler,
            temperature=temperature,
            top_p=top_p,
            threshold=threshold,
            **options,
            generator=generator if generator is not None else self.generator(seed),
            x_init=x_init,
            fixed=fixed,
            callback=callback,
        )
        return GenerationOutput(
            texts=self.decode(out.ids),
            ids=out.ids,
            seconds=out.seconds,
            network_calls=out.network_calls,
            warnings=warnings,
        )
