"""Source-start style transfer (`train --edit-gap`): the rewrite is the source refined on its canvas. A toy style
(cat -> cow, red -> blue, every other word kept) that a tiny model learns in a few hundred steps; with nothing to
change, or at strength 0, the output is the input byte for byte."""

from __future__ import annotations

import random

import pytest

from tests.tasks.style.test_style import WORDS, train_toy


def edit(source: str) -> str:
    return " ".join({"cat": "cow", "red": "blue"}.get(w, w) for w in source.split())


def toy_edits(n: int, seed: int = 0) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    sources = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 4))) for _ in range(n)]
    return [(s, edit(s)) for s in sources]


@pytest.fixture(scope="module")
def edit_dir(tmp_path_factory):
    from textdiffusion.config import StyleConfig

    return train_toy(
        tmp_path_factory.mktemp("edits"), toy_edits(400), task_config=StyleConfig(gap=2)
    )


def test_a_source_start_model_learns_the_edits_and_keeps_the_rest(edit_dir):
    from textdiffusion.checkpoint import read_config
    from textdiffusion.pipelines import StylePipeline

    out, result = edit_dir
    assert read_config(out).task_config.gap == 2
    assert result.valid_nll < 0.3  # nats per scored canvas position
    pipe = StylePipeline.from_pretrained(out)
    sources = [s for s, _ in toy_edits(30, seed=7)]
    got = pipe(sources, seed=0).texts
    right = sum(g == edit(s) for g, s in zip(got, sources))
    assert right >= 24, list(zip(sources, got))
    # nothing to change, or no strength: the input comes back as it is, odd spacing included
    kept = ["the dog  ran to a mat ", "big house"]
    assert pipe(kept).texts == [k.strip() for k in kept]
    assert pipe(["the  cat sat"], strength=0.0).texts == ["the  cat sat"]
    assert (
        pipe(["the  cat sat"], strength=0.0).network_calls == 1
    )  # the detector's read, no sampling


def test_source_start_bad_input(edit_dir):
    from textdiffusion.pipelines import InputError, StylePipeline

    pipe = StylePipeline.from_pretrained(edit_dir[0])
    with pytest.raises(InputError, match="strength must be in"):
        pipe(["the cat"], strength=1.5)
    with pytest.raises(InputError, match="rounds"):
        pipe(["the cat"], rounds=0)
    out = pipe(["", "the cat \u2603", " ".join(["house"] * 40)])
    assert out.texts[0] == "" and out.texts[1] == "the cat \u2603" and len(out.warnings) == 1
    assert out.texts[2] == " ".join(["house"] * 40)  # cut into pieces that fit, all kept


def test_edit_gap_is_for_aligned_pairs():
    from textdiffusion.cli.common import CLIError
    from textdiffusion.cli.train import TrainArgs, run_settings
    from textdiffusion.config import DataConfig

    with pytest.raises(CLIError, match="--edit-gap"):
        run_settings(TrainArgs(out="x", task="generate", edit_gap=2))
    with pytest.raises(CLIError, match="--edit-gap"):
        run_settings(
            TrainArgs(out="x", task="style", edit_gap=2, data=DataConfig(labels=("a", "b")))
        )
