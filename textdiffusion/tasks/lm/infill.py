"""Infilling: every run of three or more underscores is a blank; everything else is kept exactly.

A model trained with variable-length blanks (`LMConfig.max_blank` K > 0, tasks/lm/blanks.py) fills a blank of
unknown length in one sampling pass: the blank becomes K masks, PAD may be sampled there, and the PADs are dropped
from the fill; `max_blank_length` M < K leaves M masks and fixes the other K - M positions to PAD (the layout the
model was trained on), and `blank_length` N <= K leaves N masks, PAD suppressed, and K - N PADs.

Other models choose each blank's length: for each candidate length n the blank is left masked and the ELBO of the
*context* tokens is computed (the fill is marginalised by the masked positions), so candidates are compared on the
same tokens and no length is favoured for having fewer tokens to pay for.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Sequence

import torch

from textdiffusion.config import LMConfig
from textdiffusion.evaluation.elbo import diffusion_nll
from textdiffusion.tasks.pipeline import (
    DiffusionPipeline,
    InputError,
    SuppressAt,
    SuppressTokens,
    check_text,
    tokenizer_coverage,
)

BLANK = re.compile(r"_{3,}")
DEFAULT_CANDIDATES = (1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 20, 24, 32)
VARIABLE_ORDER = "left"
VARIABLE_TEMPERATURE = 0.5
"""The unmasking order and temperature of a variable-length blank's one pass: written left to right, a fill stops at
its PAD (a call per token); the temperature was chosen on 60 valid.txt lines (`python bench/infill_blanks.py --lines 60
--new-temperature T`)."""


@dataclasses.dataclass
class InfillOutput:
    text: str
    """The input with every blank filled."""
    fills: list[str]
    """What went into each blank, in order."""
    lengths: list[int]
    """Tokens of each fill (a variable-length blank's PADs dropped)."""
    ids: torch.Tensor
    """int64 (1, L): the sampled sequence (with a variable-length blank's PADs, and the line break put before a
    blank that opens the text)."""
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

    def __init__(self, pretrained) -> None:
        super().__init__(pretrained)
        # a blank of fixed length on a model with PAD-terminated blanks: PAD may not be drawn there
        self._no_pad = SuppressTokens(
            self.model, sorted(set(self.suppressed) | {self.tokenizer.pad_id})
        )

    @property
    def max_blank(self) -> int:
        """K, the positions of a variable-length blank the model was trained with (0: none)."""
        settings = self.config.task_config
        return settings.max_blank if isinstance(settings, LMConfig) else 0

    def _allowed_specials(self) -> set[int]:
        return {self.tokenizer.pad_id} if self.max_blank else set()

    def _layout(
        self, pieces: list[list[int]], lengths: Sequence[int], *, slot: int = 0
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Ids (1, L) with `lengths[i]` masks in blank i, and the fixed mask (1, L), True outside the masks. With
        `slot` > 0 each blank takes max(slot, lengths[i]) positions, the masks followed by fixed PADs."""
        size = sum(len(p) for p in pieces) + sum(max(slot, n) for n in lengths)
        if size > self.max_len:
            raise InputError(
                f"the text with its blanks is {size} tokens, more than the model's context of {self.max_len}"
            )
        ids: list[int] = []
        fixed: list[bool] = []
        for i, piece in enumerate(pieces):
            ids += piece
            fixed += [True] * len(piece)
            if i < len(lengths):
                pads = max(slot - lengths[i], 0)
                ids += [self.tokenizer.mask_id] * lengths[i] + [self.tokenizer.pad_id] * pads
                fixed += [False] * lengths[i] + [True] * pads
        return torch.tensor([ids]), torch.tensor([fixed])

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
        """One pass of coordinate descent over the blanks, each picking the candidate with the lowest context NLL
        (2 * len(candidates) ELBO estimates of `samples` each per blank)."""
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
        max_blank_length: int | None = None,
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
        """Fill every blank of `text`.

        Args:
            blank_length: tokens of every blank (None: the model decides, in one pass or by ELBO, see the module).
            max_blank_length: the longest fill, in tokens (None: K of a model with variable-length blanks, the
                longest candidate otherwise); at most K.
            candidates, score_samples: the lengths tried and the ELBO samples per try of a model without
                variable-length blanks.
            steps, sampler, temperature, top_p, threshold, options: sampling settings (None: the model's). A
                variable-length blank samples in at most as many steps as it has masks.
        """
        check_text(text)
        K = self.max_blank
        if blank_length is not None and blank_length <= 0:
            raise InputError(f"--blank-length must be positive, got {blank_length}")
        if max_blank_length is not None:
            if max_blank_length <= 0:
                raise InputError(f"--max-blank-length must be positive, got {max_blank_length}")
            if K and max_blank_length > K:
                raise InputError(
                    f"--max-blank-length {max_blank_length} is longer than the {K} positions of this model's "
                    f"blanks (trained with --max-blank {K})"
                )
            if blank_length is not None and blank_length > max_blank_length:
                raise InputError(
                    f"--blank-length {blank_length} is longer than --max-blank-length {max_blank_length}"
                )
        pieces_text, n_blanks = split_blanks(text)
        if n_blanks == 0:
            raise InputError(
                "the text has no blank: mark each blank with three or more underscores (___)"
            )
        if not "".join(pieces_text).strip():
            raise InputError(
                "the text is only blanks: there is nothing to fill around (use `generate` instead)"
            )
        warnings = []
        unseen = tokenizer_coverage(self.tokenizer, "".join(pieces_text))
        if unseen:
            warnings.append(
                f"characters never seen in training are kept as bytes: {''.join(unseen)!r}"
            )
        pieces = [self.encode(p) if p else [] for p in pieces_text]
        # one pass over K-position slots (PAD allowed unless the length is fixed), or masks of a chosen length
        slot = K if K and (blank_length is None or blank_length <= K) else 0
        variable = slot > 0 and blank_length is None
        if variable and not pieces[0]:
            # training blanks always follow some context: a blank that opens the text gets a line break before
            # it (in `ids`, not in the text), so that it starts a word rather than continuing one
            pieces[0] = self.encode("\n")
        if blank_length is not None:
            # the room left by the text, checked before the masks are laid out (10**9 would allocate gigabytes)
            total = sum(len(p) for p in pieces) + blank_length * n_blanks
            if total > self.max_len:
                raise InputError(
                    f"the text with its blanks ({n_blanks} x blank length {blank_length}) is {total:,} tokens, "
                    f"more than the model's context of {self.max_len}"
                )
            lengths = [blank_length] * n_blanks
        elif slot:
            lengths = [max_blank_length or K] * n_blanks
        else:
            if max_blank_length is not None:
                candidates = [c for c in candidates if c <= max_blank_length] or [max_blank_length]
            lengths = self.choose_lengths(
                pieces, n_blanks, candidates, samples=score_samples, seed=seed or 0
            )
        x_init, fixed = self._layout(pieces, lengths, slot=slot)
        if variable:
            # written left to right, a blank ends where PAD is drawn: about as many calls as the fill has tokens
            options.setdefault("order", VARIABLE_ORDER)
            options["terminator"] = self.tokenizer.pad_id
            temperature = VARIABLE_TEMPERATURE if temperature is None else temperature
            if steps is None:
                per_run = options["order"] == "left"  # one position of every blank per step
                steps = min(self.config.sample.steps, max(lengths) if per_run else sum(lengths))
        denoiser = self.denoiser
        if K and not variable:
            self.denoiser = self._no_pad
        elif variable:
            # a blank holds at least one token, as in training: no PAD at the first position of a slot
            first, pos = [], 0
            for piece in pieces[:-1]:
                pos += len(piece)
                first.append(pos)
                pos += slot
            where = torch.zeros(x_init.shape, dtype=torch.bool, device=self.device)
            where[:, first] = True
            self.denoiser = SuppressAt(denoiser, where, self.tokenizer.pad_id)
        try:
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
                fixed=fixed,
                callback=callback,
            )
        finally:
            self.denoiser = denoiser
        ids = out.ids[0].cpu()
        fills, filled_lengths, pos = [], [], 0
        for i, piece in enumerate(pieces[:-1]):
            pos += len(piece)
            width = max(slot, lengths[i])
            tokens = [t for t in ids[pos : pos + width].tolist() if t != self.tokenizer.pad_id]
            fills.append(self.tokenizer.decode(tokens))
            filled_lengths.append(len(tokens))
            pos += width
        filled = "".join(p + f for p, f in zip(pieces_text, fills)) + pieces_text[-1]
        return InfillOutput(
            text=filled,
            fills=fills,
            lengths=filled_lengths,
            ids=out.ids,
            seconds=out.seconds,
            network_calls=out.network_calls,
            warnings=warnings,
        )
