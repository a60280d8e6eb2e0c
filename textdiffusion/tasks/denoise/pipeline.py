"""Text denoising (spelling and grammar correction): the noisy text is the conditioning prefix, never noised; the
clean text is generated from all-masked target positions (followed by learnt PADs, so the length can change).

Lines are corrected independently, long ones in pieces at whitespace; what the model cannot handle is returned
unchanged, never dropped: empty lines, leading and trailing whitespace, pieces with characters the tokenizer never
saw (non-English text, stray bytes), and outputs that are not a plausible edit of the input. A model whose
config.json records the form of its training text (`text_form`: lower-cased, tokenised) corrects each line in that
form, and the correction is restored to the line's casing and spacing (`textdiffusion.data.textform`); the lexicon
path corrects words and keeps their casing itself.
"""

from __future__ import annotations

import dataclasses
import math
import time
import zlib
from collections.abc import Callable, Sequence

import torch

from textdiffusion.config import DenoiseConfig
from textdiffusion.data.seq2seq import chunk_text, pad_pairs
from textdiffusion.data.textform import normalise, restore
from textdiffusion.networks import Cond
from textdiffusion.tasks.denoise.lexicon import Lexicon, recase
from textdiffusion.tasks.denoise.pairs import WORD_SAMPLING_POWER, target_length
from textdiffusion.tasks.pipeline import DiffusionPipeline, InputError, tokenizer_coverage


