"""Packing documents into fixed-length training sequences, with a resumable, rank-aware batch order."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np


def pack_documents(documents: Iterable[list[int]], *, eos_id: int) -> np.ndarray:
    """Concatenate token lists into one stream, an `eos_id` after each document.

    Returns:
        int32 array (N,), the token stream.
    """
    pieces = []
    eos = np.array([eos_id], dtype=np.int32)
    for ids in documents:
        if ids:
            pieces.append(np.asarray(ids, dtype=np.int32))
            pieces.append(eos)
    if not pieces:
        return np.zeros(0, dtype=np.int32)
    return np.concatenate(pieces)


def split_stream(
    tokens: np.ndarray, *, valid_fraction: float, seq_len: int
) -> tuple[np.ndarray, np.ndarray]:
    """Hold out the tail of the stream for validation (at least one sequence when the fraction is > 0)."""
    if valid_fraction <= 0:
        return tokens, tokens[:0]
    n_valid = max(seq_len, int(len(tokens) * valid_fraction))
    if len(tokens) - n_valid < seq_len:
        raise ValueError(
            f"{len(tokens)} tokens are too few to hold out {n_valid} for validation and still train on "
            f"sequences of {seq_len}; add data, lower --seq-len or --valid-fraction"
        )
    return tokens[:-n_valid], tokens[-n_valid:]


def chunk_stream(tokens: np.ndarray, seq_len: int) -> np.ndarray:
    """Non-overlapping windows (n, seq_len) over the stream; the shorter tail is dropped."""
    n = len(tokens) // seq_len
    return tokens[: n * seq_len].reshape(n, seq_len)  # (n, seq_len)


class EpochStream:
    """What the training streams share: the batch placement (batch size, this rank's slice) and the position
    (epoch, position) of a stream whose order each epoch is drawn from (seed, epoch), saved and restored exactly
    (`_start_epoch` rebuilds that epoch's order)."""

    def __init__(self, *, batch_size: int, seed: int, rank: int, world_size: int) -> None:
        """Each of `world_size` ranks keeps its slice (`rank`) of every global batch of `batch_size`."""
        if batch_size % world_size:
            raise ValueError(f"batch size {batch_size} is not divisible by {world_size} processes")
        self.batch_size, self.seed, self.rank, self.world_size = batch_size, seed, rank, world_size
        self.epoch, self.position = 0, 0

    def _start_epoch(self, epoch: int) -> None:
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "position": self.position, "seed": self.seed}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epoch, self.position, self.seed = (
            int(state["epoch"]),
            int(state["position"]),
            int(state["seed"]),
        )
        self._start_epoch(self.epoch)

    def close(self) -> None:
        pass


class BatchStream(EpochStream):
    """Random fixed-length windows of a token stream, epoch by epoch, reproducible and resumable.

    Each epoch starts the window grid at a random offset (so windows straddle different boundaries every epoch) and
    shuffles the windows. `state_dict()` records (epoch, position), enough to continue exactly where a run
    stopped. With `world_size` > 1 every rank draws the same global batch and keeps its own slice.
    """

    def __init__(
        self,
        tokens: np.ndarray,
        *,
        seq_len: int,
        batch_size: int,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if len(tokens) < 2 * seq_len:
            raise ValueError(
                f"{len(tokens)} training tokens are too few for sequences of {seq_len}; "
                "add data or lower --seq-len"
            )
        n_windows = (len(tokens) - seq_len) // seq_len
        if n_windows < batch_size:
            raise ValueError(
                f"{len(tokens)} training tokens make only {n_windows} sequences of {seq_len}, fewer than a batch "
                f"of {batch_size}; add data or lower --batch-size / --seq-len"
            )
        super().__init__(batch_size=batch_size, seed=seed, rank=rank, world_size=world_size)
        self.tokens, self.seq_len = tokens, seq_len
        self._order: np.ndarray | None = None
        self._offset = 0

    def _start_epoch(self, epoch: int) -> None:
        rng = np.random.default_rng([self.seed, epoch])
        self._offset = int(rng.integers(0, self.seq_len))
        n_windows = (len(self.tokens) - self._offset) // self.seq_len
        self._order = rng.permutation(n_windows)

    def next_batch(self) -> np.ndarray:
        """This rank's slice of the next global batch: int64 (batch_size // world_size, seq_len)."""
        if self._order is None:
            self._start_epoch(self.epoch)
        assert self._order is not None
        if self.position + self.batch_size > len(self._order):
            self.epoch, self.position = self.epoch + 1, 0
            self._start_epoch(self.epoch)
            assert self._order is not None
        windows = self._order[self.position : self.position + self.batch_size][
            self.rank :: self.world_size
        ]
        self.position += self.batch_size
        starts = self._offset + windows * self.seq_len
        index = starts[:, None] + np.arange(self.seq_len)[None, :]  # (b, seq_len)
        return self.tokens[index].astype(np.int64)
