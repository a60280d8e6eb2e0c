from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from textdiffusion.checkpoint import load_pretrained

WORKER = Path(__file__).with_name("ddp_worker.py")


def torchrun(tmp_path, corpus_file, parallel):
    out = tmp_path / parallel
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        str(WORKER),
        str(corpus_file),
        str(out),
        parallel,
    ]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    return out


@pytest.mark.slow
def test_ddp_two_gloo_processes_end_identical(tmp_path, corpus_file):
    out = torchrun(tmp_path, corpus_file, "ddp")
    a = torch.load(out / "rank0.pt", weights_only=True)
    b = torch.load(out / "rank1.pt", weights_only=True)
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name
    # rank 0 alone wrote the model, with the weights every rank holds (no EMA in this run)
    model = load_pretrained(out).model
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, a[name]), name
    assert (out / "checkpoints" / "step-0000006" / "training_state.pt").is_file()


@pytest.mark.slow
def test_fsdp_two_gloo_processes_train_and_save(tmp_path, corpus_file):
    out = torchrun(tmp_path, corpus_file, "fsdp")
    pre = torch.load(
        out / "rank0.pt", weights_only=True
    )  # full weights gathered on rank 0 before training
    trained = load_pretrained(out).model.state_dict()
    assert set(trained) == set(pre)
    assert any(not torch.equal(trained[k], pre[k]) for k in pre)