@dataclasses.dataclass
class DenoiseOutput:
    texts: list[str]
    changed: list[bool]
    seconds: float
    network_calls: int


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (insertions, deletions, substitutions), O(len(a) * len(b))."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def plausible_edit(source: str, output: str) -> bool:
    """A correction changes a minority of the characters; anything else is a failure to fall back from."""
    if not output.strip():
        return False
    return edit_distance(source, output) <= max(3, len(source) // 3)


class DenoisePipeline(DiffusionPipeline):
    """`pipe(["Thsi sentense has typos"])` -> DenoiseOutput; also `correct_words` and `correct_sentences`."""

    task = "denoise"
    name = "textdiffusion"

    def _allowed_specials(self) -> set[int]:
        return {self.tokenizer.pad_id}  # trailing PADs end the corrected text

    @property
    def max_chars(self) -> int:
        """Longest piece corrected at once: the model's training length (the default for a model of another
        task)."""
        settings = self.config.task_config
        return (settings if isinstance(settings, DenoiseConfig) else DenoiseConfig()).max_chars

    def _pieces(self, line: str) -> list[tuple[str, bool]]:
        """(piece, correct it?) covering `line` exactly: whitespace and unknown text pass through."""
        core = line.strip()
        if not core:
            return [(line, False)]
        start = line.index(core[0])
        head, tail = line[:start], line[start + len(core) :]
        out = [(head, False)] if head else []
        for piece in chunk_text(core, self.max_chars):
            stripped = piece.rstrip()
            known = not tokenizer_coverage(self.tokenizer, stripped)
            out.append((stripped, known and bool(stripped.strip())))
            if len(stripped) < len(piece):
                out.append((piece[len(stripped) :], False))
        if tail:
            out.append((tail, False))
        return out

    @torch.no_grad()
    def correct_pieces(
        self,
        pieces: Sequence[str],
        *,
        batch_size: int = 64,
        steps: int | None = None,
        sampler: str | None = None,
        temperature: float | None = None,
        threshold: float | None = None,
        seed: int | None = 0,
        guard: bool = True,
        callback: Callable | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> tuple[list[str], int]:
        """Correct short texts (each at most `max_chars`); returns the texts and the number of network calls.

        With `guard`, a change is kept only where the model itself finds it more likely than the input left as it
        is (`prefers_outputs`): fewer correct words are changed, at some cost in corrections made."""
        ids = self.tokenizer.encode_batch(list(pieces))
        outputs, calls = self.generate_targets(
            ids,
            target_length,
            batch_size=batch_size,
            seed=seed,
            callback=callback,
            progress=progress,
            steps=steps,
            sampler=sampler,
            temperature=temperature,
            threshold=threshold,
        )
        results = [
            text if plausible_edit(piece, text) else piece
            for piece, text in zip(pieces, map(self.tokenizer.decode, outputs))
        ]
        order = sorted(range(len(pieces)), key=lambda i: len(ids[i]))
        changed = [i for i in order if results[i] != pieces[i]]  # sorted by length: little padding
        if guard and changed:
            keep, guard_calls = self.prefers_outputs(
                [pieces[i] for i in changed], [results[i] for i in changed], batch_size=batch_size
            )
            calls += guard_calls
            for i, ok in zip(changed, keep):
                results[i] = results[i] if ok else pieces[i]
        return results, calls

    @torch.no_grad()
    def conditional_nll(
        self,
        sources: Sequence[str],
        outputs: Sequence[str],
        *,
        samples: int = 8,
        batch_size: int = 64,
        seed: int = 0,
        progress: Callable[[int, int], None] | None = None,
    ) -> tuple[list[float], int]:
        """The model's conditional ELBO (nats) of each output given its source, and the network calls made.

        The masks are drawn from a generator seeded with `seed` and the source text, so pairs with the same source
        are scored with the same masks whatever the batch, call or order (common random numbers): their ELBOs
        differ through their outputs, far less through Monte Carlo noise."""
        from textdiffusion.evaluation.elbo import diffusion_nll

        scores = [0.0] * len(sources)
        calls = 0
        texts_per_call = max(1, batch_size // samples)  # each text is scored `samples` times
        # one network call per batch, of sources of similar lengths: less padding (the masks depend on the seed and
        # the source alone, not on the batch)
        order = sorted(range(len(sources)), key=lambda i: len(sources[i]))
        for start in range(0, len(sources), texts_per_call):
            chunk = order[start : start + texts_per_call]
            texts = [sources[i] for i in chunk]
            src = self.tokenizer.encode_batch(texts)
            out = self.tokenizer.encode_batch([outputs[i] for i in chunk])
            batch = pad_pairs(src, out, pad_id=self.tokenizer.pad_id, length=target_length)
            t = {k: torch.from_numpy(v).to(self.device) for k, v in batch.items()}
            nll, _ = diffusion_nll(
                self.model,
                self.process,
                t["target"],
                t["target_mask"],
                samples=samples,
                batch_size=len(chunk) * samples,
                cond=Cond(prefix=t["prefix"], prefix_mask=t["prefix_mask"]),
                noise=self._source_noise(texts, samples, batch["target_mask"], seed),
                generator=torch.Generator().manual_seed(seed),
            )
            for i, value in zip(chunk, nll.tolist()):
                scores[i] = value
            calls += 1
            if progress is not None:
                progress(start + len(chunk), len(sources))
        return scores, calls

    def _source_noise(
        self, sources: list[str], samples: int, target_mask, seed: int
    ) -> tuple[torch.Tensor, torch.Tensor] | None:
        """`diffusion_nll`'s draws for each pair, a function of (seed, source) alone; None where the process draws
        its own (it has no count form)."""
        if not self.process.absorbing:
            return None
        offsets = torch.empty(len(sources), samples, dtype=torch.float64)
        scores = torch.full(
            (len(sources), samples, target_mask.shape[1]), 2.0
        )  # 2: beyond the target
        for i, (text, n) in enumerate(zip(sources, target_mask.sum(1).tolist())):
            key = zlib.crc32(f"{seed}\0{text}".encode("utf-8", errors="surrogatepass"))
            generator = torch.Generator().manual_seed(
                key
            )  # (the CPU generator keeps 32 bits of a seed)
            offsets[i] = torch.rand(samples, generator=generator, dtype=torch.float64)
            scores[i, :, :n] = torch.rand(samples, n, generator=generator)
        return offsets, scores

    def choose_words(
        self,
        words: Sequence[str],
        lexicon: Lexicon,
        *,
        candidates: int = 10,
        samples: int = 32,
        screen: int = 8,
        shortlist: int = 4,
        batch_size: int = 256,
        seed: int = 0,
        progress: Callable[[int, int], None] | None = None,
    ) -> tuple[list[str], int]:
        """Each word replaced by the lexicon candidate the model finds most likely; returns them and the network calls.

        The candidates are the lexicon's known words within its edit distance of the (lower-cased) word, at most
        `candidates` of them, nearest first. Each is scored by its conditional ELBO given the word
        (`conditional_nll`) minus (1 - p) ln(count): the training drew single words in proportion to count^p
        (p = `WORD_SAMPLING_POWER`), so this restores the lexicon's full frequency prior (Bayes' rule). All are
        scored with `screen` ELBO samples, the best `shortlist` of each word again with `samples`. The pick is
        recased like the word; a word without candidates, or too long for the model's context, is kept.
        """
        prior = 1.0 - WORD_SAMPLING_POWER
        pool: dict[int, list[tuple[str, int]]] = {}
        for i, word in enumerate(words):
            if 2 * len(word) + 8 <= self.max_len:  # source, candidate and learnt PADs must fit
                pool[i] = lexicon.candidates(word, candidates)
        calls = 0
        for n_samples, keep in ((screen, shortlist), (samples, 1)):
            pairs = [(i, t, c) for i, found in pool.items() if len(found) > 1 for t, c in found]
            if not pairs:  # one candidate or none left for every word
                break
            nll, more = self.conditional_nll(
                [words[i].lower() for i, _, _ in pairs],
                [term for _, term, _ in pairs],
                samples=n_samples,
                batch_size=batch_size,
                seed=seed,
                progress=progress,
            )
            calls += more
            scored: dict[int, list[tuple[float, str, int]]] = {}
            for (i, term, count), value in zip(pairs, nll):
                scored.setdefault(i, []).append((value - prior * math.log(count), term, count))
            pool.update(
                {i: [(t, c) for _, t, c in sorted(found)[:keep]] for i, found in scored.items()}
            )
        return [recase(w, pool[i][0][0]) if pool.get(i) else w for i, w in enumerate(words)], calls

    def prefers_outputs(
        self,
        sources: Sequence[str],
        outputs: Sequence[str],
        *,
        samples: int = 8,
        batch_size: int = 64,
        seed: int = 0,
    ) -> tuple[list[bool], int]:
        """Whether the model's likelihood of each output given its source beats that of the source itself.

        Both are scored by `conditional_nll` with the same masks, so the comparison is paired; returns the verdicts
        and the network calls made.
        """
        kwargs = dict(samples=samples, batch_size=batch_size, seed=seed)
        changed, calls = self.conditional_nll(sources, outputs, **kwargs)
        unchanged, more = self.conditional_nll(sources, sources, **kwargs)
        return [a < b for a, b in zip(changed, unchanged)], calls + more

    def __call__(
        self,
        texts: str | Sequence[str],
        *,
        batch_size: int = 64,
        seed: int | None = 0,
        progress: Callable[[int, int], None] | None = None,
        lexicon: Lexicon | None = None,
        **sampling,
    ) -> DenoiseOutput:
        """Correct each text (a line; newlines inside a text split it into lines corrected one by one).

        With a `lexicon`, only its unknown words are corrected, each to the lexicon candidate the model finds most
        likely (`choose_words`); everything else stays byte-identical. Without, the model generates each line's
        correction (`correct_pieces`, with the `sampling` options)."""
        texts = [texts] if isinstance(texts, str) else list(texts)
        if not all(isinstance(t, str) for t in texts):
            raise InputError("texts must be strings")
        if batch_size < 1:
            raise InputError(f"batch_size must be at least 1, got {batch_size}")
        start = time.perf_counter()
        if lexicon is not None:
            outputs, calls = self._correct_unknown_words(
                texts, lexicon, seed=seed or 0, progress=progress
            )
        elif self.text_form is not None:
            outputs, calls = self._correct_normalised(
                texts, batch_size=batch_size, seed=seed, progress=progress, **sampling
            )
        else:
            outputs, calls = self._correct_lines(
                texts, batch_size=batch_size, seed=seed, progress=progress, **sampling
            )
        return DenoiseOutput(
            texts=outputs,
            changed=[a != b for a, b in zip(outputs, texts)],
            seconds=time.perf_counter() - start,
            network_calls=calls,
        )

    def _correct_unknown_words(
        self, texts: list[str], lexicon: Lexicon, *, seed: int, progress
    ) -> tuple[list[str], int]:
        calls = 0

        def choose(words: list[str]) -> list[str]:
            nonlocal calls
            fixed, calls = self.choose_words(words, lexicon, seed=seed, progress=progress)
            return fixed

        return lexicon.correct(texts, choose), calls

    def _correct_lines(
        self, texts: list[str], *, batch_size: int, seed: int | None, progress, **sampling
    ) -> tuple[list[str], int]:
        plans = []  # per text: per line: list of (piece, correct?)
        todo: list[str] = []
        for text in texts:
            lines = text.split("\n")
            plan = [self._pieces(line) for line in lines]
            plans.append(plan)
            todo += [piece for line in plan for piece, fix in line if fix]
        unique = list(dict.fromkeys(todo))
        fixed, calls = [], 0
        if unique:
            fixed, calls = self.correct_pieces(
                unique, batch_size=batch_size, seed=seed, progress=progress, **sampling
            )
        table = dict(zip(unique, fixed))
        outputs = []
        for plan in plans:
            lines = ["".join(table[p] if fix else p for p, fix in line) for line in plan]
            outputs.append("\n".join(lines))
        return outputs, calls

    def _correct_normalised(
        self, texts: list[str], *, batch_size: int, seed: int | None, progress, **sampling
    ) -> tuple[list[str], int]:
        """`_correct_lines` for a model of normalised text (`self.text_form`): each line is corrected in the
        training form and restored to the casing and spacing it was typed with."""
        lines = [line for text in texts for line in text.split("\n")]
        pairs = [normalise(line, self.text_form) for line in lines]
        fixed, calls = self._correct_lines(
            [model for model, _ in pairs],
            batch_size=batch_size,
            seed=seed,
            progress=progress,
            **sampling,
        )
        restored = iter(restore(out, info) for out, (_, info) in zip(fixed, pairs))
        return ["\n".join(next(restored) for _ in text.split("\n")) for text in texts], calls

    def correct_sentences(self, lines: list[str], **kwargs) -> list[str]:
        return self(lines, **kwargs).texts

    def correct_words(self, words: list[str], **kwargs) -> list[str]:
        return self(words, **kwargs).texts
