"""Style transfer on aligned pairs: reading the pairs, the length rule, the resumable stream, training, the pipeline
and the `style` command. The style learnt here is a toy one (lower case -> upper case with a "!"), which a tiny model
learns in a few hundred steps."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from textdiffusion.data import DataError, read_line_pairs
from textdiffusion.tasks.style.pairs import LengthRule, ParallelPairStream

WORDS = "the cat sat on a mat and dog ran to big red house".split()


def toy_pairs(n: int, seed: int = 0) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    sources = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 5))) for _ in range(n)]
    return [(s, s.upper() + "!") for s in sources]


def write_pairs(folder, pairs, name="train"):
    source, target = folder / f"{name}.src", folder / f"{name}.tgt"
    source.write_text("\n".join(s for s, _ in pairs) + "\n")
    target.write_text("\n".join(t for _, t in pairs) + "\n")
    return source, target


def train_toy(root, pairs, **settings):
    """A tiny style model trained for 300 steps (about 5 s) on toy `pairs` written in `root`: (folder, result).
    `settings`: more `train` arguments (sample, task_config)."""
    from textdiffusion.config import DataConfig, ModelConfig, TrainConfig
    from textdiffusion.training import train

    source, target = write_pairs(root, pairs)
    out = root / "model"
    result = train(
        DataConfig(data=(str(source),), targets=(str(target),), valid_fraction=0.1),
        TrainConfig(
            steps=300,
            batch_size=16,
            lr=2e-3,
            warmup_steps=20,
            eval_every=300,
            save_every=300,
            log_every=100,
            ema_decay=0.0,
            device="cpu",
        ),
        out=out,
        task="style",
        model=ModelConfig(n_layers=2, n_heads=2, dim=64, max_len=96),
        progress=False,
        **settings,
    )
    return out, result


@pytest.fixture(scope="module")
def style_dir(tmp_path_factory):
    """A tiny style model trained for 300 steps (about 5 s) on 400 toy pairs."""
    from textdiffusion.config import SampleConfig

    return train_toy(
        tmp_path_factory.mktemp("style"),
        toy_pairs(400),
        sample=SampleConfig(sampler="confidence", steps=16, threshold=0.9, temperature=0.1),
    )


def test_read_line_pairs_aligns_files_and_says_what_is_wrong(tmp_path):
    (tmp_path / "a.txt").write_text("one\n\nthree\nfour\n")
    (tmp_path / "b.txt").write_text("ONE\nTWO\nTHREE\n\n")
    pairs = read_line_pairs([str(tmp_path / "a.txt")], [str(tmp_path / "b.txt")])
    assert pairs == [("one", "ONE"), ("three", "THREE")]  # a pair with an empty side is skipped
    (tmp_path / "c.txt").write_text("ONE\nTWO\n")
    with pytest.raises(DataError, match="a.txt has 4 lines but .*c.txt has 2"):
        read_line_pairs([str(tmp_path / "a.txt")], [str(tmp_path / "c.txt")])
    with pytest.raises(DataError, match="2 source files but 1 target files"):
        read_line_pairs(
            [str(tmp_path / "a.txt"), str(tmp_path / "b.txt")], [str(tmp_path / "c.txt")]
        )


def test_length_rule_fits_the_longer_targets():
    rule = LengthRule.fit([([0] * 10, [0] * 31)] * 95 + [([0] * 10, [0] * 80)] * 5)
    assert rule.ratio == 1.5  # (31 - slack 16) / 10; the 5% outliers are beyond the 90% quantile
    assert rule(10) == 15 + 16
    assert LengthRule.fit([([0] * 10, [0] * 5)] * 10).ratio == 1.0  # never shorter than the source


def test_parallel_stream_covers_every_pair_and_resumes():
    pairs = [([i + 3] * (1 + i % 5), [i + 3] * (2 + i % 3)) for i in range(24)]
    make = dict(pad_id=0, length=LengthRule(ratio=1.0, slack=3), batch_size=4, seed=7)
    stream = ParallelPairStream(pairs, **make)
    epoch = [stream.next_batch() for _ in range(6)]
    seen = sorted(int(row[0]) for batch in epoch for row in batch["prefix"])
    assert seen == list(range(3, 27))  # every pair once per epoch
    for batch in epoch:
        n = batch["prefix_mask"].sum(1)
        assert (
            batch["target_mask"].sum(1) == n + 3
        ).all()  # the length rule sets the target positions
    state = stream.state_dict()
    expected = [stream.next_batch() for _ in range(8)]  # into the next epoch
    resumed = ParallelPairStream(pairs, **make)
    resumed.load_state_dict(state)
    for a, b in zip(expected, [resumed.next_batch() for _ in range(8)]):
        assert all(np.array_equal(a[k], b[k]) for k in a)
    # two ranks split each global batch between them
    halves = [ParallelPairStream(pairs, **make, rank=r, world_size=2).next_batch() for r in (0, 1)]
    whole = ParallelPairStream(pairs, **make).next_batch()
    assert sorted(np.concatenate([h["prefix"][:, 0] for h in halves])) == sorted(
        whole["prefix"][:, 0]
    )


def test_style_training_learns_the_rewrite_and_the_pipeline_applies_it(style_dir):
    from textdiffusion.checkpoint import read_config
    from textdiffusion.pipelines import StylePipeline

    out, result = style_dir
    assert result.valid_nll < 0.5  # nats per target token; an untrained model is at ln(V) ~ 5.7
    config = read_config(out)
    assert config.task == "style" and config.task_config.ratio >= 1.0
    pipe = StylePipeline.from_pretrained(out)
    sources = ["the cat sat on a mat", "big red dog", "", "house and mat"]
    result = pipe(["\n".join(sources[:3]), sources[3]], seed=0)
    lines = result.texts[0].split("\n") + [result.texts[1]]
    assert lines[2] == ""  # an empty line stays empty
    expected = [s.upper() + "!" for s in sources]
    right = sum(a == b for a, b in zip(lines, expected) if b != "!")
    assert right >= 2, lines
    assert result.network_calls > 0
    odd = pipe(["the cat \u2603", "the cat"])
    assert (
        odd.texts[0] == "the cat \u2603"
        and len(odd.warnings) == 1
        and "never saw" in odd.warnings[0]
    )
    long = " ".join(
        ["house"] * 40
    )  # 239 characters: longer than the context holds with its rewrite
    pieces = pipe._pieces(long)
    assert len(pieces) > 1 and " ".join(pieces) == long
    assert all(len(p) + pipe.length(len(p)) <= pipe.max_len for p in pieces)
    (text,) = pipe(long).texts
    assert "\n" not in text and len(text) > 100


def test_style_pipeline_refuses_other_models(trained_dir):
    from textdiffusion.pipelines import InputError, StylePipeline

    with pytest.raises(InputError, match="'generate' model; style transfer needs"):
        StylePipeline.from_pretrained(trained_dir)


def test_style_training_needs_aligned_targets(tmp_path):
    from textdiffusion.config import DataConfig, TrainConfig
    from textdiffusion.training import train

    source, _ = write_pairs(tmp_path, toy_pairs(10))
    with pytest.raises(DataError, match="--task style needs --targets"):
        train(
            DataConfig(data=(str(source),)),
            TrainConfig(steps=1),
            out=tmp_path / "run",
            task="style",
        )


def test_style_command(style_dir, tmp_path, capsys):
    from textdiffusion.cli import main

    out, _ = style_dir
    main(["style", "--model", str(out), "--json", "the dog ran", "a big mat"])
    data = json.loads(capsys.readouterr().out)
    assert len(data["texts"]) == 2 and data["network_calls"] > 0
    source = tmp_path / "in.txt"
    source.write_text("the cat\n\nred house\n")
    target = tmp_path / "out.txt"
    main(["style", "--model", str(out), "--file", str(source), "--out", str(target)])
    assert target.read_text().split("\n")[1] == "" and target.read_text().count("\n") == 3
    assert "3 lines rewritten" in capsys.readouterr().err
    # the default model is the shipped shakespeare-style; --strength 0 gives the input back byte for byte
    main(["style", "Keep  this, exactly!", "--strength", "0"])
    assert capsys.readouterr().out == "Keep  this, exactly!\n"
    with pytest.raises(SystemExit):
        main(["style", "--model", str(out), "--strength", "0.5", "the cat"])
    assert "--strength" in capsys.readouterr().err


def test_style_run_resumes_with_its_length_rule(tmp_path):
    from textdiffusion.checkpoint import read_config
    from textdiffusion.config import DataConfig, ModelConfig, TrainConfig
    from textdiffusion.training import train

    source, target = write_pairs(tmp_path, toy_pairs(60))
    data = DataConfig(data=(str(source),), targets=(str(target),), valid_fraction=0.0)
    settings = dict(batch_size=8, eval_every=0, save_every=5, log_every=5, device="cpu")
    model = ModelConfig(n_layers=1, n_heads=2, dim=32, max_len=96)
    out = tmp_path / "run"
    train(
        data, TrainConfig(steps=5, **settings), out=out, task="style", model=model, progress=False
    )
    rule = read_config(out).task_config
    # more pairs, with longer targets: a resumed run keeps the rule it started with
    write_pairs(tmp_path, [(s, t + " " + t) for s, t in toy_pairs(60)])
    result = train(data, TrainConfig(steps=10, **settings), out=out, resume=True, progress=False)
    assert result.step == 10 and read_config(out).task_config == rule
