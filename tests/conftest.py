"""Shared fixtures: tiny configs, corpora and a tiny trained checkpoint. No network, no ../shared."""

from __future__ import annotations

import os
import random
import tempfile

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# torch.compile's on-disk cache does not key its kernels by ATEN_CPU_CAPABILITY: a graph compiled under AVX-512 and
# reused under ATEN_CPU_CAPABILITY=avx2 crashed the process (segfault in the compiled backward). One cache per kernel
# choice keeps the two CI passes apart.
os.environ.setdefault(
    "TORCHINDUCTOR_CACHE_DIR",
    os.path.join(
        tempfile.gettempdir(),
        f"textdiffusion-inductor-{os.environ.get('ATEN_CPU_CAPABILITY', 'default')}",
    ),
)
torch.set_num_threads(1)

WORDS = (
    "the cat sat on the mat and the dog ran in the park while a bird sang in the tall green tree "
    "she sells sea shells by the sea shore and he reads old books near the warm fire at night"
).split()


def make_corpus(n_lines: int = 400, seed: int = 0) -> str:
    rng = random.Random(seed)
    lines = []
    for _ in range(n_lines):
        start = rng.randrange(len(WORDS) - 8)
        lines.append(" ".join(WORDS[start : start + rng.randint(4, 8)]).capitalize() + ".")
    return "\n".join(lines) + "\n"


SHAPE_COLORS = {
    "red": (220, 30, 30),
    "green": (30, 180, 30),
    "blue": (30, 60, 220),
    "yellow": (230, 210, 20),
}


def make_shapes(folder, n: int, seed: int = 0, *, header: str = "image\tcaption"):
    """`n` 40 x 40 PNG images under folder/img, each a coloured square or circle on the left or the right, and
    folder/captions.tsv describing them ("a red square on the left")."""
    from PIL import Image, ImageDraw

    (folder / "img").mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    rows = [header]
    for i in range(n):
        color = rng.choice(list(SHAPE_COLORS))
        shape = rng.choice(["square", "circle"])
        side = rng.choice(["left", "right"])
        image = Image.new("RGB", (40, 40), (245, 245, 245))
        r = rng.randint(5, 7)
        cx = rng.randint(r + 1, 19 - r) + (20 if side == "right" else 0)
        cy = rng.randint(r + 2, 38 - r)
        draw = ImageDraw.Draw(image)
        (draw.rectangle if shape == "square" else draw.ellipse)(
            (cx - r, cy - r, cx + r, cy + r), fill=SHAPE_COLORS[color]
        )
        image.save(folder / "img" / f"{i}.png")
        rows.append(f"img/{i}.png\ta {color} {shape} on the {side}")
    (folder / "captions.tsv").write_text("\n".join(rows) + "\n")
    return folder / "captions.tsv"


@pytest.fixture(scope="session", autouse=True)
def lexicon_cache(tmp_path_factory):
    """Lexicon indexes (`textdiffusion.tasks.denoise.lexicon_index`) go to a test folder, never the user's cache."""
    os.environ["TEXTDIFFUSION_CACHE"] = str(tmp_path_factory.mktemp("lexicon-cache"))


@pytest.fixture(scope="session")
def corpus_text() -> str:
    return make_corpus()


@pytest.fixture()
def corpus_file(tmp_path, corpus_text):
    path = tmp_path / "corpus.txt"
    path.write_text(corpus_text)
    return path


@pytest.fixture()
def tiny_config():
    from textdiffusion.config import ModelConfig

    return ModelConfig(vocab_size=32, max_len=16, n_layers=2, n_heads=2, dim=32)


@pytest.fixture()
def tiny_model(tiny_config):
    from textdiffusion.networks import DiffusionTransformer

    torch.manual_seed(0)
    return DiffusionTransformer(tiny_config).eval()


@pytest.fixture()
def masked_process():
    from textdiffusion.processes import MaskedProcess, build_schedule

    return MaskedProcess(build_schedule("loglinear"), mask_id=1)


@pytest.fixture(scope="session")
def trained_dir(tmp_path_factory):
    """A tiny character model trained for 400 steps (~15 s) on the fixture corpus (shared by the session)."""
    from textdiffusion.config import DataConfig, ModelConfig, SampleConfig, TrainConfig
    from textdiffusion.training import train

    root = tmp_path_factory.mktemp("trained")
    data = root / "corpus.txt"
    data.write_text(make_corpus(800))
    out = root / "model"
    train(
        DataConfig(data=(str(data),), valid_fraction=0.05),
        TrainConfig(
            steps=400,
            batch_size=16,
            lr=3e-3,
            warmup_steps=20,
            eval_every=0,
            save_every=400,
            log_every=50,
            ema_decay=0.0,
            device="cpu",
        ),
        out=out,
        model=ModelConfig(n_layers=2, n_heads=2, dim=64, max_len=64),
        sample=SampleConfig(steps=16),
        progress=False,
    )
    return out
