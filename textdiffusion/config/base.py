"""What every config dataclass shares: the error type, the check that raises it, and the round trip through the
JSON of config.json (unknown keys are an error that names them)."""

from __future__ import annotations

import dataclasses
import json
from typing import Any, TypeVar

FORMAT_VERSION = 2
"""The layout version of config.json (checkpoint.migrate brings older ones up to it)."""


class ConfigError(ValueError):
    """A configuration value or key is invalid; the message names the flag or key."""


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


C = TypeVar("C")


def config_from_dict(cls: type[C], data: dict[str, Any], *, where: str = "config.json") -> C:
    """Build a config dataclass from a dict; unknown keys are an error that names them."""
    if not isinstance(data, dict):
        raise ConfigError(
            f"{where}: expected an object for {cls.__name__}, got {type(data).__name__}"
        )
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {unknown} for {cls.__name__}; known keys: {sorted(names)}"
        )
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
    try:
        return cls(**values)
    except (TypeError, ConfigError) as exc:
        # a wrong type, or a value its checks refuse: name the file
        raise ConfigError(f"{where}: {exc}") from exc


def config_to_dict(config: Any) -> dict[str, Any]:
    return json.loads(json.dumps(dataclasses.asdict(config)))
