"""Training pairs of style transfer: the target length rule of aligned pairs, their resumable batch stream, and the
labelled lines of attribute transfer."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence

import numpy as np

from textdiffusion.data.packing import EpochStream
from textdiffusion.data.seq2seq import TargetStream, pad_pairs


def growth(n_tokens: int) -> int:
    """Positions after a line of `n_tokens` that an attribute rewrite may fill (it may also leave them PAD)."""
    return n_tokens // 4 + 2


@dataclasses.dataclass(frozen=True)
class LengthRule:
    """Target positions for a source of n tokens: ceil(ratio * n) + slack (the rest is learnt PAD). Restyled text
    can be longer than its source, so the ratio is measured on the training pairs (`fit`)."""

    ratio: float = 1.0
    slack: int = 16

    def __call__(self, n_source: int) -> int:
        return math.ceil(self.ratio * n_source) + self.slack

    @classmethod
    def fit(
        cls,
        pairs: Sequence[tuple[Sequence[int], Sequence[int]]],
        *,
        quantile: float = 0.9,
        slack: int = 16,
    ) -> LengthRule:
        """The smallest ratio (a multiple of 0.05, at least 1) that fits `quantile` of the pairs. Not all of them:
        loosely aligned corpora hold a few targets many times longer than their sources, and fitting those would
        make every target much longer than it needs to be (on the modern -> Shakespeare pairs the fit is 1.10 x,
        as `train --task style` logs it)."""
        ratios = sorted((len(t) - slack) / max(1, len(s)) for s, t in pairs)
        ratio = ratios[min(len(ratios) - 1, int(quantile * len(ratios)))] if ratios else 1.0
        return cls(ratio=max(1.0, math.ceil(ratio * 20) / 20), slack=slack)


class ParallelPairStream(EpochStream):
    """Batches of fixed (source, target) token pairs, reproducible and resumable; with `prior`, the targets are
    canvases of a source-start model and each batch holds its sources' prior canvases (data/edits.py).

    Each epoch visits every pair once in an order drawn from (seed, epoch); pools of `pool` batches are sorted by
    source length before they are cut into batches (little padding), and the batches of an epoch are shuffled.
    `state_dict()` holds (epoch, batch) so a resumed run sees the same batches. Each rank keeps its slice of every
    global batch.
    """

    def __init__(
        self,
        pairs: Sequence[tuple[Sequence[int], Sequence[int]]],
        *,
        pad_id: int,
        length: Callable[[int], int],
        batch_size: int,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        pool: int = 16,
        prior: Callable[[Sequence[int]], Sequence[int]] | None = None,
    ) -> None:
        if not pairs:
            raise ValueError("no training pairs")
        super().__init__(batch_size=batch_size, seed=seed, rank=rank, world_size=world_size)
        self.pairs, self.pad_id, self.length, self.pool = list(pairs), pad_id, length, pool
        self.prior = prior
        self._start_epoch(0)

    def _epoch_batches(self, epoch: int) -> list[np.ndarray]:
        rng = np.random.default_rng([self.seed, epoch])
        order = rng.permutation(len(self.pairs))
        if len(order) < self.batch_size:  # fewer pairs than one batch: repeat them
            order = np.resize(order, self.batch_size)
        # whole batches only: the remainder waits for the next epoch's order
        n = len(order) // self.batch_size * self.batch_size
        size = self.batch_size * self.pool
        batches = []
        for start in range(0, n, size):
            chunk = sorted(order[start : min(start + size, n)], key=lambda i: len(self.pairs[i][0]))
            batches += [
                np.array(chunk[i : i + self.batch_size])
                for i in range(0, len(chunk), self.batch_size)
            ]
        return [batches[i] for i in rng.permutation(len(batches))]

    def next_batch(self) -> dict[str, np.ndarray]:
        if self.position >= len(self._batches):
            self.epoch, self.position = self.epoch + 1, 0
            self._start_epoch(self.epoch)
        index = self._batches[self.position]
        self.position += 1
        per_rank = self.batch_size // self.world_size
        mine = index[self.rank * per_rank : (self.rank + 1) * per_rank]
        return pad_pairs(
            [self.pairs[i][0] for i in mine],
            [self.pairs[i][1] for i in mine],
            pad_id=self.pad_id,
            length=self.length,
            prior=self.prior,
        )

    def _start_epoch(self, epoch: int) -> None:
        self._batches = self._epoch_batches(epoch)


class LabelStream(TargetStream):
    """Batches of labelled lines: a `TargetStream` whose items are (label, ids), with a label int64 (b,) per row,
    replaced by the null label `n_labels` with probability `dropout` (so that the model also learns the
    unconditional distribution that classifier-free guidance needs)."""

    def __init__(self, items, *, n_labels: int, dropout: float = 0.0, **kwargs) -> None:
        super().__init__(items, **kwargs)
        self.n_labels, self.dropout = n_labels, dropout

    def conditioning(self, keys: list[int], rng: np.random.Generator) -> dict[str, np.ndarray]:
        labels = np.asarray(keys, dtype=np.int64)
        return {"label": np.where(rng.random(len(keys)) < self.dropout, self.n_labels, labels)}
