"""Sequence-to-sequence pairs (noisy -> clean) for conditional diffusion: text chunking, padding, and a resumable,
optionally multi-process stream of corrupted pairs made on the fly from clean text.

Layout of one pair: the source ids are the conditioning prefix (never noised); the target is the clean ids followed
by PAD tokens up to `target_length(len(source))`, so the model also decides where the text ends. Positions beyond that
length (batch padding) are hidden by the attention mask.
"""

from __future__ import annotations

import dataclasses
import math
import random
import re
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from textdiffusion.data.corpus import DataError
from textdiffusion.data.corruption import WORD_RE, Corruptor
from textdiffusion.data.packing import EpochStream

WORD_SAMPLING_POWER = 0.5
"""Single-word pairs draw their word with probability proportional to count**WORD_SAMPLING_POWER: rare words are
seen more often than in text (and a lexicon-guided corrector divides this prior back out)."""

SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'A-Z(])")


def target_length(n_source: int) -> int:
    """Target positions for a source of `n_source` tokens: room for insertions, the rest learnt as PAD."""
    return n_source + n_source // 8 + 4


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


_CLITIC = re.compile(r"(?<=\w)(n't|'s|'re|'ve|'ll|'d|'m)\b", re.IGNORECASE)
_PUNCT = re.compile(r"([.,!?;:()\"])")


def split_tokens(text: str) -> str:
    """Penn-Treebank-like spacing, as in tokenised corpora (JFLEG): "I don't know, see." -> "I do n't know , see ."."""
    text = _CLITIC.sub(r" \1", text)
    return " ".join(_PUNCT.sub(r" \1 ", text).split())


