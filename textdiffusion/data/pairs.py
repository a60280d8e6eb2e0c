"""Sequence-to-sequence pairs (noisy -> clean) for conditional diffusion: text chunking, padding, and a resumable,
optionally multi-process stream of corrupted pairs made on the fly from clean text.

Layout of one pair: the source ids are the conditioning prefix (never noised); the target is the clean ids followed
by PAD tokens up to `target_length(len(source))`, so the model also decides where the text ends. Positions beyond that
length (batch padding) are hidden by the attention mask.
"""

from __future__ import annotations

import math
import random
import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from textdiffusion.data.corruption import WORD_RE, Corruptor

SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'A-Z(])")


def target_length(n_source: int) -> int:
    """Target positions for a source of `n_source` tokens: room for insertions, the rest learnt as PAD."""
    return n_source + n_source // 8 + 4


def chunk_text(text: str, max_chars: int) -> list[str]:
    """Cut `text` into pieces of at most `max_chars` at whitespace (a longer word is cut hard); "".join == text."""
    pieces: list[str] = []
    while len(text) > max_chars:
        cut = text.rfind(" ", 0, max_chars)
        cut = max_chars if cut <= 0 else cut + 1  # the space stays with the left piece
        pieces.append(text[:cut])
        text = text[cut:]
    if text:
        pieces.append(text)
    return pieces


def sentences_from_text(text: str, *, max_chars: int = 120, min_chars: int = 8) -> list[str]:
    """Sentences (chunked to `max_chars`) of hard-wrapped prose: paragraphs are joined, then split at sentence ends."""
    out: list[str] = []
    for paragraph in re.split(r"\n\s*\n", text):
        flat = " ".join(paragraph.split())
        for sentence in SENTENCE_END.split(flat):
            for piece in chunk_text(sentence, max_chars):
                piece = piece.strip()
                if len(piece) >= min_chars:
                    out.append(piece)
    return out


