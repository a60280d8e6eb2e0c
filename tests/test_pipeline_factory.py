"""`textdiffusion.pipeline(model)` picks the pipeline of the task a model was trained for."""

from __future__ import annotations

import pytest

import textdiffusion
from textdiffusion.checkpoint import CheckpointError
from textdiffusion.pipelines import DenoisePipeline, GenerationPipeline, StylePipeline, pipeline


@pytest.mark.parametrize(
    "name, cls",
    [
        ("shakespeare-char", GenerationPipeline),
        ("typo-fixer", DenoisePipeline),
        ("yelp-sentiment", StylePipeline),
    ],
)
def test_the_pipeline_of_each_shipped_model(name, cls):
    pipe = textdiffusion.pipeline(name)
    assert type(pipe) is cls and pipe.config.task == cls.task


def test_every_pipeline_is_exported_and_every_task_has_one():
    from textdiffusion import pipelines
    from textdiffusion.tasks import TASKS

    for task in TASKS.values():
        assert (
            task.pipeline is not None
            and getattr(pipelines, task.pipeline.__name__) is task.pipeline
        )


def test_an_unknown_model_is_a_clear_error(tmp_path):
    with pytest.raises(CheckpointError):
        pipeline(tmp_path / "nothing-here")
