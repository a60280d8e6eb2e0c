"""Reading training text: plain files, folders, globs, JSONL with a text field, or a Hugging Face dataset."""

from __future__ import annotations

import glob
import gzip
import json
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path

logger = logging.getLogger(__name__)

TEXT_SUFFIXES = {".txt", ".md", ".text", ".jsonl", ".gz", ""}


class DataError(ValueError):
    """Input data is missing, empty or unreadable; the message names the file."""


def expand_paths(patterns: Sequence[str]) -> list[Path]:
    """Files named by `patterns`: files as given, folders searched recursively for text files, globs expanded."""
    files: list[Path] = []
    for pattern in patterns:
        path = Path(pattern).expanduser()
        if path.is_file():
            files.append(path)
        elif path.is_dir():
            found = sorted(
                p
                for p in path.rglob("*")
                if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in TEXT_SUFFIXES
            )
            if not found:
                raise DataError(f"folder {path} holds no text files (.txt, .md, .jsonl, .gz)")
            files.extend(found)
        else:
            matches = sorted(
                Path(p) for p in glob.glob(str(path), recursive=True) if Path(p).is_file()
            )
            if not matches:
                raise DataError(f"no file matches {pattern!r}")
            files.extend(matches)
    return files


def _read_text(path: Path) -> str:
    try:
        raw = gzip.open(path).read() if path.suffix == ".gz" else path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc}") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def read_documents(patterns: Sequence[str], *, jsonl_field: str = "text") -> Iterator[str]:
    """Yield documents: one per plain-text file, one per line of a .jsonl file (its `jsonl_field`)."""
    for path in expand_paths(patterns):
        text = _read_text(path)
        if path.name.endswith((".jsonl", ".jsonl.gz")):
            for number, line in enumerate(text.splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DataError(f"{path}:{number}: invalid JSON ({exc.msg})") from None
                if not isinstance(record, dict) or jsonl_field not in record:
                    raise DataError(
                        f"{path}:{number}: no field {jsonl_field!r} (set --jsonl-field)"
                    )
                yield str(record[jsonl_field])
        else:
            yield text


def read_line_pairs(sources: Sequence[str], targets: Sequence[str]) -> list[tuple[str, str]]:
    """(source, target) pairs from files aligned line by line: line i of the k-th target file is the target of line
    i of the k-th source file. Pairs with an empty side are skipped."""
    source_files, target_files = expand_paths(sources), expand_paths(targets)
    if len(source_files) != len(target_files):
        raise DataError(
            f"{len(source_files)} source files but {len(target_files)} target files: they pair up one to one"
        )
    pairs = []
    for source_file, target_file in zip(source_files, target_files):
        source_lines = _read_text(source_file).splitlines()
        target_lines = _read_text(target_file).splitlines()
        if len(source_lines) != len(target_lines):
            raise DataError(
                f"{source_file} has {len(source_lines)} lines but {target_file} has {len(target_lines)}: "
                "aligned files need one target line per source line"
            )
        pairs += [
            (s.strip(), t.strip())
            for s, t in zip(source_lines, target_lines)
            if s.strip() and t.strip()
        ]
    return pairs


def read_hf_dataset(name: str, *, split: str = "train", field: str = "text") -> Iterator[str]:
    """Documents from a Hugging Face `datasets` dataset name or a local data file (json/csv/parquet/text)."""
    try:
        import datasets
    except ImportError:
        raise DataError(
            "--hf-dataset needs the optional `datasets` package: pip install 'textdiffusion[datasets]'"
        ) from None
    path = Path(name)
    if path.is_file():
        builder = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}.get(
            path.suffix, "text"
        )
        dataset = datasets.load_dataset(builder, data_files=str(path), split=split)
    else:
        dataset = datasets.load_dataset(name, split=split)
    if field not in dataset.column_names:
        raise DataError(
            f"dataset {name!r} has no column {field!r}; columns: {dataset.column_names}"
        )
    for record in dataset:
        yield str(record[field])
