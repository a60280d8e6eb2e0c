"""What every config dataclass shares: the error type, the check that raises it, and the round trip through the
JSON of config.json (unknown keys are an error that names them)."""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from typing import Any, Literal, TypeVar

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
    hints = typing.get_type_hints(cls)
    for name, value in values.items():
        expected = _type_mismatch(value, hints.get(name, Any))
        if expected is not None:
            raise ConfigError(
                f"{where}: {name} must be {expected}, got {json.dumps(value, default=repr)} "
                f"({_json_type(value)})"
            )
    try:
        return cls(**values)
    except (TypeError, ConfigError) as exc:
        # a wrong type, or a value its checks refuse: name the file
        raise ConfigError(f"{where}: {exc}") from exc


def _json_type(value: Any) -> str:
    """The JSON name of a value's type, as a config.json author sees it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "integer" if isinstance(value, int) else "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (tuple, list)):
        return "list"
    return "object" if isinstance(value, dict) else type(value).__name__


def _type_mismatch(value: Any, hint: Any) -> str | None:
    """What `hint` expects, in words, when `value` (read from JSON) does not fit it; None when it fits.

    Checked before the dataclass is built: its own checks then compare numbers, and a string where a number belongs
    would fail there with a Python message ("not all arguments converted during string formatting"). Types this
    does not know (nested dataclasses, Any) are left to the dataclass.
    """
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return None
    if hint is type(None):
        return None if value is None else "null"
    if origin in (typing.Union, types.UnionType):
        options = [_type_mismatch(value, a) for a in args]
        if any(o is None for o in options):
            return None
        return " or ".join(dict.fromkeys(o for o in options if o))
    if origin is Literal:
        return None if value in args else f"one of {list(args)}"
    if hint is bool:
        return None if isinstance(value, bool) else "true or false"
    if hint is int:
        return None if isinstance(value, int) and not isinstance(value, bool) else "an integer"
    if hint is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return None if ok else "a number"
    if hint is str:
        return None if isinstance(value, str) else "a string"
    if origin is tuple:
        if not isinstance(value, tuple):
            return "a list"
        if len(args) == 2 and args[1] is Ellipsis:
            item = next(
                (_type_mismatch(v, args[0]) for v in value if _type_mismatch(v, args[0])), None
            )
            return None if item is None else f"a list of items that are each {item}"
        if len(value) != len(args) or any(_type_mismatch(v, a) for v, a in zip(value, args)):
            return f"a list of {len(args)} items ({', '.join(getattr(a, '__name__', str(a)) for a in args)})"
        return None
    return None


def config_to_dict(config: Any) -> dict[str, Any]:
    return json.loads(json.dumps(dataclasses.asdict(config)))
