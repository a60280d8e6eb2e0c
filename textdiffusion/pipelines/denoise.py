"""Text denoising (spelling and grammar correction): the noisy text is the conditioning prefix, never noised; the
clean text is generated from all-masked target positions (followed by learnt PADs, so the length can change).

Lines are corrected independently, long ones in pieces at whitespace; what the model cannot handle is returned
unchanged, never dropped: empty lines, leading and trailing whitespace, pieces with characters the tokenizer never
saw (non-English text, stray bytes), and outputs that are not a plausible edit of the input.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence

import torch

from textdiffusion.data.pairs import chunk_text, pad_pairs, target_length
from textdiffusion.networks import Cond
from textdiffusion.pipelines.base import DiffusionPipeline, InputError, tokenizer_coverage


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
        return int(self.config.task_config.get("max_chars", 120))

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
        limit = self.max_len
        for text, row in zip(pieces, ids):
            if len(row) + target_length(len(row)) > limit:
                raise InputError(
                    f"a piece of {len(row)} tokens does not fit the model's context: {text[:40]!r}..."
                )
        order = sorted(range(len(pieces)), key=lambda i: len(ids[i]))
        results: list[str] = list(pieces)
        calls = 0
        generator = self.generator(seed)
        for start in range(0, len(order), batch_size):
            index = order[start : start + batch_size]
            batch = pad_pairs(
                [ids[i] for i in index], [[] for _ in index], pad_id=self.tokenizer.pad_id
            )
            cond = Cond(
                prefix=torch.from_numpy(batch["prefix"]).to(self.device),
                prefix_mask=torch.from_numpy(batch["prefix_mask"]).to(self.device),
            )
            mask = torch.from_numpy(batch["target_mask"]).to(
                self.device
            )  # (b, Lt) positions to generate
            x_init = torch.where(
                mask, self.tokenizer.mask_id, self.tokenizer.pad_id
            )  # batch padding stays PAD
            out = self.sample(
                tuple(mask.shape),
                steps=steps,
                sampler=sampler,
                temperature=temperature,
                threshold=threshold,
                generator=generator,
                x_init=x_init,
                fixed=~mask,
                cond=cond,
                attention_mask=mask,
                callback=callback,
            )
            calls += out.network_calls
            if progress is not None:
                progress(min(start + batch_size, len(order)), len(order))
            for row, i in enumerate(index):
                tokens = out.ids[row][mask[row]].tolist()
                if self.tokenizer.pad_id in tokens:
                    tokens = tokens[: tokens.index(self.tokenizer.pad_id)]
                text = self.tokenizer.decode(tokens)
                results[i] = text if plausible_edit(pieces[i], text) else pieces[i]
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
    ) -> tuple[list[float], int]:
        """The model's conditional ELBO (nats) of each output given its source, and the network calls made.

        Each batch of `batch_size` pairs draws its masks from a generator seeded with `seed`, so two calls over the
        same sources compare their outputs with the same masks (common random numbers)."""
        from textdiffusion.evaluation.elbo import diffusion_nll

        scores: list[float] = []
        calls = 0
        rows = max(1, batch_size // samples) * samples  # (text, sample) rows per network call
        for start in range(0, len(sources), batch_size):
            src = self.tokenizer.encode_batch(list(sources[start : start + batch_size]))
            out = self.tokenizer.encode_batch(list(outputs[start : start + batch_size]))
            batch = pad_pairs(src, out, pad_id=self.tokenizer.pad_id)
            t = {k: torch.from_numpy(v).to(self.device) for k, v in batch.items()}
            nll, _ = diffusion_nll(
                self.model,
                self.process,
                t["target"],
                t["target_mask"],
                samples=samples,
                batch_size=rows,
                generator=torch.Generator().manual_seed(seed),
                cond=Cond(prefix=t["prefix"], prefix_mask=t["prefix_mask"]),
            )
            scores += nll.tolist()
            calls += -(-len(src) * samples // rows)
        return scores, calls

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
        **sampling,
    ) -> DenoiseOutput:
        """Correct each text (a line; newlines inside a text split it into lines corrected one by one)."""
        single = isinstance(texts, str)
        texts = [texts] if single else list(texts)
        if not all(isinstance(t, str) for t in texts):
            raise InputError("texts must be strings")
        start = time.perf_counter()
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
        return DenoiseOutput(
            texts=outputs,
            changed=[a != b for a, b in zip(outputs, texts)],
            seconds=time.perf_counter() - start,
            network_calls=calls,
        )

    def correct_sentences(self, lines: list[str], **kwargs) -> list[str]:
        return self(lines, **kwargs).texts

    def correct_words(self, words: list[str], **kwargs) -> list[str]:
        return self(words, **kwargs).texts
