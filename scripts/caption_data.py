"""Build the captioner's training and validation tables from the offline sources (the recipe
scripts/train_captioner.sh runs this first).

Sources, every path absolute in the tables written (so they can live anywhere):
- photos: ../shared/data/coco_tiny (50 training images; its 35 visible validation images stay validation) and
  ../shared/data/coco_mini (118 visible images, a quarter of them, by image, kept as validation: sorted by image id,
  `random.Random(f"{seed}:coco-mini").sample`), 5 captions each;
- drawings: Debian's openclipart-svg rendered by scripts/render_openclipart.py (its own 80/20 split by file);
- generated scenes: scripts/make_scenes.py (validation scenes hold colour-shape pairs never seen in training).

Writes OUT/train.tsv (photo rows repeated --photo-repeat times, so that the few photos are not drowned by the
thousands of drawings and scenes), OUT/valid_<set>.tsv for each validation set, OUT/train_<source>.tsv for each source
(photos, clipart, scenes; once each: the baselines' training captions), and OUT/README.md with the counts.

    python scripts/caption_data.py runs/caption-data --clipart runs/openclipart --scenes runs/scenes
"""

from __future__ import annotations

import argparse
import random
import sys
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # run from a checkout without installing

from textdiffusion.tasks.caption.images import read_captions  # noqa: E402


def read_table(path: Path, root: Path) -> list[tuple[str, str]]:
    """(absolute image path, caption) rows of a caption table whose image paths are relative to `root`."""
    return [(str(p.resolve()), c) for p, c in read_captions([path], image_root=root)]


def split_by_image(
    rows: list[tuple[str, str]], fraction: float, salt: str
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(training rows, validation rows): `fraction` of the images (sorted by path) with all their captions held out."""
    images = sorted({image for image, _ in rows})
    held = set(random.Random(salt).sample(images, round(len(images) * fraction)))
    return [r for r in rows if r[0] not in held], [r for r in rows if r[0] in held]


def write(path: Path, rows: list[tuple[str, str]]) -> None:
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write("image\tcaption\n")
        for image, caption in rows:
            f.write(f"{image}\t{caption}\n")


def main(argv: list[str] | None = None) -> int:
    from textdiffusion.data import DataError

    try:
        return build(argv)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def build(argv: list[str] | None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("out", type=Path)
    ap.add_argument("--shared", type=Path, default=HERE.parent.parent / "shared" / "data")
    ap.add_argument("--clipart", type=Path, help="output folder of scripts/render_openclipart.py")
    ap.add_argument("--scenes", type=Path, help="output folder of scripts/make_scenes.py")
    ap.add_argument("--photo-repeat", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--overwrite", action="store_true")
    args = ap.parse_args(argv)
    if args.out.exists() and any(args.out.iterdir()) and not args.overwrite:
        print(f"error: {args.out} is not empty (--overwrite replaces its tables)", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    tiny, mini = args.shared / "coco_tiny", args.shared / "coco_mini"
    for folder in (tiny, mini):
        if not folder.is_dir():
            print(
                f"error: {folder} not found (--shared: the folder holding coco_tiny and coco_mini)",
                file=sys.stderr,
            )
            return 2
    mini_train, mini_valid = split_by_image(
        read_table(mini / "captions.visible.tsv", mini / "images"), 0.25, f"{args.seed}:coco-mini"
    )
    photos = read_table(tiny / "captions_train2017.tsv", tiny / "images") + mini_train
    train = photos * args.photo_repeat
    sources = {"photos": photos}
    valid = {
        "coco_tiny": read_table(tiny / "captions_val2017.visible.tsv", tiny / "images"),
        "coco_mini": mini_valid,
    }
    for name, folder in (("clipart", args.clipart), ("scenes", args.scenes)):
        if folder is None:
            continue
        sources[name] = read_table(folder / "train.tsv", folder)
        train += sources[name]
        valid[name] = read_table(folder / "valid.tsv", folder)
    write(args.out / "train.tsv", train)
    for name, rows in sources.items():
        write(args.out / f"train_{name}.tsv", rows)
    counts = defaultdict(int)
    for name, rows in valid.items():
        write(args.out / f"valid_{name}.tsv", rows)
        counts[name] = len({image for image, _ in rows})
    lines = [
        "# Captioner data (scripts/caption_data.py)",
        "",
        f"train.tsv: {len(train)} rows; photos: {len({i for i, _ in photos})} images, "
        f"{len(photos)} captions, each row repeated {args.photo_repeat} times.",
        *(
            f"valid_{name}.tsv: {counts[name]} images, {len(rows)} captions."
            for name, rows in valid.items()
        ),
        "",
        f"coco_mini validation quarter (seed {args.seed}): "
        + ", ".join(sorted(Path(i).name for i in {i for i, _ in mini_valid})),
    ]
    (args.out / "README.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines[:-2]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
