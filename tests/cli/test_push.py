"""`textdiffusion push` and `DiffusionPipeline.push_to_hub`: offline (HF_HUB_OFFLINE=1) they fail at once with one
clear line; a folder that is not a model and a malformed repo id are refused before any network call."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from textdiffusion.checkpoint import PRETRAINED_DIR
from textdiffusion.hub import HubError, push_folder

SHIPPED = PRETRAINED_DIR / "shakespeare-char"


def test_push_offline_fails_with_one_clear_line():
    result = subprocess.run(
        [sys.executable, "-m", "textdiffusion", "push", str(SHIPPED), "someone/tiny-model"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: cannot push to someone/tiny-model: HF_HUB_OFFLINE is set (unset it to reach huggingface.co)"
    ]


def test_pipeline_push_to_hub_offline_raises_hub_error(monkeypatch):
    from huggingface_hub import constants

    from textdiffusion.pipelines import GenerationPipeline

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    pipeline = GenerationPipeline.from_pretrained("shakespeare-char")
    with pytest.raises(HubError, match="cannot push to someone/model: HF_HUB_OFFLINE is set"):
        pipeline.push_to_hub("someone/model")


def test_push_refuses_a_folder_that_is_not_a_model_and_a_bad_repo_id(tmp_path):
    from textdiffusion.checkpoint import CheckpointError

    with pytest.raises(CheckpointError, match="has no config.json"):
        push_folder(tmp_path, "someone/model")
    (tmp_path / "config.json").write_text((SHIPPED / "config.json").read_text())
    with pytest.raises(HubError, match="has no model.safetensors"):
        push_folder(tmp_path, "someone/model")
    with pytest.raises(HubError, match="must be USER/NAME"):
        push_folder(SHIPPED, "no-slash")
