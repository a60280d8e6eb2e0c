"""Style transfer: rewrite text in the style a model learnt from aligned (source, target) lines, e.g. modern English
into Shakespeare's (`textdiffusion train --task style --data modern.txt --targets original.txt`).

The source line is the conditioning prefix, never noised; the rewrite is generated from all-masked target positions
(their number set by the model's length rule, the rest learnt PADs), as in denoising. Each line of a text is
rewritten on its own; empty lines stay empty, a line too long for the model's context is rewritten in pieces cut at
spaces, and a line with characters the model never saw is left as it is (with a warning).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence

from textdiffusion.data.pairs import LengthRule, chunk_text
from textdiffusion.pipelines.base import DiffusionPipeline, InputError, tokenizer_coverage


@dataclasses.dataclass
class StyleOutput:
    texts: list[str]
    seconds: float
    network_calls: int
    warnings: list[str] = dataclasses.field(default_factory=list)
    """Lines returned unchanged, and why (characters the model never saw)."""


class StylePipeline(DiffusionPipeline):
    """`pipe(["I will not fight with you."])` -> StyleOutput with the rewritten texts."""

    task = "style"

    def __init__(self, pretrained) -> None:
        super().__init__(pretrained)
        if self.config.task != self.task:
            raise InputError(
                f"{pretrained.path} is a {self.config.task!r} model; style transfer needs one trained with "
                "`textdiffusion train --task style`"
            )
        self.length = LengthRule(**self.config.task_config)
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
        **sampling,
    ) -> StyleOutput:
        """Rewrite each text, line by line. `sampling`: steps, sampler, temperature, threshold (None: the model's
        saved defaults)."""
        texts = [texts] if isinstance(texts, str) else list(texts)
        if not all(isinstance(t, str) for t in texts):
            raise InputError("texts must be strings")
        if batch_size < 1:
            raise InputError(f"batch_size must be at least 1, got {batch_size}")
        lines = [line.strip() for text in texts for line in text.split("\n")]
        usable, warnings = [], []  # distinct non-empty lines, each encoded once
        for line in dict.fromkeys(line for line in lines if line):
            unknown = tokenizer_coverage(self.tokenizer, line)
            if unknown:  # left as it is, not dropped: one odd line must not fail a whole file
                warnings.append(
                    f"left unchanged (characters the model never saw, {''.join(unknown)!r}): {line!r}"
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
        outputs, calls = self.generate_targets(
            [ids[piece] for piece in todo],
            self.length,
            batch_size=batch_size,
            seed=seed,
            callback=callback,
            progress=progress,
            **sampling,
        )
        table = dict(zip(todo, (self.tokenizer.decode(row).strip() for row in outputs)))
        rewritten = [
            " ".join(table[piece] for piece in plans[line]) if line in plans else line
            for line in lines
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

    def _pieces(self, line: str, n_tokens: int | None = None) -> list[str]:
        """`line` (stripped, non-empty; `n_tokens` of them if known) in pieces that fit the context with their
        rewrites, cut at spaces."""
        if n_tokens is None:
            n_tokens = len(self.tokenizer.encode(line))
        if n_tokens <= self.fits:
            return [line]
        # a token spells at least one character, so pieces of `fits` characters fit (byte-level BPE aside,
        # which generate_targets still refuses with a message)
        return [piece.strip() for piece in chunk_text(line, self.fits) if piece.strip()]
