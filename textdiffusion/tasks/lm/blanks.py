"""Variable-length blanks by construction: training windows in which a word span is followed by learnt PADs.

A blank of unknown length is written as K positions: the missing text, then PADs up to K. A share of the training
windows is rewritten that way (text before, span + (K - len(span)) PADs, text after, cut to the window length), and
the PADs are ordinary targets of the diffusion loss; at inference a blank becomes K masks, one sampling pass fills
them and the PADs are dropped. A model noised only uniformly learns PAD from visible PADs beside it and never sees
a whole blank masked in visible context (the state infilling starts from), so a share `mask_blanks` of the blanked
windows has its blank slots masked whole, or from a random point of their text to the end (the states of a fill
written left to right, which must learn to predict PAD right after a complete span), scored by their cross-entropy
(training/objectives.py). This is the PAD-terminated variable-length target of the seq2seq tasks (DiffuSeq,
Gong et al. 2023) placed inside running text; DreamOn (Wu et al. 2025) reaches the same end with expand/delete
tokens instead of a fixed slot.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from textdiffusion.data import BatchStream, Tokenizer

SPAN_KINDS = ("core", "word", "words")
"""core: the letters of one word (no punctuation); word: one whitespace-delimited word; words: two or three."""
KIND_WEIGHTS = (0.5, 0.3, 0.2)


def token_classes(tokenizer: Tokenizer) -> tuple[np.ndarray, np.ndarray]:
    """Per vocabulary id: does it separate words (whitespace, or a special token), is it part of a word's letters
    (letters, digits, apostrophes)? Two bool arrays (V,)."""
    V = tokenizer.vocab_size
    space, letter = np.zeros(V, dtype=bool), np.zeros(V, dtype=bool)
    for i in range(V):
        if i in tokenizer.special_ids:
            space[i] = True
            continue
        text = tokenizer.decode([i])
        space[i] = not text or any(c.isspace() for c in text)
        letter[i] = bool(text) and all(c.isalnum() or c == "'" for c in text)
    return space, letter


def _runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """(start, end) of the maximal runs of True in a bool array (L,)."""
    edges = np.diff(np.concatenate([[0], flags.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist()))


def word_spans(
    window: np.ndarray, *, space: np.ndarray, letter: np.ndarray, max_blank: int
) -> dict[str, list[tuple[int, int]]]:
    """The candidate blanks of a window (L,), by kind (SPAN_KINDS): (start, end) spans of 1..max_blank tokens
    that are complete, i.e. not cut by the window's edges."""
    L = len(window)
    words = [(s, e) for s, e in _runs(~space[window]) if s > 0 and e < L]
    cores = []
    for s, e in words:
        cores += [(s + a, s + b) for a, b in _runs(letter[window[s:e]])]
    multi = [
        (words[i][0], words[j][1])
        for i in range(len(words))
        for j in (i + 1, i + 2)
        if j < len(words)
    ]
    fits = lambda spans: [(s, e) for s, e in spans if 0 < e - s <= max_blank]  # noqa: E731
    return {"core": fits(cores), "word": fits(words), "words": fits(multi)}


def blank_window(
    window: np.ndarray, spans: list[tuple[int, int]], *, max_blank: int, pad_id: int
) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Rewrite a window (L,) with each span (sorted, disjoint) followed by PADs up to `max_blank` positions, cut to
    the window length. A blank whose slot would not end inside the window is left as text.

    Returns:
        the new window (L,) and the (start, end) slot of each blank made in it.
    """
    L = len(window)
    pieces, slots, pos, prev = [], [], 0, 0
    for s, e in spans:
        start = pos + (s - prev)
        if start + max_blank > L:
            break
        pieces += [window[prev:s], window[s:e], np.full(max_blank - (e - s), pad_id, window.dtype)]
        slots.append((start, start + max_blank))
        pos, prev = start + max_blank, e
    pieces.append(window[prev:])
    return np.concatenate(pieces)[:L], slots


class BlankStream:
    """A language-model stream (BatchStream) whose windows get variable-length blanks: each window, with probability
    `blank_rate`, gets one or two word spans (SPAN_KINDS, 1..max_blank tokens) rewritten by `blank_window`.

    The draws of a batch come from a numpy Generator seeded by (seed, epoch, position, rank) of the wrapped stream
    after it made the batch, so the stream is exactly reproducible and resumes with the wrapped stream's state.
    """

    def __init__(
        self,
        windows: BatchStream,
        *,
        tokenizer: Tokenizer,
        blank_rate: float,
        max_blank: int,
        mask_blanks: float = 0.5,
    ) -> None:
        if max_blank <= 0:
            raise ValueError(f"--max-blank must be positive for blanks, got {max_blank}")
        if max_blank * 2 >= windows.seq_len:
            raise ValueError(
                f"--max-blank {max_blank} leaves too little text in windows of {windows.seq_len} tokens"
            )
        self.windows, self.blank_rate, self.max_blank = windows, blank_rate, max_blank
        self.mask_blanks = mask_blanks
        self.pad_id = tokenizer.pad_id
        self.space, self.letter = token_classes(tokenizer)

    def _rng(self) -> np.random.Generator:
        w = self.windows
        return np.random.default_rng([w.seed, w.epoch, w.position, w.rank, 0xB1A4])

    def blank(
        self, window: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, list[tuple[int, int]]]:
        """One window (L,) with one or two random blanks (unchanged when it has no candidate span), and the
        (start, end) slots of its blanks."""
        candidates = word_spans(
            window, space=self.space, letter=self.letter, max_blank=self.max_blank
        )
        chosen: list[tuple[int, int]] = []
        for _ in range(1 + int(rng.random() < 0.5)):
            kinds = [k for k in SPAN_KINDS if candidates[k]]
            if not kinds:
                break
            weights = np.array([KIND_WEIGHTS[SPAN_KINDS.index(k)] for k in kinds])
            kind = kinds[int(rng.choice(len(kinds), p=weights / weights.sum()))]
            s, e = candidates[kind][int(rng.integers(len(candidates[kind])))]
            chosen.append((s, e))
            # the next blank keeps at least one token of context from this one
            for k in SPAN_KINDS:
                candidates[k] = [(a, b) for a, b in candidates[k] if b < s or a > e]
        if not chosen:
            return window, []
        return blank_window(window, sorted(chosen), max_blank=self.max_blank, pad_id=self.pad_id)

    def next_batch(self) -> dict[str, np.ndarray]:
        """This rank's batch: "target" int64 (b, seq_len), the windows; "blanks" bool (b, seq_len), the positions
        masked whatever t: a blank slot whole, or from a random point of its text to its end."""
        batch = self.windows.next_batch()
        rng = self._rng()
        picked = rng.random(len(batch)) < self.blank_rate  # (b,)
        whole = rng.random(len(batch)) < self.mask_blanks  # (b,)
        blanks = np.zeros(batch.shape, dtype=bool)
        for row in np.flatnonzero(picked):
            batch[row], slots = self.blank(batch[row], rng)
            if whole[row]:
                for start, end in slots:
                    # half whole, half from a point of the text on: the states of a left-to-right fill, whose
                    # last is "the text so far, the rest masked", where PAD (the end) must be predicted
                    n_text = int((batch[row, start:end] != self.pad_id).sum())
                    cut = 0 if rng.random() < 0.5 else int(rng.integers(1, n_text + 1))
                    blanks[row, start + cut : end] = True
        return {"target": batch, "blanks": blanks}

    def state_dict(self) -> dict[str, Any]:
        return {"windows": self.windows.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.windows.load_state_dict(state["windows"])

    def close(self) -> None:
        self.windows.close()