def word_counts(sentences: Sequence[str]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for sentence in sentences:
        counts.update(m.group(0) for m in WORD_RE.finditer(sentence))
    return counts


def pad_pairs(
    sources: Sequence[Sequence[int]], targets: Sequence[Sequence[int]], *, pad_id: int
) -> dict[str, np.ndarray]:
    """Batch arrays: prefix (B, Lp) + prefix_mask, target (B, Lt) with learnt PADs + target_mask."""
    B = len(sources)
    lp = max(len(s) for s in sources)
    lengths = [target_length(len(s)) for s in sources]
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
    return {
        "prefix": prefix,
        "prefix_mask": prefix_mask,
        "target": target,
        "target_mask": target_mask,
    }


# -- on-the-fly corruption ----------------------------------------------------------------------------------------
_WORKER: dict[str, Any] = {}


def _worker_state(
    sentences, words, weights, corruptor, word_fraction, word_clean_rate
) -> dict[str, Any]:
    return dict(
        sentences=sentences,
        words=words,
        cum=np.cumsum(weights) if len(words) else None,
        corruptor=corruptor,
        word_fraction=word_fraction,
        word_clean_rate=word_clean_rate,
    )


def _init_worker(*args) -> None:
    _WORKER.update(_worker_state(*args))


def _make_chunk(
    key: tuple[int, int, int], state: dict[str, Any] | None = None
) -> list[tuple[str, str]]:
    """`size` (noisy, clean) string pairs, a pure function of (seed, index): workers may run in any order."""
    seed, index, size = key
    w = (
        state if state is not None else _WORKER
    )  # in a worker process, the state its initializer stored
    rng = random.Random(f"{seed}:{index}")
    pairs = []
    for _ in range(size):
        if w["cum"] is not None and rng.random() < w["word_fraction"]:
            word = w["words"][
                int(np.searchsorted(w["cum"], rng.random() * w["cum"][-1], side="right"))
            ]
            noisy = (
                word
                if rng.random() < w["word_clean_rate"]
                else w["corruptor"].corrupt_word(word, rng=rng)
            )
            pairs.append((noisy, word))
        else:
            clean = w["sentences"][rng.randrange(len(w["sentences"]))]
            pairs.append((w["corruptor"](clean, rng=rng), clean))
    return pairs


class CorruptionPairStream:
    """Batches of (corrupted, clean) pairs made from clean sentences and words, reproducible and resumable.

    Each chunk of `batch_size * pool` pairs is a pure function of (seed, chunk index); it is tokenized, sorted by
    length into batches (little padding) and the batches shuffled. With `workers` > 0, chunks are corrupted in
    worker processes ahead of training. `state_dict()` holds (chunk, batch) so a resumed run sees the same batches.

    Args:
        sentences: clean training sentences.
        tokenizer: the model's tokenizer.
        corruptor: the noise model.
        batch_size: global batch size; each rank keeps its slice.
        word_fraction: share of pairs that are single words (misspelled with `corrupt_word`).
        word_clean_rate: share of those words left correct (the model must leave correct words alone).
        max_tokens: the model's context; a pair whose source and target would not fit becomes a copy.
    """

    def __init__(
        self,
        sentences: Sequence[str],
        *,
        tokenizer,
        corruptor: Corruptor,
        batch_size: int,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        word_fraction: float = 0.3,
        word_clean_rate: float = 0.25,
        workers: int = 0,
        pool: int = 16,
        max_tokens: int | None = None,
    ) -> None:
        if not sentences:
            raise ValueError("no clean sentences to corrupt")
        if batch_size % world_size:
            raise ValueError(f"batch size {batch_size} is not divisible by {world_size} processes")
        counts = word_counts(sentences)
        words = sorted(w for w, c in counts.items() if c >= 2 or len(counts) < 1000)
        weights = np.array(
            [math.sqrt(counts[w]) for w in words], dtype=np.float64
        )  # rare words matter too
        self._init_args = (
            list(sentences),
            words,
            weights,
            corruptor,
            word_fraction,
            word_clean_rate,
        )
        self.tokenizer = tokenizer
        self.batch_size, self.pool = batch_size, pool
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.workers = workers
        self.max_tokens = max_tokens
        self.chunk, self.position = 0, 0
        self._batches: list[dict[str, np.ndarray]] = []
        self._pool = None
        self._pending: dict[int, Any] = {}
        self._state = _worker_state(*self._init_args) if workers == 0 else None

    def _submit(self, index: int) -> None:
        if index not in self._pending:
            key = (self.seed, index, self.batch_size * self.pool)
            self._pending[index] = self._pool.apply_async(_make_chunk, (key,))

    def _pairs(self, index: int) -> list[tuple[str, str]]:
        if self.workers == 0:
            return _make_chunk((self.seed, index, self.batch_size * self.pool), self._state)
        if self._pool is None:
            import multiprocessing as mp

            self._pool = mp.get_context("fork").Pool(self.workers, _init_worker, self._init_args)
        for ahead in range(index, index + 2 * self.workers):  # keep every worker busy
            self._submit(ahead)
        return self._pending.pop(index).get()

    def _plan_chunk(self) -> None:
        pairs = self._pairs(self.chunk)
        noisy = self.tokenizer.encode_batch([p[0] for p in pairs])
        clean = self.tokenizer.encode_batch([p[1] for p in pairs])
        for i in range(len(pairs)):
            fits = (
                not self.max_tokens
                or len(noisy[i]) + target_length(len(noisy[i])) <= self.max_tokens
            )
            if not fits or len(clean[i]) > target_length(len(noisy[i])):
                noisy[i] = clean[
                    i
                ]  # the corruption does not fit (context, or too many deletions): teach a copy
        order = sorted(range(len(pairs)), key=lambda i: (len(noisy[i]), i))
        batches = []
        for start in range(0, len(order), self.batch_size):
            index = order[start : start + self.batch_size][self.rank :: self.world_size]
            sources = [noisy[i] for i in index]
            targets = [
                clean[i] + [self.tokenizer.pad_id] * target_length(len(noisy[i])) for i in index
            ]
            batches.append(pad_pairs(sources, targets, pad_id=self.tokenizer.pad_id))
        random.Random(f"{self.seed}:{self.chunk}:order").shuffle(batches)
        self._batches = batches

    def next_batch(self) -> dict[str, np.ndarray]:
        if not self._batches:
            self._plan_chunk()
        if self.position >= len(self._batches):
            self.chunk, self.position = self.chunk + 1, 0
            self._plan_chunk()
        batch = self._batches[self.position]
        self.position += 1
        return batch

    def state_dict(self) -> dict[str, Any]:
        return {"chunk": self.chunk, "position": self.position, "seed": self.seed}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.chunk, self.position, self.seed = (
            int(state["chunk"]),
            int(state["position"]),
            int(state["seed"]),
        )
        self._pending.clear()
        self._plan_chunk()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.terminate()
            self._pool = None
