"""OUT/.lock: a second run into a busy --out refuses; a lock left by a killed run is taken over; always released."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys

import pytest

from textdiffusion.training.lock import LOCK_NAME, RunLock, RunLocked

# A process that holds OUT/.lock until its standard input closes (stands in for a long training run).
HOLDER = (
    "import sys; from textdiffusion.training.lock import RunLock\n"
    "with RunLock(sys.argv[1]):\n"
    "    print('locked', flush=True); sys.stdin.read()\n"
)


def hold(out):
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(out)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_a_second_train_into_a_busy_out_refuses(tmp_path, corpus_file, capsys):
    from textdiffusion.cli import main

    out = tmp_path / "run"
    holder = hold(out)  # another process holds the lock: the run below is the second one
    try:
        owner = json.loads((out / LOCK_NAME).read_text())
        assert owner["pid"] == holder.pid and owner["host"] == socket.gethostname()
        with pytest.raises(SystemExit) as exc:
            main(["train", "--out", str(out), "--data", str(corpus_file), "--preset", "tiny"]
                 + ["--steps", "1", "--device", "cpu", "--quiet"])  # fmt: skip
        err = capsys.readouterr().err
        assert exc.value.code == 2 and "in use by another training run" in err
        assert f"PID {holder.pid}" in err and "Traceback" not in err
        assert sorted(p.name for p in out.iterdir()) == [LOCK_NAME]  # nothing written into OUT
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    assert holder.returncode == 0 and not (out / LOCK_NAME).exists()  # released at its end
    main(["train", "--out", str(out), "--data", str(corpus_file), "--preset", "tiny", "--max-len", "16"]
         + ["--steps", "1", "--batch-size", "2", "--device", "cpu", "--quiet"])  # fmt: skip
    assert (out / "model.safetensors").is_file() and not (out / LOCK_NAME).exists()


def test_a_lock_left_by_a_killed_run_is_taken_over_with_a_warning(tmp_path, caplog):
    out = tmp_path / "run"
    holder = hold(out)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait(timeout=30)
    assert json.loads((out / LOCK_NAME).read_text())["pid"] == holder.pid  # left behind
    with caplog.at_level(logging.WARNING, logger="textdiffusion.training.lock"):
        with RunLock(out):
            assert json.loads((out / LOCK_NAME).read_text())["pid"] == os.getpid()
    assert f"PID {holder.pid}" in caplog.text and "taking it over" in caplog.text
    assert not (out / LOCK_NAME).exists()


def test_the_lock_is_released_on_errors_and_ctrl_c(tmp_path):
    out = tmp_path / "run"
    for error in (KeyboardInterrupt, ValueError):
        with pytest.raises(error):
            with RunLock(out):
                with RunLock(out):  # re-entrant in one process (the CLI and `train` both take it)
                    pass
                assert (out / LOCK_NAME).exists()
                raise error
        assert not (out / LOCK_NAME).exists()


def test_a_lock_from_another_host_is_never_taken_over(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / LOCK_NAME).write_text(json.dumps({"pid": 1, "host": "elsewhere.example"}))
    with pytest.raises(RunLocked, match="host elsewhere.example.*if no run is alive there, delete"):
        RunLock(out).acquire()
    assert (out / LOCK_NAME).exists()


def test_a_failed_training_run_releases_its_lock(tmp_path):
    from textdiffusion.config import DataConfig, TrainConfig
    from textdiffusion.data import DataError
    from textdiffusion.training import train

    out = tmp_path / "run"
    with pytest.raises(DataError):
        train(DataConfig(data=(str(tmp_path / "missing.txt"),)), TrainConfig(device="cpu"), out=out)
    assert not (out / LOCK_NAME).exists()


def test_the_next_run_removes_temporaries_of_a_killed_checkpoint_write(
    tmp_path, corpus_file, caplog
):
    """A kill during a checkpoint write leaves save_pretrained's temporary folder: made here by the real saver,
    stopped mid-write with its clean-up disabled (as SIGKILL would stop it)."""
    import shutil

    import textdiffusion.checkpoint as checkpoint
    from textdiffusion.config import DataConfig, ModelConfig, TrainConfig
    from textdiffusion.data import Tokenizer
    from textdiffusion.networks import DiffusionTransformer
    from textdiffusion.training import train

    out = tmp_path / "run"
    tokenizer = Tokenizer.train_char(["abc"])
    config = checkpoint.CheckpointConfig(
        model=ModelConfig(vocab_size=tokenizer.vocab_size, n_layers=1, n_heads=2, dim=16, max_len=8)
    )

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    mp = pytest.MonkeyPatch()
    mp.setattr(checkpoint, "save_file", killed)
    mp.setattr(shutil, "rmtree", lambda *a, **k: None)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save_pretrained(
            DiffusionTransformer(config.model), tokenizer, out / "checkpoints" / "step-0000004",
            config=config,
        )  # fmt: skip
    mp.undo()
    stray = [p.name for p in (out / "checkpoints").iterdir()]
    assert len(stray) == 1 and stray[0].startswith(".step-0000004.tmp-")
    (out / ".model.safetensors.tmp-12345").write_bytes(b"half")  # a killed copy into OUT
    (out / ".keep-me").write_text("not ours")

    with caplog.at_level(logging.INFO, logger="textdiffusion.training.state"):
        train(
            DataConfig(data=(str(corpus_file),)),
            TrainConfig(steps=1, batch_size=2, warmup_steps=0, eval_every=0, device="cpu"),
            out=out,
            model=ModelConfig(n_layers=1, n_heads=2, dim=16, max_len=16),
            progress=False,
        )
    removed = [r.getMessage() for r in caplog.records if "left by a run stopped" in r.getMessage()]
    assert len(removed) == 2 and any(stray[0] in m for m in removed)
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-0000001"]
    assert not list(out.glob(".*.tmp-*")) and (out / ".keep-me").exists()
