"""The lexicon's symspell index on disk, so that a `Lexicon` starts in well under a second instead of ~7 s.

Building symspell's symmetric-delete table for the 82,765-word English dictionary (every deletion of up to 3 letters
of each word's 7-letter prefix: 769 k entries pointing at 4.2 M words) costs seconds of pure Python at every start.
The first build writes the finished table as flat numpy arrays (never a pickle) to
`$TEXTDIFFUSION_CACHE` (default `$XDG_CACHE_HOME/textdiffusion`, i.e. `~/.cache/textdiffusion`), named by a hash of
the lexicon files' bytes, the edit distance and the symspellpy version; later starts read it and look the deletions
up on demand (`DeleteTable`). A missing, stale or corrupt file is rebuilt, and an unwritable folder only costs the
speed-up.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import zipfile
from collections.abc import Iterator, Mapping
from importlib.metadata import version
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

FORMAT = 1
"""Bumped whenever the arrays change meaning: an older file is then simply not found."""


def cache_dir() -> Path:
    """Where lexicon indexes are kept: `$TEXTDIFFUSION_CACHE`, else `$XDG_CACHE_HOME/textdiffusion`."""
    if os.environ.get("TEXTDIFFUSION_CACHE"):
        return Path(os.environ["TEXTDIFFUSION_CACHE"]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache").expanduser() / "textdiffusion"


def index_path(sources: list, *, max_edit_distance: int, prefix_length: int) -> Path:
    """The index file of these lexicon files (read as bytes: `Path` or importlib `Traversable`) and settings."""
    digest = hashlib.sha256(
        f"{FORMAT} {version('symspellpy')} {max_edit_distance} {prefix_length}".encode()
    )
    for source in sources:
        digest.update(source.read_bytes())
    return cache_dir() / f"lexicon-{digest.hexdigest()[:24]}.npz"


class DeleteTable(Mapping):
    """symspell's deletion -> words table, read-only, from flat arrays: the words of deletion j are
    `words[ids[offsets[j]:offsets[j + 1]]]`, in the order symspell added them."""

    def __init__(
        self, keys: list[str], offsets: np.ndarray, ids: np.ndarray, words: list[str]
    ) -> None:
        self._slot = dict(zip(keys, range(len(keys))))
        self._offsets, self._ids, self._words = offsets.tolist(), ids, words

    def __getitem__(self, key: str) -> list[str]:
        j = self._slot[key]
        return [self._words[i] for i in self._ids[self._offsets[j] : self._offsets[j + 1]].tolist()]

    def __contains__(self, key: object) -> bool:
        return key in self._slot

    def __iter__(self) -> Iterator[str]:
        return iter(self._slot)

    def __len__(self) -> int:
        return len(self._slot)


def _pack(strings: list[str]) -> np.ndarray:
    return np.frombuffer("\n".join(strings).encode("utf-8"), dtype=np.uint8)


def _unpack(packed: np.ndarray, n: int) -> list[str]:
    strings = packed.tobytes().decode("utf-8").split("\n") if n else []
    if len(strings) != n:
        raise ValueError(f"expected {n} strings, found {len(strings)}")
    return strings


def save(path: Path, words: dict[str, int], deletes: Mapping, pairs: dict[str, int]) -> None:
    """Write the index atomically (a temporary file, then a rename); an unwritable folder is logged, not raised."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False)
    except OSError as exc:
        logger.info("lexicon index not cached (%s): the next start builds it again", exc)
        return
    order = {word: i for i, word in enumerate(words)}
    lengths = [len(found) for found in deletes.values()]
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    ids = np.fromiter(
        (order[word] for found in deletes.values() for word in found),
        dtype=np.int32,
        count=int(offsets[-1]),
    )
    try:
        with handle:
            np.savez(
                handle,
                words=_pack(list(words)),
                counts=np.array(list(words.values()), dtype=np.int64),
                deletes=_pack(list(deletes)),
                offsets=offsets,
                ids=ids,
                pairs=_pack(list(pairs)),
                pair_counts=np.array(list(pairs.values()), dtype=np.int64),
            )
        os.replace(handle.name, path)
    except OSError as exc:  # a full disk
        Path(handle.name).unlink(missing_ok=True)
        logger.info("lexicon index not cached (%s): the next start builds it again", exc)


def load(path: Path) -> tuple[dict[str, int], DeleteTable, dict[str, int]] | None:
    """(words with counts, deletion table, word pairs with counts), or None when the file is missing or unusable."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            counts, pair_counts = data["counts"].tolist(), data["pair_counts"].tolist()
            offsets, ids = data["offsets"], data["ids"]
            words = _unpack(data["words"], len(counts))
            keys = _unpack(data["deletes"], len(offsets) - 1)
            pairs = _unpack(data["pairs"], len(pair_counts))
        if offsets[-1] != len(ids) or (len(ids) and not 0 <= ids.min() <= ids.max() < len(words)):
            raise ValueError("the deletion table does not match the words")
    except (OSError, EOFError, ValueError, KeyError, IndexError, zipfile.BadZipFile) as exc:
        logger.warning("rebuilding the unreadable lexicon index %s (%s)", path, exc)
        return None
    return (
        dict(zip(words, counts)),
        DeleteTable(keys, offsets, ids, words),
        dict(zip(pairs, pair_counts)),
    )
