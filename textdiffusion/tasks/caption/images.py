"""(image, caption) pairs for captioning: caption tables, images read with Pillow, and the training stream.

A caption table is a .tsv or .csv file with a header naming an image column (`image`, `file_name`, `file` or `path`)
and a caption column (`caption` or `text`), or a .jsonl file with those fields; an image may have several captions
(one row each). Image paths are relative to `image_root` (default: the table's folder).

Images are kept in memory as uint8 squares of `image_size + margin(image_size)` pixels: the shorter side resized to
that, the centre cut out. Training reads random `image_size` crops of them (a little augmentation); captioning reads
the centre crop.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from textdiffusion.data.corpus import DataError
from textdiffusion.data.seq2seq import TargetStream

IMAGE_COLUMNS = ("image", "file_name", "file", "path")
CAPTION_COLUMNS = ("caption", "text")


def margin(image_size: int) -> int:
    """Extra pixels kept around a stored image, for random training crops."""
    return image_size // 8


def _pick(names: Sequence[str], wanted: tuple[str, ...], path: Path, what: str) -> str:
    for name in wanted:
        if name in names:
            return name
    raise DataError(
        f"{path}: no {what} column; expected one of {list(wanted)}, found {list(names)}"
    )


def read_caption_table(path: str | Path) -> list[tuple[str, str]]:
    """(image path as written, caption) rows of one table; rows with an empty caption are skipped."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"caption file {path} does not exist")
    if path.suffix not in (".tsv", ".csv", ".jsonl"):
        raise DataError(f"{path}: caption files are .tsv, .csv or .jsonl, got {path.suffix!r}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path} is not UTF-8 text ({exc.reason})") from None
    rows: list[dict[str, Any]]
    if path.suffix == ".jsonl":
        rows = []
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise DataError(f"{path}:{n}: not a JSON object ({exc.msg})") from None
        names = sorted({k for row in rows if isinstance(row, dict) for k in row})
    else:
        reader = csv.DictReader(text.splitlines(), delimiter="\t" if path.suffix == ".tsv" else ",")
        rows, names = list(reader), list(reader.fieldnames or [])
    image_key = _pick(names, IMAGE_COLUMNS, path, "image")
    caption_key = _pick(names, CAPTION_COLUMNS, path, "caption")
    out = []
    for row in rows:
        image, caption = row.get(image_key), row.get(caption_key)
        if isinstance(image, str) and isinstance(caption, str) and caption.strip() and image:
            out.append((image, " ".join(caption.split())))
    if not out:
        raise DataError(f"{path} holds no (image, caption) row")
    return out


def read_captions(
    paths: Sequence[str | Path], *, image_root: str | Path | None = None
) -> list[tuple[Path, str]]:
    """(image file, caption) pairs of the tables `paths`; a missing image file is an error that names it."""
    pairs = []
    for table in paths:
        root = Path(image_root) if image_root else Path(table).parent
        pairs += [(root / image, caption) for image, caption in read_caption_table(table)]
    missing = sorted({str(p) for p, _ in pairs if not p.is_file()})
    if missing:
        hint = "" if image_root else " (set --image-root to the folder the paths are relative to)"
        raise DataError(f"{len(missing)} image file(s) not found{hint}: " + ", ".join(missing[:3]))
    return pairs


MAX_PIXELS = 1_000_000_000
"""The largest image read (width x height); Pillow's own guard (about 179M pixels) is lifted up to this."""


def _open_rgb(image: Any, side: int):
    """A PIL RGB image of a file path or a PIL image; transparency composited on white, JPEGs decoded at a reduced
    scale when much larger than `side` (Pillow's draft mode)."""
    from PIL import Image

    if isinstance(image, (str, Path)):
        path = Path(image)
        if path.is_dir():
            raise DataError(f"{path} is a folder, not an image (give its files, e.g. {path}/*.jpg)")
        if not path.is_file():
            raise DataError(f"image file {path} does not exist")
        guard, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, MAX_PIXELS
        try:
            with Image.open(path) as opened:
                opened.draft("RGB", (side, side))  # JPEG only: decode at 1/2, 1/4 or 1/8 scale
                return _rgb(opened)  # reads the whole file, so it can be closed
        finally:
            Image.MAX_IMAGE_PIXELS = guard
    if not isinstance(image, Image.Image):
        raise DataError(f"an image is a file path or a PIL image, got {type(image).__name__}")
    return _rgb(image)


def _rgb(picture):
    from PIL import Image

    if picture.mode in ("RGBA", "LA", "PA") or "transparency" in picture.info:
        rgba = picture.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return picture.convert("RGB")  # grayscale, palette, CMYK, 16-bit...


def load_image(image: Any, size: int) -> np.ndarray:
    """uint8 (3, size + margin, size + margin) RGB of an image file path or a PIL image (any mode: grayscale,
    palette, CMYK, transparency on white; from 1 pixel to `MAX_PIXELS`)."""
    from PIL import Image, UnidentifiedImageError

    side = size + margin(size)
    try:
        picture = _open_rgb(image, side)
    except DataError:
        raise
    except Image.DecompressionBombError:
        raise DataError(
            f"the image {image} is too large to read (more than {MAX_PIXELS:,} pixels)"
        ) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise DataError(f"cannot read the image {image}: {exc}") from None
    w, h = picture.size
    scale = side / min(w, h)
    picture = picture.resize(
        (max(side, round(w * scale)), max(side, round(h * scale))),
        Image.BICUBIC,
        reducing_gap=3.0,  # big images: a cheap box reduction first, then bicubic
    )
    w, h = picture.size
    left, top = (w - side) // 2, (h - side) // 2
    picture = picture.crop((left, top, left + side, top + side))
    return np.asarray(picture, dtype=np.uint8).transpose(2, 0, 1).copy()


def center_crop(images: np.ndarray, size: int) -> np.ndarray:
    """The central (size, size) window of uint8 (N, 3, S', S') images."""
    offset = (images.shape[-1] - size) // 2
    return images[..., offset : offset + size, offset : offset + size]


class CaptionStream(TargetStream):
    """Batches of (image crop, caption) pairs: a `TargetStream` whose items are (image index, caption ids), with an
    image uint8 (b, 3, S, S) per row: a random crop of its image (`augment`) or the centre one."""

    def __init__(
        self, images: np.ndarray, captions, *, image_size: int, augment: bool = True, **kwargs
    ) -> None:
        super().__init__(captions, **kwargs)
        self.images, self.image_size, self.augment = images, image_size, augment

    def conditioning(self, keys: list[int], rng: np.random.Generator) -> dict[str, np.ndarray]:
        S = self.image_size
        offsets = rng.integers(0, self.images.shape[-1] - S + 1, (len(keys), 2))
        if not self.augment:
            return {"image": center_crop(self.images[keys], S)}
        crops = [
            self.images[key][:, dy : dy + S, dx : dx + S] for key, (dy, dx) in zip(keys, offsets)
        ]
        return {"image": np.stack(crops)}
