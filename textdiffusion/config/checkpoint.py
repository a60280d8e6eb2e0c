"""config.json as a whole: the typed sections a checkpoint folder is built from, and the migration of older layouts.

checkpoint.py reads and writes the folders; this is their schema, on the config floor, so that every loader (native
folders, converted ones) builds the same object.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from textdiffusion import __version__
from textdiffusion.config.base import FORMAT_VERSION, ConfigError, config_from_dict, config_to_dict
from textdiffusion.config.model import ModelConfig, ProcessConfig, SampleConfig
from textdiffusion.config.tasks import TASK_CONFIGS, LMConfig

CONFIG_NAME = "config.json"


class CheckpointError(RuntimeError):
    """A checkpoint is missing, incomplete, corrupt or from an incompatible version."""


@dataclasses.dataclass
class CheckpointConfig:
    """Everything in config.json."""

    model: ModelConfig
    process: ProcessConfig = dataclasses.field(default_factory=ProcessConfig)
    sample: SampleConfig = dataclasses.field(default_factory=SampleConfig)
    objective: str = "diffusion"
    """diffusion or ar."""
    task: str = "generate"
    """The task the model was trained for (a name of `textdiffusion.tasks.TASKS`): generate, denoise, ..."""
    task_config: Any = dataclasses.field(default_factory=LMConfig)
    """The task's typed settings: the dataclass `config.TASK_CONFIGS[task]`."""
    format_version: int = FORMAT_VERSION
    textdiffusion_version: str = __version__
    text_form: dict[str, Any] | None = None
    """How the training text was written (lower-cased, tokenised: `data.textform.TextForm`, read by
    `data.textform.read_form`); None, and absent from config.json: the model takes text as typed."""

    def to_dict(self) -> dict[str, Any]:
        data = config_to_dict(self)
        if data["text_form"] is None:  # models without a form keep the config.json they always had
            del data["text_form"]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, where: str = CONFIG_NAME) -> CheckpointConfig:
        data = migrate(dict(data), where=where)
        top = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - top)
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {unknown}; known keys: {sorted(top)}")
        if "model" not in data:
            raise ConfigError(f"{where}: missing the 'model' section")
        text_form = data.get("text_form")
        if text_form is not None and not isinstance(text_form, dict):
            raise ConfigError(
                f"{where}: text_form must be an object or null, got {json.dumps(text_form)}"
            )
        task = data.get("task", "generate")
        if task not in TASK_CONFIGS:
            raise ConfigError(
                f"{where}: unknown task {task!r}; known tasks: {sorted(TASK_CONFIGS)}"
            )
        return cls(
            model=config_from_dict(ModelConfig, data["model"], where=f"{where} [model]"),
            process=config_from_dict(
                ProcessConfig, data.get("process", {}), where=f"{where} [process]"
            ),
            sample=config_from_dict(
                SampleConfig, data.get("sample", {}), where=f"{where} [sample]"
            ),
            objective=data.get("objective", "diffusion"),
            task=task,
            task_config=config_from_dict(
                TASK_CONFIGS[task], data.get("task_config", {}), where=f"{where} [task_config]"
            ),
            format_version=FORMAT_VERSION,
            textdiffusion_version=data.get("textdiffusion_version", __version__),
            text_form=text_form,
        )


def migrate(data: dict[str, Any], *, where: str = CONFIG_NAME) -> dict[str, Any]:
    """Bring an older config.json up to FORMAT_VERSION; a newer one is an error.

    Version 0 (before format_version existed) kept the network settings under "model_args", nanoGPT style.
    Version 1 kept `task_config` as a free dict that each pipeline read by key; version 2 holds the task's typed
    dataclass (`config.TASK_CONFIGS`), every field present. The keys of version 1 are those fields, so the
    migration completes the section with the defaults (and the dataclass then refuses any unknown key).
    """
    version = data.get("format_version", 0)
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"{where}: format_version {version!r} is newer than this textdiffusion ({__version__}) reads "
            f"(up to {FORMAT_VERSION}); upgrade textdiffusion"
        )
    if version == 0:
        data = dict(data)
        if "model_args" in data:
            data["model"] = data.pop("model_args")
        data["format_version"] = version = 1
    if version == 1:
        task = data.get("task", "generate")
        if task in TASK_CONFIGS:
            known = {f.name: f for f in dataclasses.fields(TASK_CONFIGS[task])}
            old = dict(data.get("task_config") or {})
            data["task_config"] = {
                **{n: config_to_dict(TASK_CONFIGS[task]())[n] for n in known if n not in old},
                **old,
            }
        data["format_version"] = 2
    return data
