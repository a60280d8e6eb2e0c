"""Sequence-to-sequence batches shared by the conditional tasks: the source is the conditioning prefix (never
noised); the target is its ids followed by PAD tokens up to a length given by the task's rule, so the model also
decides where the text ends. Positions beyond that length (batch padding) are hidden by the attention mask.

`TargetStream` serves fixed-length targets with per-item conditioning (captions, labelled lines).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from textdiffusion.data.packing import EpochStream


def chunk_text(text: str, max_chars: int) -> list[str]:
    """Cut `text` into pieces of at most `max_chars` at whitespace (a longer word is cut hard); "".join == text."""
    pieces: list[str] = []
    start = 0  # an offset, not `text = text[cut:]`: copying the rest at every cut made long lines quadratic
    while len(text) - start > max_chars:
        cut = text.rfind(" ", start, start + max_chars)
        cut = start + max_chars if cut <= start else cut + 1  # the space stays with the left piece
        pieces.append(text[start:cut])
        start = cut
    if start < len(text):
        pieces.append(text[start:])
    return pieces


def pad_pairs(
    sources: Sequence[Sequence[int]],
    targets: Sequence[Sequence[int]],
    *,
    pad_id: int,
    length: Callable[[int], int],
    prior: Callable[[Sequence[int]], Sequence[int]] | None = None,
) -> dict[str, np.ndarray]:
    """Batch arrays: prefix (B, Lp) + prefix_mask, target (B, Lt) with learnt PADs + target_mask; a target has
    `length(len(source))` positions. `prior`: a source-start model's canvas of each source (data/edits.py), batched
    as "prior" (B, Lt) beside its target canvas."""
    B = len(sources)
    lp = max(len(s) for s in sources)
    lengths = [length(len(s)) for s in sources]
    lt = max(lengths)
    prefix = np.full((B, lp), pad_id, dtype=np.int64)
    prefix_mask = np.zeros((B, lp), dtype=bool)
    target = np.full((B, lt), pad_id, dtype=np.int64)
    target_mask = np.zeros((B, lt), dtype=bool)
    for i, (src, tgt) in enumerate(zip(sources, targets)):
        prefix[i, : len(src)] = src
        prefix_mask[i, : len(src)] = True
        tgt = tgt[: lengths[i]]
        target[i, : len(tgt)] = tgt
        target_mask[i, : lengths[i]] = True
    batch = {
        "prefix": prefix,
        "prefix_mask": prefix_mask,
        "target": target,
        "target_mask": target_mask,
    }
    if prior is not None:
        batch["prior"] = np.full((B, lt), pad_id, dtype=np.int64)
        for i, src in enumerate(sources):
            canvas = prior(src)
            batch["prior"][i, : len(canvas)] = canvas
    return batch


class TargetStream(EpochStream):
    """Batches of items (key, target ids), reproducible and resumable; the key says what conditions the target.

    Each epoch visits every item once in an order drawn from (seed, epoch). Batches are dicts: target int64
    (b, length) with trailing PADs, target_mask bool (b, length) all True (the PADs are learnt: they end the text),
    and the arrays that `conditioning(keys, rng)` makes of the rows' keys. Each rank keeps its slice of every global
    batch; `state_dict()` holds (epoch, batch).
    """

    def __init__(
        self,
        items: Sequence[tuple[Any, Sequence[int]]],
        *,
        length: int,
        pad_id: int,
        batch_size: int,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if not items:
            raise ValueError("no training items")
        super().__init__(batch_size=batch_size, seed=seed, rank=rank, world_size=world_size)
        self.items, self.length, self.pad_id = list(items), length, pad_id
        self._start_epoch(0)

    def conditioning(self, keys: list[Any], rng: np.random.Generator) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def _epoch_order(self, epoch: int) -> np.ndarray:
        order = np.random.default_rng([self.seed, epoch]).permutation(len(self.items))
        if len(order) < self.batch_size:  # fewer items than one batch: repeat them
            order = np.resize(order, self.batch_size)
        return order[: len(order) // self.batch_size * self.batch_size]  # whole batches only

    def next_batch(self) -> dict[str, np.ndarray]:
        if self.position * self.batch_size >= len(self._order):
            self.epoch, self.position = self.epoch + 1, 0
            self._start_epoch(self.epoch)
        start = self.position * self.batch_size
        rng = np.random.default_rng([self.seed, self.epoch, self.position, 1])
        self.position += 1
        per_rank = self.batch_size // self.world_size
        index = self._order[start : start + self.batch_size]
        # every rank draws the whole batch's randomness, so a row's draws do not depend on the rank count
        extras = self.conditioning([self.items[i][0] for i in index], rng)
        mine = slice(self.rank * per_rank, (self.rank + 1) * per_rank)
        targets = np.full((per_rank, self.length), self.pad_id, dtype=np.int64)
        for row, i in enumerate(index[mine]):
            ids = list(self.items[i][1])[: self.length]
            targets[row, : len(ids)] = ids
        return {
            "target": targets,
            "target_mask": np.ones_like(targets, dtype=bool),
            **{k: v[mine] for k, v in extras.items()},
        }

    def _start_epoch(self, epoch: int) -> None:
        self._order = self._epoch_order(epoch)
