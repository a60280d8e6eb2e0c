"""Image captioning: caption tables and images, the resumable crop stream, the image encoder and cross-attention,
training, the pipeline and the `caption` command. The images are made here: a coloured square or circle on the left
or the right of a light background, captioned "a red square on the left"; a tiny model learns the colours of new
images in a few hundred steps, which it cannot do without reading them (chance: 1 in 4)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import make_shapes

from textdiffusion.config import CaptionConfig
from textdiffusion.data import DataError
from textdiffusion.tasks.caption.images import CaptionStream, load_image, read_captions


def colour_accuracy(texts: list[str], captions: list[str]) -> float:
    return float(np.mean([t.split()[1:2] == c.split()[1:2] for t, c in zip(texts, captions)]))


@pytest.fixture(scope="module")
def caption_dir(tmp_path_factory):
    """A tiny captioning model trained for 300 steps (about 10 s) on 64 shape images; 16 new ones to describe."""
    from textdiffusion.config import DataConfig, ModelConfig, SampleConfig, TrainConfig
    from textdiffusion.training import train

    root = tmp_path_factory.mktemp("caption")
    table = make_shapes(root / "train", 64, seed=0)
    valid = make_shapes(root / "valid", 16, seed=1)
    out = root / "model"
    result = train(
        DataConfig(data=(str(table),), valid=(str(valid),)),
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
        task="caption",
        model=ModelConfig(n_layers=2, n_heads=2, dim=64, max_len=64, image_size=32),
        sample=SampleConfig(sampler="confidence", steps=16, threshold=0.9, temperature=0.1),
        progress=False,
    )
    return out, result, root


def test_caption_tables_and_images_say_what_is_wrong(tmp_path):
    table = make_shapes(tmp_path, 3)
    pairs = read_captions([table])
    assert [p.name for p, _ in pairs] == ["0.png", "1.png", "2.png"] and pairs[0][1].startswith(
        "a "
    )
    jsonl = tmp_path / "c.jsonl"
    jsonl.write_text(json.dumps({"file_name": "img/1.png", "text": "  two   words "}) + "\n")
    assert read_captions([jsonl]) == [(tmp_path / "img/1.png", "two words")]
    bad = tmp_path / "bad.tsv"
    bad.write_text("picture\tcaption\nimg/0.png\tx\n")
    with pytest.raises(DataError, match=r"no image column; expected one of .*found \['picture'"):
        read_captions([bad])
    missing = tmp_path / "missing.tsv"
    missing.write_text("image\tcaption\nnope.png\tx\n")
    with pytest.raises(DataError, match="1 image file\\(s\\) not found \\(set --image-root"):
        read_captions([missing])
    with pytest.raises(DataError, match="caption files are .tsv, .csv or .jsonl"):
        read_captions([tmp_path / "img/0.png"])
    (tmp_path / "broken.png").write_bytes(b"not an image")
    with pytest.raises(DataError, match="cannot read the image .*broken.png"):
        load_image(tmp_path / "broken.png", 32)
    # the shorter side is resized, the centre kept, with a margin for random crops
    from PIL import Image

    assert load_image(Image.new("RGB", (100, 50)), 32).shape == (3, 36, 36)


def test_caption_stream_covers_every_caption_and_resumes():
    images = np.random.default_rng(0).integers(0, 255, (5, 3, 36, 36), dtype=np.uint8)
    captions = [(i % 5, [10 + i] * (1 + i % 4)) for i in range(20)]
    make = dict(image_size=32, length=6, pad_id=0, batch_size=4, seed=3)
    stream = CaptionStream(images, captions, **make)
    epoch = [stream.next_batch() for _ in range(5)]
    firsts = sorted(int(b["target"][i, 0]) for b in epoch for i in range(4))
    assert firsts == list(range(10, 30))  # each caption once per epoch
    batch = epoch[0]
    assert batch["image"].shape == (4, 3, 32, 32) and batch["image"].dtype == np.uint8
    assert batch["target"].shape == (4, 6) and batch["target_mask"].all()
    # the crop comes from the caption's own image
    row, caption = 0, int(batch["target"][0, 0]) - 10
    window = np.lib.stride_tricks.sliding_window_view(images[caption % 5], (3, 32, 32))
    assert any(np.array_equal(w, batch["image"][row]) for w in window.reshape(-1, 3, 32, 32))
    state = stream.state_dict()
    expected = [stream.next_batch() for _ in range(7)]
    resumed = CaptionStream(images, captions, **make)
    resumed.load_state_dict(state)
    for a, b in zip(expected, [resumed.next_batch() for _ in range(7)]):
        assert all(np.array_equal(a[k], b[k]) for k in a)
    halves = [
        CaptionStream(images, captions, **make, rank=r, world_size=2).next_batch() for r in (0, 1)
    ]
    whole = CaptionStream(images, captions, **make).next_batch()
    assert np.array_equal(np.concatenate([h["target"] for h in halves]), whole["target"])
    centre = CaptionStream(images, captions, **make, augment=False).next_batch()
    assert np.array_equal(
        centre["image"][0], images[int(centre["target"][0, 0] - 10) % 5][:, 2:34, 2:34]
    )


def test_the_network_reads_the_image_through_cross_attention():
    from textdiffusion.config import ModelConfig
    from textdiffusion.networks import Cond, DiffusionTransformer

    torch.manual_seed(0)
    config = ModelConfig(vocab_size=40, n_layers=2, n_heads=2, dim=32, max_len=16, image_size=16)
    model = DiffusionTransformer(config).eval()
    x = torch.randint(0, 40, (2, 10))
    images = torch.rand(2, 3, 16, 16)
    logits = model(x, cond=Cond(image=images))
    assert logits.shape == (2, 10, 40)
    # encoded once and reused by every step: the same logits
    features = model.encode_image(images)
    assert features.shape == (2, 4, 32)
    assert torch.allclose(model(x, cond=Cond(image_features=features)), logits, atol=1e-6)
    # another image, other logits; all-masked positions still differ (absolute target positions)
    assert not torch.allclose(model(x, cond=Cond(image=images.flip(0))), logits)
    masked = model(torch.full((1, 10), 3), cond=Cond(image=images[:1]))
    assert not torch.allclose(masked[0, 0], masked[0, 1])
    with pytest.raises(ValueError, match="this model describes images"):
        model(x)
    with pytest.raises(
        ValueError, match=r"reads float \(B, 3, 16, 16\) RGB images, got \(2, 3, 8, 8\)"
    ):
        model(x, cond=Cond(image=torch.rand(2, 3, 8, 8)))
    text_only = DiffusionTransformer(ModelConfig(vocab_size=40, n_layers=1, n_heads=2, dim=32))
    with pytest.raises(ValueError, match="no image encoder"):
        text_only(x, cond=Cond(image=images))
    from textdiffusion.config import ConfigError

    with pytest.raises(ConfigError, match="multiple of --patch-size"):
        ModelConfig(image_size=20, patch_size=8)
    # the convolutional stem makes as many patch tokens as the patch convolution
    conv = DiffusionTransformer(
        ModelConfig(vocab_size=40, n_layers=1, n_heads=2, dim=32, image_size=16, image_stem="conv")
    )
    assert conv.encode_image(images).shape == (2, 4, 32)
    assert sum(isinstance(m, torch.nn.Conv2d) for m in conv.image_encoder.patch.modules()) == 3
    with pytest.raises(ConfigError, match="power-of-two --patch-size of at least 2"):
        ModelConfig(image_size=18, patch_size=6, image_stem="conv")


def test_captioning_learns_to_read_the_image(caption_dir):
    import csv

    from PIL import Image

    from textdiffusion.checkpoint import read_config
    from textdiffusion.pipelines import CaptionPipeline, InputError

    out, result, root = caption_dir
    assert (
        result.valid_bits_per_char < 0.5
    )  # the caption's words given the image; untrained: about 8
    config = read_config(out)
    assert config.task == "caption" and config.task_config == CaptionConfig(length=28)
    pipe = CaptionPipeline.from_pretrained(out)
    rows = list(csv.DictReader((root / "valid/captions.tsv").open(), delimiter="\t"))
    paths = [root / "valid" / row["image"] for row in rows]
    captions = [row["caption"] for row in rows]
    result = pipe(paths, batch_size=8)
    assert len(result.texts) == 16 and result.network_calls > 0
    assert colour_accuracy(result.texts, captions) >= 0.9, list(zip(result.texts, captions))
    assert all(text.startswith("a ") and " on the " in text for text in result.texts)
    # a PIL image, or pixels, give the caption of the file
    assert pipe(Image.open(paths[0])).texts == result.texts[:1]
    assert pipe(pipe.pixels([paths[0]])).texts == result.texts[:1]
    # several sampled captions per image, the consensus returned
    from textdiffusion.evaluation.overlap import consensus

    several = pipe(paths[:4], candidates=3, temperature=1.0, batch_size=5)
    assert [len(c) for c in several.candidates] == [3] * 4 and several.ids.shape[0] == 4
    assert several.texts == [c[consensus(c)] for c in several.candidates]
    assert colour_accuracy(several.texts, captions[:4]) >= 0.75
    with pytest.raises(InputError, match="candidates must be at least 1"):
        pipe(paths[:1], candidates=0)


def test_caption_pipeline_refuses_bad_input(caption_dir, trained_dir, tmp_path):
    from textdiffusion.pipelines import CaptionPipeline, InputError

    out, _, _ = caption_dir
    with pytest.raises(InputError, match="'generate' model; captioning needs"):
        CaptionPipeline.from_pretrained(trained_dir)
    pipe = CaptionPipeline.from_pretrained(out)
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 truncated")
    with pytest.raises(InputError, match="cannot read the image"):
        pipe([tmp_path / "broken.jpg"])
    with pytest.raises(InputError, match=r"float \(N, 3, 32, 32\)"):
        pipe(torch.rand(1, 3, 8, 8))
    with pytest.raises(InputError, match="no image given"):
        pipe([])


def test_caption_training_needs_an_image_model(tmp_path):
    from textdiffusion.config import DataConfig, ModelConfig, TrainConfig
    from textdiffusion.training import TrainingError, train

    table = make_shapes(tmp_path, 4)
    with pytest.raises(TrainingError, match="set --image-size"):
        train(
            DataConfig(data=(str(table),)),
            TrainConfig(steps=1),
            out=tmp_path / "run",
            task="caption",
            model=ModelConfig(n_layers=1, n_heads=2, dim=32),
        )
    with pytest.raises(TrainingError, match="--image-root is for --task caption"):
        train(
            DataConfig(data=(str(table),), image_root="x"),
            TrainConfig(steps=1),
            out=tmp_path / "r2",
        )


def test_caption_command_and_resume(caption_dir, tmp_path, capsys):
    from textdiffusion.checkpoint import read_config
    from textdiffusion.cli import main

    out, _, root = caption_dir
    images = [str(root / "valid/img/0.png"), str(root / "valid/img/1.png")]
    main(["caption", "--model", str(out), "--json", *images])
    data = json.loads(capsys.readouterr().out)
    assert data["images"] == images and len(data["texts"]) == 2 and data["network_calls"] > 0
    main(["caption", "--model", str(out), *images])
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[0] for line in lines] == images
    with pytest.raises(SystemExit):
        main(["caption", "--model", str(out)])
    assert "give one or more image files" in capsys.readouterr().err
    # what cannot be read gets one line each; every readable image is still captioned
    from PIL import Image

    (tmp_path / "notes.jpg").write_text("not a picture")
    Image.new("CMYK", (30, 20), (0, 255, 0, 0)).save(tmp_path / "cmyk.jpg")
    Image.new("LA", (1, 1)).save(tmp_path / "dot.png")
    Image.new("P", (3000, 20)).save(tmp_path / "wide.png")
    given = [images[0], str(tmp_path / "notes.jpg"), str(tmp_path), str(tmp_path / "gone.png")]
    given += [str(tmp_path / name) for name in ("cmyk.jpg", "dot.png", "wide.png")]
    with pytest.raises(SystemExit) as exit_info:
        main(["caption", "--model", str(out), *given])
    assert exit_info.value.code == 1
    captured = capsys.readouterr()
    assert [line.split("\t")[0] for line in captured.out.splitlines()] == [given[0], *given[4:]]
    errors = captured.err.splitlines()
    assert len(errors) == 3 and "cannot read the image" in errors[0]
    assert "is a folder, not an image" in errors[1] and "does not exist" in errors[2]
    with pytest.raises(SystemExit):
        main(["caption", "--model", str(out), str(tmp_path / "gone.png")])
    assert "none of the 1 image(s) could be read" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "--out", str(tmp_path / "x"), "--data", "a.txt", "--image-size", "32"])
    assert "--image-size is for --task caption" in capsys.readouterr().err
    # a short run from the command line (images relative to --image-root), resumed with its caption length
    table = make_shapes(tmp_path / "set", 8, seed=2)
    (tmp_path / "set/flat.tsv").write_text(table.read_text())
    run = tmp_path / "run"
    common = [
        "train",
        "--task",
        "caption",
        "--out",
        str(run),
        "--data",
        str(tmp_path / "set/flat.tsv"),
    ]
    flags = ["--image-root", str(tmp_path / "set"), "--preset", "tiny", "--image-size", "16"]
    flags += [
        "--batch-size",
        "4",
        "--eval-every",
        "0",
        "--save-every",
        "2",
        "--device",
        "cpu",
        "--quiet",
    ]
    main([*common, *flags, "--steps", "2", "--valid-fraction", "0.25"])
    length = read_config(run).task_config
    lines = table.read_text().splitlines()[1:]
    longer = [line + " of a white picture" * (i % 2) for i, line in enumerate(lines)]
    (tmp_path / "set/flat.tsv").write_text("image\tcaption\n" + "\n".join(longer) + "\n")
    main([*common, *flags, "--steps", "4", "--valid-fraction", "0.25", "--resume"])
    assert read_config(run).task_config == length
    assert "trained" in capsys.readouterr().out
