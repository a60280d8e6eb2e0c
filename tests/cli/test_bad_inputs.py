"""Bad inputs to the CLI end in one clear line (exit status 2), never a traceback (issue 23, item 5)."""

from __future__ import annotations

import errno
import os
import subprocess
import sys

import pytest
import torch

from textdiffusion.cli import main
from textdiffusion.training import find_checkpoints

TINY_TRAIN = ["--preset", "tiny", "--max-len", "16", "--batch-size", "2", "--warmup-steps", "1"]
TINY_TRAIN += ["--eval-every", "0", "--device", "cpu", "--quiet"]


class Foreign:
    """A pickle of an arbitrary class: the weights-only loader refuses it."""


@pytest.fixture()
def untrained(tmp_path):
    """An untrained tiny model with a 64-token context (size checks need no training)."""
    from textdiffusion.checkpoint import CheckpointConfig, save_pretrained
    from textdiffusion.config import ModelConfig
    from textdiffusion.data import Tokenizer
    from textdiffusion.networks import DiffusionTransformer

    tokenizer = Tokenizer.train_char(["The cat sat on the mat."])
    model = ModelConfig(vocab_size=tokenizer.vocab_size, max_len=64, n_layers=2, n_heads=2, dim=32)
    config = CheckpointConfig(model=model)
    return save_pretrained(DiffusionTransformer(model), tokenizer, tmp_path / "m", config=config)


def fails(capsys, args) -> str:
    """Run the CLI in this process; it must exit with status 2 and one line on standard error."""
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    err = capsys.readouterr().err
    assert exc.value.code == 2, err
    assert "Traceback" not in err
    message = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(message) == 1, err
    return message[0]


def test_a_full_disk_keeps_the_last_good_checkpoint(tmp_path, corpus_file, capsys, monkeypatch):
    """The disk fills up after the first checkpoint: the safetensors write (the lowest-level write of a
    checkpoint, patched here only) raises ENOSPC as a full filesystem would."""
    import textdiffusion.checkpoint as checkpoint

    real, calls = checkpoint.save_file, []

    def save_file_until_full(*args, **kwargs):
        calls.append(args[1])
        if len(calls) > 1:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), args[1])
        return real(*args, **kwargs)

    monkeypatch.setattr(checkpoint, "save_file", save_file_until_full)
    out = tmp_path / "run"
    args = ["train", "--out", out, "--data", corpus_file, "--steps", "4", "--save-every", "2"]
    message = fails(capsys, args + TINY_TRAIN)
    assert (
        "cannot write the checkpoint of step 4" in message and "No space left on device" in message
    )
    assert "step-0000002 is the last checkpoint" in message
    assert [p.name for p in find_checkpoints(out)] == ["step-0000002"]
    assert not [
        p for p in (out / "checkpoints").iterdir() if p.name.startswith(".")
    ]  # no temporary left
    assert not (out / ".lock").exists()

    # the kept checkpoint resumes; an unreadable training state says so without advising weights_only=False
    state = out / "checkpoints" / "step-0000002" / "training_state.pt"
    torch.save({"step": Foreign()}, state)
    message = fails(capsys, ["train", "--out", out, "--data", corpus_file, "--resume"] + TINY_TRAIN)
    assert "is corrupt or not a training state" in message and "Unsupported global" in message
    assert "weights_only" not in message
    state.write_bytes(b"garbage")
    message = fails(capsys, ["train", "--out", out, "--data", corpus_file, "--resume"] + TINY_TRAIN)
    assert "is corrupt or not a training state" in message and "weights_only" not in message


def test_train_into_a_read_only_folder(tmp_path, corpus_file, capsys):
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    out = folder / "run"
    if os.access(folder, os.W_OK):
        # root ignores the mode bits: use a folder that is unwritable for root too (sysfs refuses mkdir)
        if not os.path.ismount("/sys"):
            pytest.skip(
                "running as root (chmod does not stop writes) and no /sys mount to write into"
            )
        out = "/sys/textdiffusion-test-run"
    try:
        message = fails(capsys, ["train", "--out", out, "--data", corpus_file] + TINY_TRAIN)
    finally:
        folder.chmod(0o755)
    assert f"cannot create --out {out}" in message
    assert "Operation not permitted" in message or "Permission denied" in message


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_train_on_cuda_without_a_gpu(tmp_path, corpus_file, capsys):
    args = ["train", "--out", tmp_path / "run", "--data", corpus_file, "--preset", "tiny"]
    message = fails(capsys, args + ["--device", "cuda"])
    assert "--device cuda: CUDA is not available" in message


def test_denoise_file_dash_with_standard_input_closed(tmp_path):
    # a real closed descriptor 0 (`0<&-`): Python then sets sys.stdin to None
    command = f"{sys.executable} -m textdiffusion denoise --file - 0<&-"
    result = subprocess.run(
        ["bash", "-c", command], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == (
        "error: cannot read --file - (standard input): standard input is closed"
    )


def test_style_file_dash_with_standard_input_closed(capsys, monkeypatch):
    import io

    closed = io.TextIOWrapper(io.BytesIO())
    closed.close()
    monkeypatch.setattr(sys, "stdin", closed)
    message = fails(capsys, ["style", "--file", "-", "--model", "yelp-sentiment"])
    assert message.startswith("error: cannot read --file - (standard input):")


def test_denoise_out_naming_a_folder_leaves_nothing(tmp_path, capsys):
    text = tmp_path / "in.txt"
    text.write_text("Thsi has a typo.\n")
    folder = tmp_path / "results"
    folder.mkdir()
    message = fails(capsys, ["denoise", "--file", text, "--out", folder])
    assert message == f"error: --out {folder} is a folder; give a file name"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.txt", "results"]
    assert not list(folder.iterdir())


def test_batch_size_zero_is_refused(tmp_path, capsys):
    message = fails(capsys, ["denoise", "Thsi has a typo.", "--batch-size", "0"])
    assert message == "error: --batch-size must be at least 1, got 0"
    message = fails(
        capsys, ["style", "good food", "--model", "yelp-sentiment", "--batch-size", "0"]
    )
    assert message == "error: --batch-size must be at least 1, got 0"


def test_style_without_to_names_the_flag(capsys):
    message = fails(capsys, ["style", "the food was cold .", "--model", "yelp-sentiment"])
    assert "give --to one of them" in message and "to=" not in message
    message = fails(capsys, ["style", "x", "--model", "yelp-sentiment", "--to", "happy"])
    assert "['negative', 'positive']" in message and "not 'happy'" in message


def test_sizes_are_bounded_before_allocating(untrained, capsys):
    import time

    start = time.perf_counter()
    message = fails(
        capsys, ["infill", "The ___ sat.", "--model", untrained, "--blank-length", 10**9]
    )
    assert (
        "(1 x blank length 1000000000) is 1,000,000,009 tokens, more than the model's context of 64"
        in message
    )
    message = fails(capsys, ["generate", "--model", untrained, "--n", 10**9, "--length", 8])
    assert (
        "--length 8 with --n 1000000000 needs about" in message
        and "lower --length or --n" in message
    )
    message = fails(capsys, ["generate", "--model", untrained, "--length", 10**9])
    assert "length must be in 1..64" in message
    assert time.perf_counter() - start < 30  # refused at once, not after allocating gigabytes


def test_a_missing_local_folder_is_not_a_hub_lookup(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    message = fails(capsys, ["generate", "--model", "runs/x"])
    assert message == "error: no such folder: runs/x"
