"""Synthetic captioning scenes: captions and their parse, the attribute score, the compositional split, rendering
and scripts/make_scenes.py."""

from __future__ import annotations

import colorsys
import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest

from textdiffusion.tasks.caption import scenes as S
from textdiffusion.tasks.caption.images import read_captions
from textdiffusion.tasks.caption.scenes import Group, Scene

ROOT = Path(__file__).resolve().parents[3]


def _scenes(n: int, seed: int = 0, *, pairs=S.ALL_PAIRS, required=None) -> list[Scene]:
    rng = np.random.default_rng(seed)
    return [S.random_scene(rng, pairs=pairs, required=required) for _ in range(n)]


def test_captions_follow_the_grammar():
    one = Scene((Group(1, "red", "circle", "left"),), "noise", 0)
    two = Scene(
        (Group(2, "blue", "square", "top"), Group(1, "yellow", "star", "bottom")), "checker", 0
    )
    three = Scene((Group(3, "green", "triangle", "middle"),), "stripes", 0)
    assert S.caption(one) == "a red circle on the left"
    assert S.caption(two) == "two blue squares at the top and a yellow star at the bottom"
    assert S.caption(three) == "three green triangles in the middle"
    assert S.caption(Scene((Group(1, "orange", "star", "right"),), "gradient", 0)) == (
        "an orange star on the right"
    )


def test_the_true_caption_names_every_attribute():
    for scene in _scenes(300):
        text = S.caption(scene)
        assert S.attribute_score(text, scene) == (4 * len(scene.groups),) * 2, text
        parsed = S.parse(text.upper() + ".")  # case and a final period do not matter
        assert [(p.count, p.colour, p.shape, p.position) for p in parsed] == [
            (g.count, g.colour, g.shape, g.position) for g in scene.groups
        ]


def test_each_wrong_or_missing_word_costs_its_attribute():
    scene = Scene(
        (Group(2, "blue", "square", "top"), Group(1, "yellow", "star", "bottom")), "noise", 0
    )
    assert S.attribute_score(
        "two red squares at the top and a yellow star at the bottom", scene
    ) == (7, 8)
    assert S.attribute_score(
        "three blue squares at the top and a yellow star at the bottom", scene
    ) == (7, 8)
    assert S.attribute_score(
        "two blue circles at the top and a yellow star at the bottom", scene
    ) == (7, 8)
    assert S.attribute_score(
        "two blue squares on the left and a yellow star at the bottom", scene
    ) == (7, 8)
    # A left-out colour costs the colour only; a missing group costs all four; an extra group costs nothing.
    assert S.attribute_score("two squares at the top and a yellow star at the bottom", scene) == (
        7,
        8,
    )
    assert S.attribute_score("two blue squares at the top", scene) == (4, 8)
    extra = (
        "two blue squares at the top and a yellow star at the bottom and a red circle on the left"
    )
    assert S.attribute_score(extra, scene) == (8, 8)
    assert S.attribute_score("", scene) == (0, 8)
    assert (
        S.attribute_score("a yellow star at the bottom and two blue squares at the top", scene)[0]
        == 0
    )
    rates = S.attribute_rates(["two red squares at the top", S.caption(scene)], [scene, scene])
    assert rates == {
        "overall": 11 / 16,
        "count": 3 / 4,
        "colour": 2 / 4,
        "shape": 3 / 4,
        "position": 3 / 4,
    }
    with pytest.raises(ValueError, match="2 captions for 1 scenes"):
        S.attribute_rates(["a", "b"], [scene])


def test_scenes_refuse_what_captions_cannot_say():
    with pytest.raises(ValueError, match="share both colour and shape"):
        Scene((Group(1, "red", "star", "left"), Group(2, "red", "star", "right")), "noise", 0)
    with pytest.raises(ValueError, match="two groups are at"):
        Scene((Group(1, "red", "star", "left"), Group(2, "red", "circle", "top")), "noise", 0)
    with pytest.raises(ValueError, match="unknown colour 'pink'"):
        Group(1, "pink", "star", "left")
    with pytest.raises(ValueError, match="count is 1, 2 or 3"):
        Group(4, "red", "star", "left")


def test_held_out_pairs_are_only_in_validation_scenes():
    train, held = S.split_pairs(0)
    assert len(held) == 6 and len(train) == 26 and not set(train) & set(held)
    assert S.split_pairs(0) == (train, held) and S.split_pairs(1) != (train, held)
    for colour in S.COLOURS:  # every colour and shape keeps training partners
        assert sum(c == colour for c, _ in train) >= 3
    for shape in S.SHAPES:
        assert sum(s == shape for _, s in train) >= 6
    assert all(not S.held_out_in(s, held) for s in _scenes(400, pairs=train))
    valid = _scenes(400, seed=1, required=held)
    assert all(S.held_out_in(s, held) for s in valid)
    assert {g.pair for s in valid for g in s.groups} >= set(held)
    assert {len(s.groups) for s in valid} == {1, 2}


