"""Style transfer: rewrite text in the style a model learnt from aligned (source, target) lines, e.g. modern English
into Shakespeare's (`textdiffusion train --task style --data modern.txt --targets original.txt`).

The source line is the conditioning prefix, never noised; the rewrite is generated from all-masked target positions
(their number set by the model's length rule, the rest learnt PADs), as in denoising. Each line of a text is
rewritten on its own; empty lines stay empty.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence

from textdiffusion.data.pairs import LengthRule
from textdiffusion.pipelines.base import DiffusionPipeline, InputError, tokenizer_coverage


@dataclasses.dataclass
class StyleOutput:
    texts: list[str]
    seconds: float
    network_calls: int


class StylePipeline(DiffusionPipeline):
    """`pipe(["I will not fight with you."])` -> StyleOutput with the rewritten texts."""

    task = "style"

    def __init__(self, pretrained) -> None:
        super().__init__(pretrained)
        if self.config.task != "style":
            raise InputError(
                f"{pretrained.path} is a {self.config.task!r} model; style transfer needs one trained with "
                "`textdiffusion train --task style`"
            )
        self.length = LengthRule(**self.config.task_config)

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
        todo = list(dict.fromkeys(line for line in lines if line))
        for line in todo:
            unknown = tokenizer_coverage(self.tokenizer, line)
            if unknown:
                raise InputError(
                    f"characters the model never saw in training: {''.join(unknown)!r} in {line[:40]!r}"
                )
        start = time.perf_counter()
        outputs, calls = self.generate_targets(
            self.tokenizer.encode_batch(todo),
            self.length,
            batch_size=batch_size,
            seed=seed,
            callback=callback,
            progress=progress,
            **sampling,
        )
        table = dict(zip(todo, (self.tokenizer.decode(ids).strip() for ids in outputs)))
        rewritten, position = [], 0
        for text in texts:
            n = text.count("\n") + 1
            rewritten.append(
                "\n".join(table.get(line, "") for line in lines[position : position + n])
            )
            position += n
        return StyleOutput(
            texts=rewritten, seconds=time.perf_counter() - start, network_calls=calls
        )
