"""Render Debian's Open Clip Art drawings to PNG and write image-captioning tables for `textdiffusion train --task
caption`.

    apt-get install openclipart-svg librsvg2-bin
    python scripts/render_openclipart.py OUT [--source /usr/share/openclipart/svg] [--size 96]
        [--limit N] [--jobs 2] [--no-fit] [--overwrite] [--valid-fraction 0.2] [--seed 0]

Each SVG under SOURCE is drawn by `rsvg-convert` (`-w -h --keep-aspect-ratio`), cropped to what it draws and
scaled to fill a SIZE x SIZE square less a 4% border (`--no-fit`: the SVG's whole page fills it), laid on white and
centred: OUT/images/<path under SOURCE>.png (sub-folders kept, since 531 file names repeat within a category).
OUT/train.tsv and OUT/valid.tsv (`file_name<TAB>caption`, paths relative to OUT) hold one row per
rendered drawing; a drawing goes to valid.tsv when sha1("SEED:PATH") says so (`clipart.is_validation`), about
VALID_FRACTION of them. Captions come from the drawing's title, file name and keywords (`clipart.make_caption`).
OUT/README.md records the source, counts, split and licence. Drawings that cannot be read, fail or take over 20 s to
render, or render blank are skipped and counted on stderr.

Train on it with, for example:
    textdiffusion train --task caption --data OUT/train.tsv --valid OUT/valid.tsv --image-size 96 ...
"""

from __future__ import annotations

import argparse
import csv
import io
import shutil
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import numpy as np
from PIL import Image, UnidentifiedImageError

sys.path.insert(
    0, str(Path(__file__).resolve().parents[1])
)  # run from anywhere, no PYTHONPATH needed
from textdiffusion.data.corpus import DataError
from textdiffusion.tasks.caption.clipart import (
    ClipartMeta,
    group_titles,
    is_validation,
    make_caption,
    read_metadata,
)

DEFAULT_SOURCE = "/usr/share/openclipart/svg"
RENDER_TIMEOUT_S = 20.0
# A rendering is blank when fewer than this fraction of its pixels differ from white by more than 8 levels.
BLANK_FRACTION = 0.002
FIT_MARGIN = 0.04  # border left around a fitted drawing, as a share of the side
MAX_ZOOM = 16.0
FIT_PASSES = 3  # renderings after the first, at most, to fit a drawing
OUTPUTS = ("images", "train.tsv", "valid.tsv", "README.md")


@dataclass(frozen=True)
class Rendered:
    """What became of one drawing: `status` is "ok" or the reason it was skipped."""

    meta: ClipartMeta
    image: str  # the PNG's path relative to OUT
    status: str


class RenderFailed(Exception):
    """Why a drawing gave no image: "render error" or "timeout"."""


