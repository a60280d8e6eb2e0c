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
