"""The canvas of a source-start rewrite: its layout, the target written on it by edit alignment, and reading back."""

from __future__ import annotations

import random

from textdiffusion.data.edits import (
    canvas_length,
    edit_canvas,
    read_canvas,
    source_canvas,
    token_position,
)

PAD = 0


def test_the_source_canvas_reads_back_as_the_source():
    source = [5, 6, 7]
    canvas = source_canvas(source, 2, pad_id=PAD)
    assert canvas == [0, 0, 5, 0, 0, 6, 0, 0, 7, 0, 0]
    assert len(canvas) == canvas_length(3, 2) and canvas[token_position(1, 2)] == 6
    assert read_canvas(canvas, pad_id=PAD) == source
    assert source_canvas([], 2, pad_id=PAD) == [0, 0]


def test_edits_land_on_the_source_positions_and_their_slots():
    source = [5, 6, 7]
    same = edit_canvas(source, source, 2, pad_id=PAD)
    assert same == source_canvas(source, 2, pad_id=PAD)
    # insert 8 at the front, replace 6 -> 9, delete 7
    canvas = edit_canvas(source, [8, 5, 9], 2, pad_id=PAD)
    assert canvas == [8, 0, 5, 0, 0, 9, 0, 0, 0, 0, 0]
    assert read_canvas(canvas, pad_id=PAD) == [8, 5, 9]
    # a replacement longer than its span uses the span's own slots
    longer = edit_canvas(source, [5, 1, 2, 3, 7], 2, pad_id=PAD)
    assert read_canvas(longer, pad_id=PAD) == [5, 1, 2, 3, 7]
    # more inserted in one place than the slots hold: no canvas
    assert edit_canvas(source, [5, 1, 2, 3, 6, 7], 2, pad_id=PAD) is None
    assert edit_canvas([5], [1, 2, 3, 4], 2, pad_id=PAD) is None


def test_every_canvas_made_reads_back_as_its_target():
    rng = random.Random(0)
    made = 0
    for _ in range(500):
        source = [rng.randint(1, 6) for _ in range(rng.randint(0, 12))]
        target = list(source)
        for _ in range(rng.randint(0, 4)):  # random substitutions, deletions and insertions
            op, i = rng.random(), rng.randint(0, len(target))
            if op < 0.4 and i < len(target):
                target[i] = rng.randint(1, 9)
            elif op < 0.7 and i < len(target):
                del target[i]
            else:
                target.insert(i, rng.randint(1, 9))
        canvas = edit_canvas(source, target, 2, pad_id=PAD)
        if canvas is None:
            continue
        made += 1
        assert len(canvas) == canvas_length(len(source), 2)
        assert read_canvas(canvas, pad_id=PAD) == target
    assert made > 400
