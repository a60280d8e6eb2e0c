"""Small helpers shared by the subcommands (the only place besides cli/ modules that prints)."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import Any


class CLIError(Exception):
    """A user error the CLI reports in one line, without a traceback."""


def join_help_lines() -> None:
    """Let `--help` wrap multi-line field docstrings as one paragraph.

    tyro 1.0 keeps a docstring's line break wherever the next line does not start with a letter, and tests that
    before it removes the indentation, so every indented continuation line broke the help text mid-sentence.
    Dedenting first keeps the breaks it means to keep (blank lines, list items). Nothing changes if tyro's internals
    do.
    """
    try:
        from tyro import _strings
    except ImportError:
        return
    split = getattr(_strings, "remove_single_line_breaks", None)
    if split is None or not hasattr(_strings, "dedent") or getattr(split, "dedents", False):
        return

    def dedented_first(helptext: str) -> str:
        return split(_strings.dedent(helptext))

    dedented_first.dedents = True  # type: ignore[attr-defined]
    _strings.remove_single_line_breaks = dedented_first


def resolve_device(device: str) -> str:
    """'auto' picks CUDA when present; anything else is checked now rather than mid-run."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise CLIError(
            f"--device {device}: CUDA is not available on this machine (use --device cpu)"
        )
    try:
        torch.device(device)
    except RuntimeError as exc:
        raise CLIError(f"--device {device!r} is not a device: {exc}") from None
    return device


def print_config(config: Any, *, title: str = "config", file=None) -> None:
    """Print the resolved config (one JSON line) so runs are reproducible from their logs."""
    data = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else config
    print(f"{title}: {json.dumps(data, default=str)}", file=file or sys.stderr)


def save_config(config: Any, path: Path) -> None:
    data = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else config
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")


def read_input(path: str, *, flag: str = "--file") -> bytes:
    """The bytes of `path`, or of standard input for '-'; a missing file, a folder or a closed standard input is
    a one-line CLIError."""
    if path == "-":
        stream = getattr(sys.stdin, "buffer", None)  # sys.stdin is None when descriptor 0 is closed
        try:
            if stream is None:
                raise OSError(9, "standard input is closed")
            return stream.read()
        except (OSError, ValueError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise CLIError(f"cannot read {flag} - (standard input): {reason}") from None
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise CLIError(f"cannot read {flag} {path}: {exc.strerror}") from None


def check_output_path(path: str, *, flag: str = "--out") -> None:
    """Fail before any work when `path` cannot be an output file (a folder, or a folder that does not exist)."""
    target = Path(path)
    if target.is_dir():
        raise CLIError(f"{flag} {path} is a folder; give a file name")
    if not target.parent.is_dir():
        raise CLIError(f"{flag} {path}: no such folder {target.parent}")


def write_output(path: str, data: bytes, *, flag: str = "--out") -> None:
    """Write `data` to `path` through a temporary sibling and a rename (never a half-written output, and no
    temporary file left behind on failure)."""
    check_output_path(path, flag=flag)
    target = Path(path)
    tmp = target.with_name(f".{target.name}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise CLIError(f"cannot write {flag} {path}: {exc.strerror or exc}") from None
