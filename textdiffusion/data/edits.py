"""The canvas of a source-start rewrite: the source's tokens, each followed by `gap` insertion slots.

A model that refines its source (style transfer, correction) writes its output on a canvas laid out from the source
alone, so the same layout exists at training and at inference:

    [PAD]*gap  s_1 [PAD]*gap  s_2 [PAD]*gap  ...  s_n [PAD]*gap        (gap + n * (1 + gap) positions)

The source canvas is the prior the reverse process starts from; the output is the canvas with its PADs dropped, so a
canvas nobody edited reads back as the source, token for token. A training target is written on the same canvas by
a token-level edit alignment of the target to the source (difflib's matching blocks): kept and replaced tokens sit
on their source token's position, a deleted token becomes PAD, inserted tokens go into the slots after the token
before them (or the front slots), and a replacement longer than its source span spills into the span's own slots.
A pair whose edits do not fit (more than `gap` tokens inserted in one place, or a replacement more than 1 + gap
times its span) has no canvas and is left out of training.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence


def canvas_length(n_source: int, gap: int) -> int:
    """Positions of the canvas of a source of `n_source` tokens."""
    return gap + n_source * (1 + gap)


def token_position(i: int, gap: int) -> int:
    """Canvas position of source token i."""
    return gap + i * (1 + gap)


def source_canvas(source: Sequence[int], gap: int, *, pad_id: int) -> list[int]:
    """The prior canvas: the source tokens with PAD in every insertion slot."""
    canvas = [pad_id] * canvas_length(len(source), gap)
    for i, token in enumerate(source):
        canvas[token_position(i, gap)] = token
    return canvas


def _slots_before(i: int, gap: int) -> list[int]:
    """The insertion slots just before source token i (after token i - 1, or the front slots)."""
    end = token_position(i, gap)
    return list(range(end - gap, end))


def edit_canvas(
    source: Sequence[int], target: Sequence[int], gap: int, *, pad_id: int
) -> list[int] | None:
    """The target written on the source's canvas (see the module), or None when its edits do not fit."""
    canvas = [pad_id] * canvas_length(len(source), gap)
    matcher = difflib.SequenceMatcher(a=list(source), b=list(target), autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        piece = list(target[j1:j2])
        if op == "equal":
            for k, token in enumerate(piece):
                canvas[token_position(i1 + k, gap)] = token
        elif op == "insert":
            if len(piece) > gap:
                return None
            slots = _slots_before(i1, gap)
            for k, token in enumerate(piece):
                canvas[slots[k]] = token
        elif op == "replace":
            k_source = i2 - i1
            if len(piece) > k_source * (1 + gap):
                return None
            # one target token on each source position in turn; the surplus fills the slots after them, in order
            extra = max(0, len(piece) - k_source)
            positions = []
            for i in range(i1, i2):
                positions.append(token_position(i, gap))
                use = min(gap, extra)
                positions += [token_position(i, gap) + 1 + u for u in range(use)]
                extra -= use
            for position, token in zip(positions, piece):
                canvas[position] = token
        # "delete": the source tokens' positions stay PAD
    return canvas


def read_canvas(canvas: Sequence[int], *, pad_id: int) -> list[int]:
    """The text of a canvas: its tokens without the PADs."""
    return [token for token in canvas if token != pad_id]