def rsvg_render(rsvg: str, svg: Path, *, width: int, height: int, timeout_s: float) -> Image.Image:
    """`svg` drawn by rsvg-convert to fit a `width` x `height` box (aspect kept), as RGBA."""
    command = [
        rsvg,
        "-w",
        str(width),
        "-h",
        str(height),
        "--keep-aspect-ratio",
        "-f",
        "png",
        str(svg),
    ]
    try:
        done = subprocess.run(command, capture_output=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        raise RenderFailed("timeout") from None
    if done.returncode != 0 or not done.stdout:
        raise RenderFailed("render error")
    try:
        with Image.open(io.BytesIO(done.stdout)) as opened:
            return opened.convert("RGBA")
    except (UnidentifiedImageError, OSError):
        raise RenderFailed("render error") from None


def on_white(drawing: Image.Image) -> Image.Image:
    """An RGBA image laid on an opaque white one of its size (RGB)."""
    flat = Image.new("RGB", drawing.size, "white")
    flat.paste(drawing, (0, 0), mask=drawing)
    return flat


def ink_box(drawing: Image.Image) -> tuple[int, int, int, int] | None:
    """(left, top, right, bottom) around the pixels that show on white (more than 8 levels off it), or None."""
    ink = (255 - np.asarray(on_white(drawing), dtype=np.int16)).max(axis=2) > 8  # (H, W)
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    if rows.size == 0:
        return None
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def render_svg(
    rsvg: str,
    svg: Path,
    png: Path,
    *,
    size: int,
    fit: bool = True,
    timeout_s: float = RENDER_TIMEOUT_S,
) -> str:
    """Draw `svg` into a white `size` x `size` PNG at `png`; "ok", or why it was not written ("render error",
    "timeout", "blank image").

    Without `fit`, the SVG's page is fitted into the square. With it, the page is drawn once at `size` to find
    where the drawing lies on it, then again (up to `FIT_PASSES` times, each from a closer look) at the scale (at
    most `MAX_ZOOM` times) that makes the drawing itself fill the square less a `FIT_MARGIN` border: many drawings
    cover a corner of a large Inkscape page.
    """
    deadline = time.monotonic() + timeout_s
    drawing = rsvg_render(rsvg, svg, width=size, height=size, timeout_s=timeout_s)
    if max(drawing.size) > size:  # rsvg-convert fits the box; guard against a version that does not
        drawing.thumbnail((size, size), Image.LANCZOS)
    if fit:
        inner = size - 2 * max(1, round(size * FIT_MARGIN))
        page, zoom = drawing.size, 1.0
        # a box found at low resolution is a pixel too big or small: zoom again from a closer look
        for _ in range(FIT_PASSES):
            box = ink_box(drawing)
            if box is None:
                break
            side = max(box[2] - box[0], box[3] - box[1])
            new_zoom = min(zoom * inner / side, MAX_ZOOM)
            if 0.95 * inner <= side <= inner or new_zoom == zoom:
                break
            zoom = new_zoom
            drawing = rsvg_render(
                rsvg,
                svg,
                width=max(1, round(page[0] * zoom)),
                height=max(1, round(page[1] * zoom)),
                timeout_s=max(deadline - time.monotonic(), 0.1),
            )
        box = ink_box(drawing)
        if box is not None:
            drawing = drawing.crop(box)
            if max(drawing.size) > inner:
                drawing.thumbnail((inner, inner), Image.LANCZOS)
    square = Image.new("RGBA", (size, size), (255, 255, 255, 0))
    w, h = drawing.size
    square.paste(drawing, ((size - w) // 2, (size - h) // 2))
    square = on_white(square)
    if ((255 - np.asarray(square, dtype=np.int16)).max(axis=2) > 8).mean() < BLANK_FRACTION:
        return "blank image"
    png.parent.mkdir(parents=True, exist_ok=True)
    square.save(png, optimize=True)
    return "ok"


def render_or_reason(rsvg: str, svg: Path, png: Path, **kwargs) -> str:
    """`render_svg`, with a failed rendering's reason as its answer."""
    try:
        return render_svg(rsvg, svg, png, **kwargs)
    except RenderFailed as failure:
        return str(failure)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Render Open Clip Art SVGs to PNG and write caption tables (train.tsv, valid.tsv).",
    )
    parser.add_argument("out", type=Path, help="output folder (must be empty unless --overwrite)")
    parser.add_argument(
        "--source", type=Path, default=Path(DEFAULT_SOURCE), help="SVG library root"
    )
    parser.add_argument("--size", type=int, default=96, help="side of the square PNGs in pixels")
    parser.add_argument("--limit", type=int, default=None, help="render only the first N SVGs")
    parser.add_argument("--jobs", type=int, default=2, help="rsvg-convert processes at a time")
    parser.add_argument(
        "--no-fit",
        dest="fit",
        action="store_false",
        help="fit the SVG's page into the square, not the drawing on it",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier run in OUT")
    parser.add_argument("--valid-fraction", type=float, default=0.2, help="share held out")
    parser.add_argument("--seed", type=int, default=0, help="seed of the train/valid split")
    args = parser.parse_args(argv)

    def fail(message: str) -> NoReturn:
        sys.exit(f"render_openclipart.py: error: {message}")

    if args.size < 8:
        fail(f"--size must be at least 8, got {args.size}")
    if args.jobs < 1:
        fail(f"--jobs must be at least 1, got {args.jobs}")
    if args.limit is not None and args.limit < 1:
        fail(f"--limit must be at least 1, got {args.limit}")
    if not 0.0 <= args.valid_fraction < 1.0:
        fail(f"--valid-fraction must be in [0, 1), got {args.valid_fraction}")
    if not args.source.is_dir():
        fail(
            f"--source {args.source} is not a folder (apt-get install openclipart-svg, or point --source at "
            "the SVGs)"
        )
    if args.out.exists() and not args.out.is_dir():
        fail(f"OUT {args.out} is a file, not a folder")
    if args.out.is_dir() and any(args.out.iterdir()) and not args.overwrite:
        fail(f"OUT {args.out} is not empty; pass --overwrite to replace its earlier run")
    return args


def write_table(path: Path, rows: list[tuple[str, str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, delimiter="\t", lineterminator="\n")
        writer.writerow(["file_name", "caption"])
        writer.writerows(rows)


def write_readme(
    path: Path, *, argv: list[str], args: argparse.Namespace, rsvg_version: str, counts: dict
) -> None:
    framing = (
        f"each drawing cropped to what it draws and scaled to fill {args.size} x {args.size} pixels less a "
        f"{FIT_MARGIN:.0%} border (aspect kept)"
        if args.fit
        else f"each SVG page fitted into {args.size} x {args.size} pixels (aspect kept)"
    )
    heads = ", ".join(f"{source} {n}" for source, n in counts["sources"].items())
    skipped = "\n".join(f"  - {reason}: {n}" for reason, n in sorted(counts["skipped"].items()))
    path.write_text(
        f"""# Open Clip Art, rendered for image captioning

- Source: Debian's `openclipart-svg` package ({args.source}), the Open Clip Art Library's drawings
  (www.openclipart.org), {counts["found"]} SVG files in {counts["categories"]} categories.
- Licence: public domain (each drawing carries the Creative Commons Public Domain Dedication; treat it as CC0).
  No attribution is required; the authors are named in each SVG's metadata.
- Made by `scripts/render_openclipart.py {" ".join(argv)}` with
  {rsvg_version}: {framing}, laid on white and centred; `images/<path under the source>.png`.
- Rendered: {counts["rendered"]} of {counts["considered"]} drawings considered; skipped:
{skipped or "  - none"}
- Split by file: a drawing is in `valid.tsv` when the first 8 bytes of sha1("{args.seed}:<relative SVG path>"),
  read as a number in [0, 1), fall below {args.valid_fraction}. train.tsv: {counts["train"]} rows, valid.tsv:
  {counts["valid"]} rows (one caption per drawing). Variants of one drawing (colours, black and white copies)
  are separate files, so some fall on both sides.
- Captions: `<head>, <keyword>, ...`, lower case, at most 80 characters. The head is the title's words (CamelCase
  split, digits and file-name marks dropped), or the file name's when the title is shared by 8 or more drawings
  (a collection name such as "Lemon SVG theme"); then up to 4 keyword tags that are not generic ("icons",
  "unsorted", "hash", ...), not the author's name and not already said. Heads from: {heads}.
  {counts["sources"].get("category", 0)} drawing(s) had neither a usable title, file name nor keyword and are
  captioned with their category. Titles are as the authors wrote them: some are Italian, French or Spanish.
"""
    )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    rsvg = shutil.which("rsvg-convert")
    if rsvg is None:
        sys.exit(
            "render_openclipart.py: error: rsvg-convert not found on PATH (apt-get install librsvg2-bin)"
        )
    started = time.monotonic()
    svgs = sorted(args.source.rglob("*.svg"), key=lambda p: p.relative_to(args.source).as_posix())
    if not svgs:
        sys.exit(f"render_openclipart.py: error: --source {args.source} holds no .svg file")
    metas: list[ClipartMeta | None] = []
    skipped: Counter[str] = Counter()
    for svg in svgs:
        try:
            metas.append(read_metadata(svg, root=args.source))
        except DataError:
            metas.append(None)
    # collections are found over the whole library, so that --limit does not change a caption
    groups = group_titles(meta for meta in metas if meta is not None)
    chosen = list(zip(svgs, metas))[: args.limit]
    skipped["unreadable SVG"] = sum(meta is None for _, meta in chosen)

    if args.overwrite:
        for name in OUTPUTS:
            target = args.out / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
    (args.out / "images").mkdir(parents=True, exist_ok=True)

    def render(item: tuple[Path, ClipartMeta]) -> Rendered:
        svg, meta = item
        image = "images/" + meta.path[: -len(".svg")] + ".png"
        status = render_or_reason(rsvg, svg, args.out / image, size=args.size, fit=args.fit)
        return Rendered(meta, image, status)

    todo = [(svg, meta) for svg, meta in chosen if meta is not None]
    results: list[Rendered] = []
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        for n, result in enumerate(pool.map(render, todo), 1):
            results.append(result)
            if n % 500 == 0:
                print(
                    f"{n}/{len(todo)} drawings, {time.monotonic() - started:.0f} s", file=sys.stderr
                )

    rows: dict[str, list[tuple[str, str]]] = {"train": [], "valid": []}
    sources: Counter[str] = Counter()
    for result in results:
        if result.status != "ok":
            skipped[result.status] += 1
            continue
        caption = make_caption(result.meta, group_title=result.meta.title in groups)
        sources[caption.source] += 1
        held_out = is_validation(
            result.meta.path, seed=args.seed, valid_fraction=args.valid_fraction
        )
        rows["valid" if held_out else "train"].append((result.image, caption.text))
    for split, table in rows.items():
        write_table(args.out / f"{split}.tsv", table)
    skipped = Counter({reason: n for reason, n in skipped.items() if n})
    counts = {
        "found": len(svgs),
        "categories": len({p.relative_to(args.source).parts[0] for p in svgs}),
        "considered": len(chosen),
        "rendered": sum(sources.values()),
        "skipped": dict(skipped),
        "train": len(rows["train"]),
        "valid": len(rows["valid"]),
        "sources": dict(sorted(sources.items())),
    }
    version = subprocess.run([rsvg, "--version"], capture_output=True, text=True, check=False)
    write_readme(
        args.out / "README.md",
        argv=argv,
        args=args,
        rsvg_version=version.stdout.strip(),
        counts=counts,
    )
    print(
        f"rendered {counts['rendered']} of {counts['considered']} drawings in "
        f"{time.monotonic() - started:.0f} s: train {counts['train']}, valid {counts['valid']}; "
        f"skipped {sum(skipped.values())} ({', '.join(f'{k} {v}' for k, v in sorted(skipped.items())) or 'none'}); "
        f"caption heads from {', '.join(f'{k} {v}' for k, v in counts['sources'].items())} "
        f"({sources.get('category', 0)} fell back to the category)",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