def test_layouts_keep_objects_apart_and_in_their_region():
    """Objects lie in their half without touching; a lone group sits halfway along the axis its position does
    not name ("on the left" is not in a corner), and "in the middle" is centred both ways."""
    rng = np.random.default_rng(0)
    size = 96
    for position in S.POSITIONS:
        for count in (1, 2, 3):
            for shape in S.SHAPES:
                group = Group(count, "red", shape, position)
                for alone in (True, False):
                    placed = S._layout(group, size, rng, alone=alone)
                    assert len(placed) == count
                    lo = np.array(
                        [(x - S._RADIUS[shape] * s, y - S._RADIUS[shape] * s) for x, y, s in placed]
                    )
                    hi = np.array(
                        [(x + S._RADIUS[shape] * s, y + S._RADIUS[shape] * s) for x, y, s in placed]
                    )
                    assert lo.min() >= 0 and hi.max() <= size
                    assert all(size / 6 * 0.9 <= s <= size / 4.5 for _, _, s in placed)
                    half = {
                        "left": hi[:, 0].max() <= size / 2,
                        "right": lo[:, 0].min() >= size / 2,
                        "top": hi[:, 1].max() <= size / 2,
                        "bottom": lo[:, 1].min() >= size / 2,
                    }
                    assert half.get(position, True)
                    centre = (lo.min(0) + hi.max(0)) / 2 / size  # of the group's bounding box
                    if position == "middle":
                        assert np.abs(centre - 0.5).max() <= 0.04 + 1e-9
                    elif alone:
                        free = 1 if position in ("left", "right") else 0
                        assert abs(centre[free] - 0.5) <= 0.1 + 1e-9
                    for i, (x, y, s) in enumerate(placed):
                        for x2, y2, s2 in placed[:i]:
                            gap = math.hypot(x - x2, y - y2) - S._RADIUS[shape] * (s + s2)
                            assert gap > 0


def test_render_is_seeded_and_sized():
    scene = _scenes(1, seed=3)[0]
    a = S.render(scene, 96, rng=np.random.default_rng(7))
    b = S.render(scene, 96, rng=np.random.default_rng(7))
    assert a.mode == "RGB" and a.size == (96, 96)
    assert np.array_equal(np.asarray(a), np.asarray(b))
    assert not np.array_equal(
        np.asarray(a), np.asarray(S.render(scene, 96, rng=np.random.default_rng(8)))
    )
    assert np.array_equal(np.asarray(S.render(scene, 64)), np.asarray(S.render(scene, 64)))
    assert S.render(scene, 64).size == (64, 64)


@pytest.mark.parametrize("background", S.BACKGROUNDS)
def test_colours_show_on_muted_backgrounds(background):
    """A red and a blue group differ only where the objects are, and read as red and as blue there; the
    background (the right side, away from a group on the left) is muted, in mid tones."""
    for seed in range(3):
        red = Scene((Group(3, "red", "circle", "left"),), background, seed)
        blue = Scene((Group(3, "blue", "circle", "left"),), background, seed)
        a = np.asarray(S.render(red, 96), dtype=np.float64)
        b = np.asarray(S.render(blue, 96), dtype=np.float64)
        differ = np.abs(a - b).sum(-1) > 30
        assert differ.sum() > 3 * 150  # three circles of diameter >= 16
        assert not differ[:, 48:].any()
        assert (a[differ][:, 0] > a[differ][:, 2]).mean() > 0.9
        assert (b[differ][:, 2] > b[differ][:, 0]).mean() > 0.9
        side = a[:, 56:].reshape(-1, 3) / 255
        hsv = np.array([colorsys.rgb_to_hsv(*p) for p in side[::7]])
        assert hsv[:, 1].mean() < 0.25 and 0.42 < hsv[:, 2].mean() < 0.82
        white = Scene((Group(1, "white", "square", "middle"),), background, seed)
        black = Scene((Group(1, "black", "square", "middle"),), background, seed)
        centre = (slice(47, 49), slice(47, 49))
        assert np.asarray(S.render(white, 96))[centre].min() > side.max() * 255 + 15
        assert np.asarray(S.render(black, 96))[centre].max() < side.min() * 255 - 15


def _make_scenes():
    spec = importlib.util.spec_from_file_location(
        "make_scenes", ROOT / "scripts" / "make_scenes.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def test_make_scenes_writes_the_tables_and_refuses_a_full_folder(tmp_path, capsys):
    main = _make_scenes()
    out = tmp_path / "scenes"
    args = ["--train", "6", "--valid", "4", "--size", "32", "--seed", "1"]
    assert main([str(out), *args]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == ["README.md", "images", "train.tsv", "valid.jsonl", "valid.tsv"]
    train = (out / "train.tsv").read_text().splitlines()
    assert train[0] == "file_name\tcaption" and train[1].startswith("images/train/00000.png\t")
    pairs = read_captions([out / "train.tsv"])
    assert len(pairs) == 6 and all(p.is_file() for p, _ in pairs)
    scenes = S.load_scenes(out / "valid.jsonl")
    valid = read_captions([out / "valid.tsv"])
    assert [S.caption(s) for s in scenes] == [c for _, c in valid]
    from PIL import Image

    with Image.open(valid[0][0]) as image:  # a scene alone redraws its image
        assert np.array_equal(np.asarray(image), np.asarray(S.render(scenes[0], 32)))
    _, held = S.split_pairs(1)
    assert all(S.held_out_in(s, held) for s in scenes)
    assert not {(g.colour, g.shape) for _, c in pairs for g in S.parse(c)} & set(held)
    assert "held out" in capsys.readouterr().out.lower()
    first = (out / "images" / "valid" / "00003.png").read_bytes()

    with pytest.raises(SystemExit, match="is not empty; pass --overwrite"):
        main([str(out), *args])
    assert main([str(out), *args, "--overwrite", "--train", "2"]) == 0
    assert len(list((out / "images" / "train").iterdir())) == 2
    assert (
        out / "images" / "valid" / "00003.png"
    ).read_bytes() == first  # the same seed, the same files
