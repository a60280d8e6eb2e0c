"""Write a synthetic captioning set: scenes of coloured shapes on textured backgrounds with compositional captions,
whose validation scenes each hold a (colour, shape) pair that no training scene has.

    PYTHONPATH=. python scripts/make_scenes.py data/scenes --train 6000 --valid 500 --size 96 --seed 0

OUT/images/{train,valid}/NNNNN.png, OUT/train.tsv and OUT/valid.tsv (`file_name<TAB>caption`, paths relative to
OUT), OUT/valid.jsonl (each validation scene's groups, for `textdiffusion.tasks.caption.scenes.load_scenes` and
`attribute_rates`; also a caption table) and OUT/README.md. The same seed writes the same files.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from textdiffusion.tasks.caption.scenes import (
    ALL_PAIRS,
    caption,
    random_scene,
    render,
    split_pairs,
)

TABLES = ("train.tsv", "valid.tsv", "valid.jsonl", "README.md")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Write synthetic captioning scenes (shapes, colours, counts, positions on textured "
        "backgrounds) with compositional captions; validation scenes hold (colour, shape) pairs never seen in "
        "training.",
    )
    parser.add_argument(
        "out", type=Path, help="output folder (must be empty or absent, see --overwrite)"
    )
    parser.add_argument(
        "--train", type=int, default=6000, help="number of training scenes (default 6000)"
    )
    parser.add_argument(
        "--valid", type=int, default=500, help="number of validation scenes (default 500)"
    )
    parser.add_argument(
        "--size", type=int, default=96, help="image side in pixels, >= 32 (default 96)"
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the split and every scene (default 0)"
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="write into a non-empty OUT, first removing the images and tables a previous run wrote there",
    )
    return parser.parse_args(argv)


def _clear(out: Path) -> None:
    """Remove what an earlier run wrote in `out` (its images and tables), nothing else."""
    for split in ("train", "valid"):
        for png in (out / "images" / split).glob("*.png"):
            png.unlink()
    for name in TABLES:
        (out / name).unlink(missing_ok=True)


def _write_split(out: Path, split: str, scenes, size: int) -> list[str]:
    folder = out / "images" / split
    folder.mkdir(parents=True, exist_ok=True)
    rows = ["file_name\tcaption"]
    for i, scene in enumerate(scenes):
        name = f"images/{split}/{i:05d}.png"
        render(scene, size).save(
            out / name
        )  # seeded by scene.seed: the scene alone fixes the image
        rows.append(f"{name}\t{caption(scene)}")
    (out / f"{split}.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return [row.split("\t")[0] for row in rows[1:]]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for flag in ("train", "valid"):
        if getattr(args, flag) < 1:
            sys.exit(f"error: --{flag} must be >= 1, got {getattr(args, flag)}")
    if args.size < 32:
        sys.exit(f"error: --size must be >= 32, got {args.size}")
    out: Path = args.out
    if out.exists() and not out.is_dir():
        sys.exit(f"error: {out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not args.overwrite:
            sys.exit(f"error: {out} is not empty; pass --overwrite to write into it")
        _clear(out)
    out.mkdir(parents=True, exist_ok=True)

    start = time.perf_counter()
    train_pairs, held = split_pairs(args.seed)
    # Independent streams per split, so --valid does not change the training scenes.
    train_rng = np.random.default_rng([args.seed, 1])
    valid_rng = np.random.default_rng([args.seed, 2])
    train = [random_scene(train_rng, pairs=train_pairs) for _ in range(args.train)]
    valid = [random_scene(valid_rng, pairs=ALL_PAIRS, required=held) for _ in range(args.valid)]
    _write_split(out, "train", train, args.size)
    names = _write_split(out, "valid", valid, args.size)
    with open(out / "valid.jsonl", "w", encoding="utf-8") as f:
        for name, scene in zip(names, valid):
            row = {"file_name": name, "caption": caption(scene), **scene.to_dict()}
            f.write(json.dumps(row) + "\n")
    seconds = time.perf_counter() - start

    held_text = ", ".join(f"{c} {s}" for c, s in held)
    (out / "README.md").write_text(
        f"""# Synthetic captioning scenes

Made by `PYTHONPATH=. python scripts/make_scenes.py {out.name} --train {args.train} --valid {args.valid} \
--size {args.size} --seed {args.seed}` (textdiffusion/tasks/caption/scenes.py).

- {args.train} training and {args.valid} validation images, {args.size} x {args.size} RGB PNG, under images/.
- train.tsv, valid.tsv: `file_name<TAB>caption`, file names relative to this folder.
- valid.jsonl: per validation image its file_name, caption, groups (count, colour, shape, position),
  background and seed; `scenes.load_scenes("valid.jsonl")` rebuilds the scenes for `scenes.attribute_rates`,
  and `scenes.render(scene, {args.size})` redraws each image exactly.
- Each scene: one group (position left, right, top, bottom or middle) or, with probability 1/2, two groups
  (left and right, or top and bottom); counts 1-3; 8 colours x 4 shapes; backgrounds noise, stripes, checker
  or gradient in muted tones.
- Held-out (colour, shape) pairs (seed {args.seed}): {held_text}.
  No training scene has one; every validation scene has one in at least one group (its other group may have
  any pair).
""",
        encoding="utf-8",
    )
    print(
        f"wrote {args.train} + {args.valid} scenes to {out} in {seconds:.1f} s; held out: {held_text}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
