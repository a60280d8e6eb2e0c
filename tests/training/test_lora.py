"""LoRA through peft: `train --init-from DIR --lora-rank R` trains adapters only, and saves either a merged plain
model or an adapter folder (referring to DIR) that loads by path to the same logits."""

from __future__ import annotations

import json

import pytest
import torch

pytest.importorskip("peft")
pytest.importorskip("transformers")

from hf_folders import gpt2_folder, llama_folder  # noqa: E402

from textdiffusion.checkpoint import load_pretrained  # noqa: E402
from textdiffusion.cli import main  # noqa: E402

FLAGS = [
    "--steps",
    "3",
    "--batch-size",
    "4",
    "--seq-len",
    "16",
    "--device",
    "cpu",
    "--eval-every",
    "0",
]
FLAGS += [
    "--eval-batches",
    "1",
    "--warmup-steps",
    "1",
    "--lr",
    "1e-2",
    "--ema-decay",
    "0",
    "--quiet",
]


@pytest.mark.parametrize("build", [llama_folder, gpt2_folder], ids=["llama", "gpt2"])
def test_lora_merged_and_adapter_folders_agree(build, tmp_path, corpus_file):
    base = build(tmp_path / "base")
    runs = {}
    for mode in ("merged", "adapter"):
        out = tmp_path / mode
        main(
            ["train", "--init-from", str(base), "--out", str(out), "--data", str(corpus_file)]
            + ["--lora-rank", "4", "--lora-save", mode, *FLAGS]
        )
        runs[mode] = out
    merged = json.loads((runs["merged"] / "config.json").read_text())["model"]
    adapter = json.loads((runs["adapter"] / "config.json").read_text())["model"]
    assert merged["lora"] is None
    assert adapter["lora"]["rank"] == 4 and adapter["lora"]["base"] == str(base.resolve())
    from safetensors.torch import load_file

    stored = load_file(str(runs["adapter"] / "model.safetensors"))
    assert stored and all("lora_" in k or k.startswith("segment.") for k in stored)
    a, b = load_pretrained(runs["merged"]), load_pretrained(runs["adapter"])
    start = load_pretrained(base).model
    ids = torch.tensor([[5, 6, 7, 8, 9, 10]])
    with torch.no_grad():
        torch.testing.assert_close(a.model(ids), b.model(ids), atol=1e-5, rtol=0)
        assert not torch.allclose(
            a.model(ids), start(ids), atol=1e-4
        )  # the adapters learnt something
    # frozen: the embedding is the base model's; adapted: the attention projections moved
    before, after = start.state_dict(), a.model.state_dict()
    embed = next(k for k in before if k.endswith(("wte.weight", "embed_tokens.weight")))
    assert torch.equal(before[embed], after[embed])
    assert any(
        not torch.equal(before[k], after[k]) for k in before if "attn" in k and k.endswith("weight")
    )


def test_lora_needs_init_from_and_known_targets(tmp_path, corpus_file, capsys):
    with pytest.raises(SystemExit):
        main(
            [
                "train",
                "--out",
                str(tmp_path / "o"),
                "--data",
                str(corpus_file),
                "--lora-rank",
                "4",
                *FLAGS,
            ]
        )
    assert "--lora-rank adapts a pretrained model: give --init-from" in capsys.readouterr().err
    base = llama_folder(tmp_path / "base")
    with pytest.raises(SystemExit):
        main(
            [
                "train",
                "--init-from",
                str(base),
                "--out",
                str(tmp_path / "p"),
                "--data",
                str(corpus_file),
            ]
            + ["--lora-rank", "4", "--lora-targets", "no_such_layer", *FLAGS]
        )
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: --lora-targets ['no_such_layer']")


def test_adapter_folder_without_its_base(tmp_path, corpus_file):
    import shutil

    from textdiffusion.checkpoint import CheckpointError

    base = llama_folder(tmp_path / "base")
    out = tmp_path / "adapter"
    main(
        ["train", "--init-from", str(base), "--out", str(out), "--data", str(corpus_file)]
        + ["--lora-rank", "2", "--lora-save", "adapter", *FLAGS]
    )
    shutil.rmtree(base)
    with pytest.raises(CheckpointError, match="is a LoRA adapter of .*which does not load"):
        load_pretrained(out)
