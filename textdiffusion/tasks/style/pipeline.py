"""Style transfer, in two forms.

- **From aligned pairs**, e.g. modern English into Shakespeare's (`textdiffusion train --task style --data modern.txt
  --targets original.txt`). The source line is the conditioning prefix, never noised; the rewrite is generated from
  all-masked target positions (their number set by the model's length rule, the rest learnt PADs), as in denoising.
- **Of an attribute**, learnt from texts with labels only, e.g. review sentiment (`textdiffusion train --task style
  --data neg.txt pos.txt --labels negative positive`). The model learns p(text | label) with the label sometimes
  dropped. To move a line to label y, the words that y makes least likely, log p(x_i | no label) - log p(x_i | y)
  with each token masked in turn (its attribute markers), are masked, with a few positions after the text, and
  regenerated under y with classifier-free guidance; every other token is kept. PADs a regenerated position turns
  into are dropped, so the line can also shrink.

Each line of a text is rewritten on its own; empty lines stay empty, a line too long for the model's context is
rewritten in pieces cut at spaces, and a line with characters the model never saw is left as it is (with a warning).
A model whose config.json records the form of its training text (`text_form`: lower-cased, tokenised, as the Yelp
sentences are) reads each line in that form, and its rewrite is brought back to the line's casing and spacing
(`textdiffusion.data.textform`): "The food was cold!" is rewritten as "the food was cold !" and comes back as
"The food was great!".
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from collections.abc import Callable, Sequence

import torch

from textdiffusion.data.edits import canvas_length, read_canvas, source_canvas, token_position
from textdiffusion.data.seq2seq import chunk_text, pad_pairs
from textdiffusion.data.textform import normalise, restore
from textdiffusion.networks import Cond
from textdiffusion.tasks.pipeline import DiffusionPipeline, InputError, tokenizer_coverage
from textdiffusion.tasks.style.pairs import LengthRule, growth


@dataclasses.dataclass
class StyleOutput:
    texts: list[str]
    seconds: float
    network_calls: int
    warnings: list[str] = dataclasses.field(default_factory=list)
    """Lines returned unchanged, and why (characters the model never saw)."""


MARKER_NATS = 0.5
"""A word is an attribute marker if the target label makes one of its tokens at least this much less likely (in nats,
log p(x_i | no label) - log p(x_i | label)): about 1.6 times. Content words score near 0 either way."""


EDIT_STRENGTH = 0.9
"""A source-start model rewrites a token where it prefers another with probability above 1 - strength (chosen on the
modern -> Shakespeare dev pairs, bench/README.md)."""
EDIT_ROUNDS = 1
"""Detect-and-rewrite rounds of a source-start model."""
EDIT_DELETIONS = False
"""Whether a source-start model may drop source tokens. Loosely aligned pairs (a paraphrase) teach PAD as the most
likely target of many content words, so rewrites with deletions lose them (a lower dev BLEU, bench/README.md "Style transfer")."""


class StylePipeline(DiffusionPipeline):
    """`pipe(["I will not fight with you."])` -> StyleOutput with the rewritten texts; for an attribute model,
    `pipe(["the food was cold ."], to="positive")`."""

    task = "style"

    def __init__(self, pretrained) -> None:
        super().__init__(pretrained)
        if self.config.task != self.task:
            raise InputError(
                f"{pretrained.path} is a {self.config.task!r} model; style transfer needs one trained with "
                "`textdiffusion train --task style`"
            )
        settings = self.config.task_config
        self.labels: list[str] | None = list(settings.labels) or None
        self.gap = 0
        if self.labels:  # attribute transfer: lines of `positions` tokens, text then learnt PADs
            self.positions = settings.length
            self.fits = max(
                (n for n in range(self.positions + 1) if n + growth(n) <= self.positions), default=0
            )
        else:
            self.gap = settings.gap
            self.length = (
                functools.partial(canvas_length, gap=self.gap)
                if self.gap
                else LengthRule(ratio=settings.ratio, slack=settings.slack)
            )
            # the longest source (tokens) that fits the context with its rewrite
            self.fits = max(
                (n for n in range(self.max_len) if n + self.length(n) <= self.max_len), default=0
            )
        if self.fits < 1:
            raise InputError(f"{pretrained.path}: no source fits the context with its rewrite")

    def _allowed_specials(self) -> set[int]:
        return {self.tokenizer.pad_id}  # trailing PADs end the rewrite

    def __call__(
        self,
        texts: str | Sequence[str],
        *,
        batch_size: int = 64,
        seed: int | None = 0,
        callback: Callable | None = None,
        progress: Callable[[int, int], None] | None = None,
        to: str | None = None,
        strength: float | None = None,
        guidance: float = 2.0,
        rounds: int = EDIT_ROUNDS,
        deletions: bool = EDIT_DELETIONS,
        **sampling,
    ) -> StyleOutput:
        """Rewrite each text, line by line. `sampling`: steps, sampler, temperature, threshold (None: the model's
        saved defaults). `strength`, how much may change (None: the model kind's default): for an attribute model
        the largest share of a line's words regenerated (markers only: see `MARKER_NATS`; default 0.3), for a
        source-start model (`train --edit-gap`) how sure the model must be of another token, above 1 - strength, to
        rewrite one (0: the output is the input; default `EDIT_STRENGTH`), in each of `rounds` rounds;
        `deletions`: whether a source token may be dropped (else only replaced, and words inserted).
        Attribute models: `to` is the label to move the text to; `guidance` the classifier-free guidance scale
        (1: none)."""
        if strength is not None and not (self.labels or self.gap):
            raise InputError(
                "strength is for attribute and source-start models; this one generates its rewrite from masks"
            )
        if self.gap:
            strength = EDIT_STRENGTH if strength is None else strength
            if not 0.0 <= strength <= 1.0:
                raise InputError(f"strength must be in [0, 1], got {strength}")
            if rounds < 1:
                raise InputError(f"rounds must be at least 1, got {rounds}")
        if self.labels:
            strength = 0.3 if strength is None else strength
            if to not in self.labels:
                raise InputError(
                    f"this model moves text between the attributes {self.labels}: pass to= one of them"
                    + ("" if to is None else f", not {to!r}")
                )
            if not 0.0 < strength <= 1.0:
                raise InputError(f"strength must be in (0, 1], got {strength}")
        elif to is not None:
            raise InputError(
                "this model was trained on aligned pairs and has no attributes: leave out to="
            )
        texts = [texts] if isinstance(texts, str) else list(texts)
        if not all(isinstance(t, str) for t in texts):
            raise InputError("texts must be strings")
        if batch_size < 1:
            raise InputError(f"batch_size must be at least 1, got {batch_size}")
        typed = [line.strip() for text in texts for line in text.split("\n")]
        # a model of normalised text (lower-cased, tokenised) reads each line in that form; restored on the way out
        forms = {}
        if self.text_form is not None:
            forms = {line: normalise(line, self.text_form) for line in dict.fromkeys(typed) if line}
        lines = [forms[line][0] if line in forms else line for line in typed]
        usable, warnings = [], []  # distinct non-empty lines, each encoded once
        first_typed: dict[str, str] = {}
        for line, shown in zip(lines, typed):
            first_typed.setdefault(line, shown)
        for line, shown in first_typed.items():
            if not line:
                continue
            unknown = tokenizer_coverage(self.tokenizer, line)
            if unknown:  # left as it is, not dropped: one odd line must not fail a whole file
                warnings.append(
                    f"left unchanged (characters the model never saw, {''.join(unknown)!r}): {shown!r}"
                )
            else:
                usable.append(line)
        ids = dict(zip(usable, self.tokenizer.encode_batch(usable)))
        plans = {line: self._pieces(line, len(ids[line])) for line in usable}
        todo = list(dict.fromkeys(piece for plan in plans.values() for piece in plan))
        cut = [
            piece for piece in todo if piece not in ids
        ]  # pieces of lines too long for the context
        ids.update(zip(cut, self.tokenizer.encode_batch(cut)))
        start = time.perf_counter()
        if self.labels:
            outputs, calls = self.move_attribute(
                [ids[piece] for piece in todo],
                self.labels.index(to),
                strength=strength,
                guidance=guidance,
                batch_size=batch_size,
                seed=seed,
                callback=callback,
                progress=progress,
                **sampling,
            )
        elif self.gap:
            outputs, calls = self.edit_sources(
                [ids[piece] for piece in todo],
                strength=strength,
                rounds=rounds,
                deletions=deletions,
                batch_size=batch_size,
                seed=seed,
                callback=callback,
                progress=progress,
                **sampling,
            )
        else:
            outputs, calls = self.generate_targets(
                [ids[piece] for piece in todo],
                self.length,
                batch_size=batch_size,
                seed=seed,
                callback=callback,
                progress=progress,
                **sampling,
            )
        # a piece the model left as it was comes back as it went in, byte for byte
        table = {
            piece: piece if row == ids[piece] else self.tokenizer.decode(row).strip()
            for piece, row in zip(todo, outputs)
        }
        rewritten = [
            " ".join(table[piece] for piece in plans[line]) if line in plans else line
            for line in lines
        ]
        if forms:  # lines left unchanged come back as typed
            rewritten = [
                restore(out, forms[line][1]) if model in plans and out != model else line
                for line, model, out in zip(typed, lines, rewritten)
            ]
        texts_out, position = [], 0
        for text in texts:
            n = text.count("\n") + 1
            texts_out.append("\n".join(rewritten[position : position + n]))
            position += n
        return StyleOutput(
            texts=texts_out,
            seconds=time.perf_counter() - start,
            network_calls=calls,
            warnings=warnings,
        )

    @torch.no_grad()
    def edit_sources(
        self,
        sources: Sequence[Sequence[int]],
        *,
        strength: float,
        rounds: int,
        deletions: bool = EDIT_DELETIONS,
        batch_size: int = 64,
        seed: int | None = 0,
        callback: Callable | None = None,
        progress: Callable[[int, int], None] | None = None,
        **sampling,
    ) -> tuple[list[list[int]], int]:
        """A source-start model's rewrites: each source is the prefix and, on its canvas, the prior the reverse
        process refines (`refine` with `keep_detector`); sources are batched by length. Returns the canvases'
        tokens (PADs dropped), in the order of `sources`, and the network calls made."""
        order = sorted(range(len(sources)), key=lambda i: len(sources[i]))
        pad, generator = self.tokenizer.pad_id, self.generator(seed)
        prior = functools.partial(source_canvas, gap=self.gap, pad_id=pad)
        outputs: list[list[int]] = [[] for _ in sources]
        calls = 0
        for first in range(0, len(order), batch_size):
            index = order[first : first + batch_size]
            batch = pad_pairs(
                [sources[i] for i in index],
                [[] for _ in index],
                pad_id=pad,
                length=self.length,
                prior=prior,
            )
            cond = Cond(
                prefix=torch.from_numpy(batch["prefix"]).to(self.device),
                prefix_mask=torch.from_numpy(batch["prefix_mask"]).to(self.device),
            )
            mask = torch.from_numpy(batch["target_mask"]).to(self.device)
            tokens = torch.zeros(mask.shape, dtype=torch.bool)  # the source tokens' positions
            for row, i in enumerate(index):
                tokens[row, [token_position(k, self.gap) for k in range(len(sources[i]))]] = True
            out = self.refine(
                torch.from_numpy(batch["prior"]).to(self.device),
                mask,
                detect=self.keep_detector(strength, cond=cond, attention_mask=mask),
                rounds=rounds,
                cond=cond,
                attention_mask=mask,
                generator=generator,
                callback=callback,
                no_pad=None if deletions else tokens.to(self.device),
                **sampling,
            )
            calls += out.network_calls
            for row, i in enumerate(index):
                outputs[i] = read_canvas(out.ids[row][mask[row]].tolist(), pad_id=pad)
            if progress is not None:
                progress(min(first + batch_size, len(order)), len(order))
        return outputs, calls

    def _pieces(self, line: str, n_tokens: int | None = None) -> list[str]:
        """`line` (stripped, non-empty; `n_tokens` of them if known) in pieces that fit the context with their
        rewrites, cut at spaces."""
        if n_tokens is None:
            n_tokens = len(self.tokenizer.encode(line))
        if n_tokens <= self.fits:
            return [line]
        fits = lambda text: len(self.tokenizer.encode(text)) <= self.fits  # noqa: E731
        pieces, current = [], ""
        for word in line.split():
            candidate = f"{current} {word}" if current else word
            if fits(candidate):
                current = candidate
                continue
            if current:
                pieces.append(current)
            if fits(word):
                current = word
            else:  # a word longer than the context: cut by characters (a token spells at least one)
                pieces += [p for p in chunk_text(word, self.fits) if p]
                current = ""
        return pieces + ([current] if current else [])

    @torch.no_grad()
    def marker_scores(
        self, x: torch.Tensor, text: torch.Tensor, label: int, *, passes: int = 4, generator=None
    ) -> torch.Tensor:
        """log p(x_i | no label) - log p(x_i | label) (B, L) at the `text` positions of ids x (B, L) (-inf
        elsewhere): how much the label disfavours each token, read with the token masked. The text positions are
        split into `passes` random groups, each masked in one pass (with both labels in one doubled call)."""
        B, L = x.shape
        mask_id, null = self.tokenizer.mask_id, self.model.config.n_labels
        group = torch.rand(B, L, generator=generator).to(x.device).argsort(dim=1) % passes
        scores = torch.full((B, L), float("-inf"), device=x.device)
        labels = torch.cat([torch.full((B,), label), torch.full((B,), null)]).to(x.device)
        for g in range(passes):
            hide = text & (group == g)
            xt = torch.where(hide, mask_id, x)
            logits = self.model(xt.repeat(2, 1), None, cond=Cond(label=labels)).float()
            logp = logits.log_softmax(dim=-1).gather(-1, x.repeat(2, 1)[..., None])[..., 0]
            with_label, without = logp.chunk(2)
            scores = torch.where(hide, without - with_label, scores)
        return scores

    @torch.no_grad()
    def move_attribute(
        self,
        sources: Sequence[Sequence[int]],
        label: int,
        *,
        strength: float,
        guidance: float,
        batch_size: int = 64,
        seed: int | None = 0,
        passes: int = 4,
        callback: Callable | None = None,
        progress: Callable[[int, int], None] | None = None,
        **sampling,
    ) -> tuple[list[list[int]], int]:
        """Move each source (token ids, at most `self.fits` of them) to `label`: the tokens of its
        `ceil(strength * words)` most label-disfavoured words (of those over `MARKER_NATS`) and `growth(n)`
        positions after it are regenerated under the label, the rest kept; a source without such words is kept whole.
        The markers are read in `passes` calls. Returns the rewrites' ids (PADs dropped) and the network calls."""
        generator = self.generator(seed)
        pad = self.tokenizer.pad_id
        outputs: list[list[int]] = []
        calls = 0
        for first in range(0, len(sources), batch_size):
            rows = sources[first : first + batch_size]
            B = len(rows)
            x = torch.full((B, self.positions), pad, dtype=torch.long)
            text = torch.zeros(B, self.positions, dtype=torch.bool)
            for i, row in enumerate(rows):
                x[i, : len(row)] = torch.tensor(row, dtype=torch.long)
                text[i, : len(row)] = True
            x, text = x.to(self.device), text.to(self.device)

            def detect(x: torch.Tensor, rows=rows, text=text) -> tuple[torch.Tensor, int]:
                """The label's markers and `growth(n)` positions after the text; a line without markers is kept."""
                scores = self.marker_scores(x, text, label, passes=passes, generator=generator).cpu()
                regenerate = torch.zeros(x.shape, dtype=torch.bool)
                for i, row in enumerate(rows):
                    markers = self._markers(row, scores[i], strength)
                    if markers.any():
                        regenerate[i, : len(row)] = markers
                        regenerate[i, len(row) : len(row) + growth(len(row))] = True
                return regenerate.to(self.device), passes

            out = self.refine(
                x,
                torch.ones_like(text),
                detect=detect,
                generator=generator,
                cond=Cond(label=torch.full((B,), label, device=self.device)),
                callback=callback,
                guidance=guidance,
                **sampling,
            )
            calls += out.network_calls
            outputs += [[i for i in row if i != pad] for row in out.ids.tolist()]
            if progress is not None:
                progress(first + B, len(sources))
        return outputs, calls

    def _markers(self, row: Sequence[int], scores: torch.Tensor, strength: float) -> torch.Tensor:
        """bool (len(row),): the tokens of the words to regenerate. A word's score is its tokens' highest; whitespace
        is never chosen."""
        pieces = [self.tokenizer.decode([i]) for i in row]
        words: list[list[int]] = []
        after_space = True
        for position, piece in enumerate(pieces):
            if not piece.strip():
                after_space = True
                continue
            if after_space or piece[0].isspace():
                words.append([])
            words[-1].append(position)
            after_space = piece[-1].isspace()
        chosen = torch.zeros(len(row), dtype=torch.bool)
        best = sorted(words, key=lambda w: -float(scores[w].max()))
        for word in best[: math.ceil(strength * len(words))]:
            if float(scores[word].max()) > MARKER_NATS:
                chosen[word] = True
        return chosen
