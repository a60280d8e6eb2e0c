"""Infilling: every run of three or more underscores is a blank; everything else is kept exactly.

Blank lengths are chosen by the model: for each candidate length n the blank is left masked and the ELBO of the
*context* tokens is computed (the fill is marginalised by the masked positions), so candidates are compared on the
same tokens and no length is favoured for having fewer tokens to pay for.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Sequence

import torch

from textdiffusion.evaluation.elbo import diffusion_nll
from textdiffusion.tasks.pipeline import (
    DiffusionPipeline,
    InputError,
    check_text,
    tokenizer_coverage,
)

BLANK = re.compile(r"_{3,}")
DEFAULT_CANDIDATES = (1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 20, 24, 32)


@dataclasses.dataclass
class InfillOutput:
    text: str
    """The input with every blank filled."""
    fills: list[str]
    """What went into each blank, in order."""
    lengths: list[int]
    """Tokens given to each blank."""
    ids: torch.Tensor
    """int64 (1, L)."""
    seconds: float
    network_calls: int
    warnings: list[str] = dataclasses.field(default_factory=list)


def split_blanks(text: str) -> tuple[list[str], int]:
    """The text between blanks (one more piece than blanks) and the number of blanks."""
    pieces = BLANK.split(text)
    return pieces, len(pieces) - 1


class InfillPipeline(DiffusionPipeline):
    """`pipe("To be, or ___ to be", blank_length=None)` -> InfillOutput."""

    task = "infill"

    def _layout(
        self, pieces: list[list[int]], lengths: Sequence[int]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Ids (1, L) with masks in the blanks, and the context mask (1, L), True outside the blanks."""
        ids: list[int] = []
        context: list[bool] = []
        for i, piece in enumerate(pieces):
            ids += piece
            context += [True] * len(piece)
            if i < len(lengths):
                ids += [self.tokenizer.mask_id] * lengths[i]
                context += [False] * lengths[i]
        if len(ids) > self.max_len:
            raise InputError(
                f"the text with its blanks is {len(ids)} tokens, more than the model's context of {self.max_len}"
            )
        return torch.tensor([ids]), torch.tensor([context])

    @torch.no_grad()
    def context_nll(
        self, pieces: list[list[int]], lengths: Sequence[int], *, samples: int = 16, seed: int = 0
    ) -> float:
        """ELBO (nats) of the context tokens with the blanks of `lengths` left masked throughout: the likelihood
        scorer's count-stratified bound with the blanks visible but never scored."""
        x, context = self._layout(pieces, lengths)
        nll, _ = diffusion_nll(
            self.model,
            self.process,
            x,
            context,
            samples=samples,
            batch_size=samples,
            generator=torch.Generator().manual_seed(seed),
            visible=torch.ones_like(context),
        )
        return float(nll[0])

    def choose_lengths(
        self,
        pieces: list[list[int]],
        n_blanks: int,
        candidates: Sequence[int],
        *,
        samples: int,
        seed: int,
    ) -> list[int]:
        """One pass of coordinate descent over the blanks, each picking the candidate with the lowest context NLL."""
        if not self.process.absorbing:
            raise InputError(
                "choosing blank lengths scores the text with its blanks masked, which needs a masked-diffusion "
                "model; give the lengths with --blank-length N"
            )
        context_tokens = sum(len(p) for p in pieces)
        room = self.max_len - context_tokens
        candidates = [c for c in candidates if 0 < c <= room]
        if not candidates:
            raise InputError(
                f"the text leaves no room for its blanks in the model's context of {self.max_len}"
            )
        lengths = [candidates[len(candidates) // 2]] * n_blanks
        for blank in range(n_blanks):
            scores = {}
            for c in candidates:
                trial = lengths[:blank] + [c] + lengths[blank + 1 :]
                if sum(trial) <= room:
                    scores[c] = self.context_nll(pieces, trial, samples=samples, seed=seed)
            lengths[blank] = min(scores, key=scores.get)
        return lengths

    def __call__(
        self,
        text: str,
        *,
        blank_length: int | None = None,
        candidates: Sequence[int] = DEFAULT_CANDIDATES,
        score_samples: int = 16,
        steps: int | None = None,
        sampler: str | None = None,
        temperature: float | None = None,
        top_p: float | None = None,
        threshold: float | None = None,
        seed: int | None = 0,
        callback: Callable | None = None,
        **options,
    ) -> InfillOutput:
        check_text(text)
        pieces_text, n_blanks = split_blanks(text)
        if n_blanks == 0:
            raise InputError(
                "the text has no blank: mark each blank with three or more underscores (___)"
            )
        if not "".join(pieces_text).strip():
            raise InputError(
                "the text is only blanks: there is nothing to fill around (use `generate` instead)"
            )
        if blank_length is not None and blank_length <= 0:
            raise InputError(f"blank length must be positive, got {blank_length}")
        warnings = []
        unseen = tokenizer_coverage(self.tokenizer, "".join(pieces_text))
        if unseen:
            warnings.append(
                f"characters never seen in training are kept as bytes: {''.join(unseen)!r}"
            )
        pieces = [self.encode(p) if p else [] for p in pieces_text]
        if blank_length is not None:
            # the room left by the text, checked before the masks are laid out (10**9 would allocate gigabytes)
            total = sum(len(p) for p in pieces) + blank_length * n_blanks
            if total > self.max_len:
                raise InputError(
                    f"the text with its blanks ({n_blanks} x blank length {blank_length}) is {total:,} tokens, "
                    f"more than the model's context of {self.max_len}"
                )
            lengths = [blank_length] * n_blanks
        else:
            lengths = self.choose_lengths(
                pieces, n_blanks, candidates, samples=score_samples, seed=seed or 0
            )
        x_init, context = self._layout(pieces, lengths)
        out = self.sample(
            tuple(x_init.shape),
            steps=steps,
            sampler=sampler,
            temperature=temperature,
            top_p=top_p,
            threshold=threshold,
            **options,
            generator=self.generator(seed),
            x_init=x_init,
            fixed=context,
            callback=callback,
        )
        ids = out.ids[0].cpu()
        fills, pos = [], 0
        for i, piece in enumerate(pieces[:-1]):
            pos += len(piece)
            fills.append(self.tokenizer.decode(ids[pos : pos + lengths[i]].tolist()))
            pos += lengths[i]
        filled = "".join(p + f for p, f in zip(pieces_text, fills)) + pieces_text[-1]
        return InfillOutput(
            text=filled,
            fills=fills,
            lengths=lengths,
            ids=out.ids,
            seconds=out.seconds,
            network_calls=out.network_calls,
            warnings=warnings,
        )