def corpus_word_counts(sentences: Sequence[str]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for sentence in sentences:
        counts.update(m.group(0) for m in WORD_RE.finditer(sentence))
    return counts


def pad_pairs(
    sources: Sequence[Sequence[int]],
    targets: Sequence[Sequence[int]],
    *,
    pad_id: int,
    length: Callable[[int], int] = target_length,
) -> dict[str, np.ndarray]:
    """Batch arrays: prefix (B, Lp) + prefix_mask, target (B, Lt) with learnt PADs + target_mask; a target has
    `length(len(source))` positions."""
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
    return {
        "prefix": prefix,
        "prefix_mask": prefix_mask,
        "target": target,
        "target_mask": target_mask,
    }


# -- on-the-fly corruption ----------------------------------------------------------------------------------------
@dataclasses.dataclass
class _Plan:
    """Everything that makes one chunk of batches: a worker process holds one (inherited when it forks)."""

    sentences: list[str]
    words: list[str]
    cum: np.ndarray | None  # cumulative sampling weights of `words`
    corruptor: Corruptor
    word_fraction: float
    word_clean_rate: float
    tokenized_rate: float
    tokenizer: Any
    batch_size: int
    pool: int
    rank: int
    world_size: int
    max_tokens: int | None


_WORKER: dict[str, _Plan] = {}


def _init_worker(plan: _Plan) -> None:
    _WORKER["plan"] = plan


def _make_pairs(seed: int, index: int, plan: _Plan) -> list[tuple[str, str]]:
    """`batch_size * pool` (noisy, clean) string pairs, a pure function of (seed, index)."""
    rng = random.Random(f"{seed}:{index}")
    pairs = []
    for _ in range(plan.batch_size * plan.pool):
        if plan.cum is not None and rng.random() < plan.word_fraction:
            u = rng.random() * plan.cum[-1]
            word = plan.words[
                min(int(np.searchsorted(plan.cum, u, side="right")), len(plan.words) - 1)
            ]
            clean_word = rng.random() < plan.word_clean_rate
            pairs.append((word if clean_word else plan.corruptor.corrupt_word(word, rng=rng), word))
        else:
            clean = plan.sentences[rng.randrange(len(plan.sentences))]
            if plan.tokenized_rate and rng.random() < plan.tokenized_rate:
                clean = split_tokens(clean)
            pairs.append((plan.corruptor(clean, rng=rng), clean))
    return pairs


def _make_batches(seed: int, index: int, plan: _Plan | None = None) -> list[dict[str, np.ndarray]]:
    """Chunk `index` as this rank's padded batches, sorted by length (little padding), then shuffled; a pure
    function of (seed, index), so worker processes may make chunks in any order."""
    plan = (
        plan if plan is not None else _WORKER["plan"]
    )  # in a worker, the plan its initializer stored
    pairs = _make_pairs(seed, index, plan)
    tokenizer = plan.tokenizer
    noisy = tokenizer.encode_batch([p[0] for p in pairs])
    clean = tokenizer.encode_batch([p[1] for p in pairs])
    limit = plan.max_tokens or float("inf")
    for i in range(len(pairs)):
        n = len(noisy[i])
        if n + target_length(n) > limit or len(clean[i]) > target_length(n):
            # the corruption does not fit (context, or too many deletions): teach a copy, cut to fit the context
            keep = len(clean[i])
            while keep + target_length(keep) > limit:
                keep -= 1
            noisy[i] = clean[i] = clean[i][:keep]
    order = sorted(range(len(pairs)), key=lambda i: (len(noisy[i]), i))
    batches = []
    for start in range(0, len(order), plan.batch_size):
        index_ = order[start : start + plan.batch_size][plan.rank :: plan.world_size]
        batches.append(
            pad_pairs(
                [noisy[i] for i in index_], [clean[i] for i in index_], pad_id=tokenizer.pad_id
            )
        )
    random.Random(f"{seed}:{index}:order").shuffle(batches)
    return batches


def read_word_counts(path: str | Path) -> dict[str, float]:
    """A word list: one word per line, optionally followed by a count (e.g. symspellpy's frequency dictionary);
    words without a count weigh 1."""
    counts: dict[str, float] = {}
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        try:
            count = float(fields[1]) if len(fields) > 1 else 1.0
        except ValueError:
            raise DataError(f"{path}:{number}: expected 'word [count]', got {line!r}") from None
        if count > 0:
            counts[fields[0]] = counts.get(fields[0], 0.0) + count
    if not counts:
        raise DataError(f"{path} holds no words")
    return counts


class CorruptionPairStream:
    """Batches of (corrupted, clean) pairs made from clean sentences and words, reproducible and resumable.

    Each chunk of `batch_size * pool` pairs is a pure function of (seed, chunk index); it is tokenized, sorted by
    length into batches (little padding) and the batches shuffled. With `workers` > 0, whole chunks (corruption,
    tokenization and padding) are made in worker processes ahead of training. `state_dict()` holds (chunk, batch)
    so a resumed run sees the same batches.

    Args:
        sentences: clean training sentences.
        tokenizer: the model's tokenizer.
        corruptor: the noise model.
        batch_size: global batch size; each rank keeps its slice.
        word_fraction: share of pairs that are single words (misspelled with `corrupt_word`).
        word_clean_rate: share of those words left correct (the model must leave correct words alone).
        tokenized_rate: share of sentences given tokenised spacing first (`split_tokens`), so that the model
            keeps the spacing of tokenised text.
        word_counts: the single words to draw, with their counts (default: the words of `sentences` seen at least
            twice); a word is drawn with probability proportional to count**WORD_SAMPLING_POWER (the square
            root), so that rare words are learnt too.
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
        tokenized_rate: float = 0.0,
        word_counts: dict[str, float] | None = None,
        workers: int = 0,
        pool: int = 16,
        max_tokens: int | None = None,
    ) -> None:
        if not sentences:
            raise ValueError("no clean sentences to corrupt")
        if batch_size % world_size:
            raise ValueError(f"batch size {batch_size} is not divisible by {world_size} processes")
        if word_counts is None:
            counts = corpus_word_counts(sentences)
            word_counts = {w: c for w, c in counts.items() if c >= 2 or len(counts) < 1000}
        words = sorted(word_counts)
        weights = np.array([word_counts[w] for w in words], dtype=np.float64) ** WORD_SAMPLING_POWER
        self.plan = _Plan(
            sentences=list(sentences),
            words=words,
            cum=np.cumsum(weights) if words else None,
            corruptor=corruptor,
            word_fraction=word_fraction,
            word_clean_rate=word_clean_rate,
            tokenized_rate=tokenized_rate,
            tokenizer=tokenizer,
            batch_size=batch_size,
            pool=pool,
            rank=rank,
            world_size=world_size,
            max_tokens=max_tokens,
        )
        self.seed, self.workers = seed, workers
        self.chunk, self.position = 0, 0
        self._batches: list[dict[str, np.ndarray]] = []
        self._pool = None
        self._pending: dict[int, Any] = {}

    def _chunk_batches(self, index: int) -> list[dict[str, np.ndarray]]:
        if self.workers == 0:
            return _make_batches(self.seed, index, self.plan)
        if self._pool is None:
            import multiprocessing as mp

            self._pool = mp.get_context("fork").Pool(self.workers, _init_worker, (self.plan,))
        for ahead in range(index, index + 2 * self.workers):  # keep every worker busy
            if ahead not in self._pending:
                self._pending[ahead] = self._pool.apply_async(_make_batches, (self.seed, ahead))
        return self._pending.pop(index).get()

    def next_batch(self) -> dict[str, np.ndarray]:
        if not self._batches:
            self._batches = self._chunk_batches(self.chunk)
        if self.position >= len(self._batches):
            self.chunk, self.position = self.chunk + 1, 0
            self._batches = self._chunk_batches(self.chunk)
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
        self._batches = self._chunk_batches(self.chunk)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.terminate()
            self._pool = None


# -- fixed pairs (style transfer) ---------------------------------------------------------------------------------
class ParallelPairStream(EpochStream):
    """Batches of fixed (source, target) token pairs, reproducible and resumable.

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
    ) -> None:
        if not pairs:
            raise ValueError("no training pairs")
        super().__init__(batch_size=batch_size, seed=seed, rank=rank, world_size=world_size)
        self.pairs, self.pad_id, self.length, self.pool = list(pairs), pad_id, length, pool
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
        )

    def _start_epoch(self, epoch: int) -> None:
        self._batches = self._epoch_batches(epoch)


# -- fixed-length targets with per-item conditioning (captions, labelled lines) -------------------------------------
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
