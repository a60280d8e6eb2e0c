"""The README's examples run, and the commands it shows use flags the CLI has."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from textdiffusion.cli import commands, main

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", ROOT / "textdiffusion" / "pretrained" / "README.md"]


def blocks(path: Path, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", path.read_text(), re.S)


def cli_lines(path: Path) -> list[list[str]]:
    """The `textdiffusion SUBCOMMAND ...` commands of the file (its shell blocks, also under torchrun, and inline
    code), as words from the subcommand on, comments and line continuations removed."""
    text = path.read_text()
    lines = [
        line for block in blocks(path, "bash") for line in block.replace("\\\n", " ").splitlines()
    ]
    lines += re.findall(r"`(textdiffusion [^`]+)`", text)
    found = []
    for line in lines:
        words = shlex.split(line, comments=True)
        for i, word in enumerate(words[:-1]):
            if word == "textdiffusion" and (i == 0 or words[i - 1] in ("-m", "&&")):
                if not words[i + 1].startswith("-"):  # `textdiffusion --help`
                    found.append(words[i + 1 :])
                break
    return found


def test_readme_python_example_runs(capsys):
    (code,) = blocks(ROOT / "README.md", "python")
    exec(compile(code, "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "ROMEO: " in out  # the infilled line
    assert "['receive', 'This is a test.']" in out  # the corrected typos


@pytest.mark.parametrize("path", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_documented_commands_use_existing_flags(path, capsys):
    lines = cli_lines(path)
    assert lines, f"no textdiffusion commands found in {path}"
    helps: dict[str, str] = {}
    for words in lines:
        name = words[0]
        assert name in commands(), (
            f"{path.name}: unknown subcommand in `textdiffusion {' '.join(words)}`"
        )
        if name not in helps:
            with pytest.raises(SystemExit):
                main([name, "--help"])
            helps[name] = capsys.readouterr().out
        for flag in (w.split("=")[0] for w in words if w.startswith("--")):
            assert re.search(rf"{re.escape(flag)}\b", helps[name]), (
                f"{path.name}: `textdiffusion {name}` has no {flag} (`{' '.join(words)}`)"
            )
