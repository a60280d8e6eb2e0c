"""Training pairs of the denoising task: clean sentences cut from text, and a resumable, optionally multi-process
stream of (corrupted, clean) pairs made on the fly. The target is the clean ids followed by PADs up to
`target_length(len(source))` (data/seq2seq.py has the layout)."""

from __future__ import annotations

import dataclasses
import random
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from textdiffusion.data.corpus import DataError
from textdiffusion.data.seq2seq import chunk_text, pad_pairs
from textdiffusion.tasks.denoise.corruption import WORD_RE, Corruptor

WORD_SAMPLING_POWER = 0.5
"""Single-word pairs draw their word with probability proportional to count**WORD_SAMPLING_POWER: rare words are
seen more often than in text (and a lexicon-guided corrector divides this prior back out)."""

SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'A-Z(])")


def target_length(n_source: int) -> int:
    """Target positions for a source of `n_source` tokens: room for insertions, the rest learnt as PAD."""
    return n_source + n_source // 8 + 4


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
                [noisy[i] for i in index_],
                [clean[i] for i in index_],
                pad_id=tokenizer.pad_id,
                length=target_length,
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
