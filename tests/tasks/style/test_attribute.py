"""Attribute transfer (style transfer from labels alone): labelled lines, the label stream with dropout, classifier-free
guidance, and moving a sentence to the other label. The toy attribute is the sentiment of "the soup was cold ." /
"the soup was great .": the adjective carries the label, the noun is content to keep."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from textdiffusion.data import DataError
from textdiffusion.tasks.style.pairs import LabelStream

NOUNS = "food soup staff service room pizza coffee waiter music place".split()
ADJECTIVES = {
    "negative": "bad awful cold rude".split(),
    "positive": "good great nice lovely".split(),
}


def write_reviews(folder, n: int = 300, seed: int = 0):
    rng = random.Random(seed)
    paths = []
    for name, adjectives in ADJECTIVES.items():
        lines = [f"the {rng.choice(NOUNS)} was {rng.choice(adjectives)} ." for _ in range(n)]
        path = folder / f"{name}.txt"
        path.write_text("\n".join(lines) + "\n")
        paths.append(str(path))
    return paths


@pytest.fixture(scope="module")
def attribute_dir(tmp_path_factory):
    """A tiny label-conditioned model of the toy reviews (word-sized BPE tokens), about 10 s of training."""
    from textdiffusion.config import DataConfig, ModelConfig, SampleConfig, TrainConfig
    from textdiffusion.training import train

    root = tmp_path_factory.mktemp("attribute")
    out = root / "model"
    result = train(
        DataConfig(
            data=tuple(write_reviews(root)),
            labels=("negative", "positive"),
            tokenizer="bpe",
            bpe_vocab_size=400,
            valid_fraction=0.1,
        ),
        TrainConfig(
            steps=300,
            batch_size=32,
            lr=3e-3,
            warmup_steps=30,
            eval_every=300,
            save_every=300,
            log_every=100,
            device="cpu",
        ),
        out=out,
        task="style",
        model=ModelConfig(n_layers=2, n_heads=2, dim=64, max_len=32),
        sample=SampleConfig(sampler="confidence", steps=8, threshold=0.9, temperature=0.1),
        progress=False,
    )
    return out, result


def test_label_stream_drops_labels_and_resumes():
    items = [(i % 2, [10 + i, 5]) for i in range(40)]
    make = dict(n_labels=2, length=4, pad_id=0, batch_size=8, seed=1)
    stream = LabelStream(items, dropout=0.25, **make)
    batches = [stream.next_batch() for _ in range(50)]
    labels = np.concatenate([b["label"] for b in batches])
    firsts = np.concatenate([b["target"][:, 0] for b in batches])
    kept = labels != 2
    assert np.array_equal(
        labels[kept], (firsts[kept] - 10) % 2
    )  # each line keeps its own label ...
    assert 0.15 < (~kept).mean() < 0.35  # ... or the null label, a quarter of the time
    assert batches[0]["target"].shape == (8, 4) and batches[0]["target"][0, 2:].tolist() == [0, 0]
    state = stream.state_dict()
    expected = [stream.next_batch() for _ in range(6)]
    resumed = LabelStream(items, dropout=0.25, **make)
    resumed.load_state_dict(state)
    for a, b in zip(expected, [resumed.next_batch() for _ in range(6)]):
        assert all(np.array_equal(a[k], b[k]) for k in a)
    valid = LabelStream(items, **make).next_batch()
    assert np.array_equal(valid["label"], (valid["target"][:, 0] - 10) % 2)  # no dropout by default


def test_classifier_free_guidance_extrapolates_log_probabilities():
    from textdiffusion.config import ModelConfig
    from textdiffusion.networks import Cond, DiffusionTransformer
    from textdiffusion.tasks.pipeline import ClassifierFreeGuidance

    torch.manual_seed(0)
    model = DiffusionTransformer(
        ModelConfig(vocab_size=20, n_layers=1, n_heads=2, dim=32, max_len=8, n_labels=2)
    ).eval()
    torch.nn.init.normal_(model.label_embed.weight, std=1.0)  # labels that matter
    x = torch.randint(0, 20, (3, 6))
    label = torch.tensor([0, 1, 1])
    with torch.no_grad():
        c = model(x, cond=Cond(label=label)).log_softmax(-1)
        u = model(x, cond=Cond(label=torch.full((3,), 2))).log_softmax(-1)
        guided = ClassifierFreeGuidance(model, 3.0)(x, cond=Cond(label=label))
        plain = ClassifierFreeGuidance(model, 1.0)(x, cond=Cond(label=label))
    assert torch.allclose(guided, u + 3.0 * (c - u), atol=1e-5)
    assert torch.allclose(plain.log_softmax(-1), c, atol=1e-5)


def test_labelled_training_says_what_is_wrong(tmp_path):
    from textdiffusion.config import ConfigError, DataConfig, TrainConfig
    from textdiffusion.training import TrainingError, train

    paths = write_reviews(tmp_path, n=10)
    run = dict(out=tmp_path / "run", task="style")
    with pytest.raises(DataError, match="2 labels for 1 files"):
        train(DataConfig(data=tuple(paths[:1]), labels=("a", "b")), TrainConfig(steps=1), **run)
    with pytest.raises(DataError, match="--valid needs a file per label"):
        train(
            DataConfig(data=tuple(paths), labels=("a", "b"), valid=(paths[0],)),
            TrainConfig(steps=1),
            **run,
        )
    with pytest.raises(TrainingError, match="--labels is for attribute transfer"):
        train(
            DataConfig(data=tuple(paths), labels=("a", "b")),
            TrainConfig(steps=1),
            out=tmp_path / "g",
        )
    with pytest.raises(ConfigError, match="--labels must be distinct"):
        DataConfig(labels=("a", "a"))


def test_attribute_transfer_rewrites_the_marker_and_keeps_the_content(attribute_dir):
    from textdiffusion.checkpoint import read_config
    from textdiffusion.pipelines import InputError, StylePipeline

    out, result = attribute_dir
    config = read_config(out)
    assert config.model.n_labels == 2 and config.task_config.labels == ("negative", "positive")
    pipe = StylePipeline.from_pretrained(out)
    sources = [
        f"the {noun} was {adj} ." for noun in NOUNS[:6] for adj in ADJECTIVES["negative"][:2]
    ]
    moved = pipe(sources, to="positive", strength=0.3, guidance=2.0).texts
    # the content word stays, and the negative word goes
    assert all(s.split()[1] in m.split() for s, m in zip(sources, moved)), moved
    flipped = [any(a in m.split() for a in ADJECTIVES["positive"]) for m in moved]
    assert np.mean(flipped) >= 0.6, moved
    assert not any(any(a in m.split() for a in ADJECTIVES["negative"]) for m in moved), moved
    # a line the label does not disfavour is kept whole
    assert pipe(["the soup was great ."], to="positive").texts == ["the soup was great ."]
    with pytest.raises(InputError, match="pass to= one of them, not 'happy'"):
        pipe(sources, to="happy")
    with pytest.raises(InputError, match="strength must be in"):
        pipe(sources, to="positive", strength=0.0)


def test_attribute_command(attribute_dir, capsys):
    from textdiffusion.cli import main

    out, _ = attribute_dir
    main(
        [
            "style",
            "--model",
            str(out),
            "--to",
            "negative",
            "--guidance",
            "3",
            "the pizza was lovely .",
        ]
    )
    assert capsys.readouterr().out.strip().startswith("the pizza was")
    with pytest.raises(SystemExit):
        main(["style", "--model", str(out), "the pizza was lovely ."])
    err = capsys.readouterr().err  # the CLI names its flag (the pipeline says to=)
    assert "give --to one of them" in err and "to=" not in err
