"""Image captioning on the tiny COCO 2017 subset: BLEU and chrF of a captioning model's captions of the visible
validation images against their five human captions, beside two baselines that do not read the image as a model
does, at several numbers of refinement steps.

The data are `../shared/data/coco_tiny` (50 training images, 35 visible validation images, 5 captions each).
Baselines, both chosen from the training captions only:
- one caption for every image: the training caption with the highest mean chrF against all the others;
- the nearest training image's caption: the training image closest in pixels (64 x 64 centre crops), its caption
  with the highest mean chrF against its other four.
Scores are sacrebleu's corpus BLEU and chrF (0..100) against all five references.

    python -m bench.captioning --model runs/caption-coco                  # 35 images, 8/16/32 steps
    python -m bench.captioning --model runs/caption-coco --quick          # 16 steps
    python -m bench.captioning --render bench/results/captioning-cpu.json # redraw the tables
"""

from __future__ import annotations

import dataclasses
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from bench.common import overlap
from bench.harness import (
    SHARED_DATA,
    BenchArgs,
    Benchmark,
    Results,
    log,
    markdown_table,
    parse_args,
    run,
    run_case,
)
from textdiffusion.tasks.caption.images import center_crop, load_image, read_captions

DATA_DIR = SHARED_DATA / "coco_tiny"


@dataclasses.dataclass
class CaptionArgs(BenchArgs):
    model: str = "runs/caption-coco"
    """A model trained with `textdiffusion train --task caption` (scripts/train_caption_coco.sh)."""
    train: str = str(DATA_DIR / "captions_train2017.tsv")
    """Caption table of the training images (for the baselines)."""
    test: str = str(DATA_DIR / "captions_val2017.visible.tsv")
    """Caption table of the images to describe."""
    image_root: str = str(DATA_DIR / "images")
    steps: tuple[int, ...] = (8, 16, 32)
    """Refinement steps."""
    sampler: str | None = None
    """ancestral, cached or confidence (default: the model's saved sampler)."""
    temperature: float | None = None
    """Softmax temperature (default: the model's saved one)."""
    batch_size: int = 16
    examples: int = 5
    """Captions kept in the results (and shown under the table)."""


QUICK = dict(quick=True, steps=(16,))


def by_image(table: str, root: str) -> dict[Path, list[str]]:
    groups: dict[Path, list[str]] = defaultdict(list)
    for path, caption in read_captions([table], image_root=root):
        groups[path].append(caption)
    return dict(groups)


def central(captions: list[str]) -> str:
    """The caption with the highest mean chrF against the others (the most typical one)."""
    import sacrebleu

    if len(captions) == 1:
        return captions[0]

    def mean_chrf(i: int) -> float:
        others = [c for j, c in enumerate(captions) if j != i]
        return float(np.mean([sacrebleu.sentence_chrf(captions[i], [o]).score for o in others]))

    return captions[max(range(len(captions)), key=mean_chrf)]


def pixels(paths: list[Path], size: int = 64) -> np.ndarray:
    return np.stack([center_crop(load_image(p, size), size) for p in paths]).reshape(len(paths), -1)


def score(name: str, outputs: list[str], references: list[list[str]], **fields) -> dict:
    return {"case": name, **overlap(outputs, references), **fields}


def main(args: CaptionArgs) -> dict:
    return run(BENCH, args, lambda results, device: measure(args, results, device))


def measure(args: CaptionArgs, results: Results, device) -> None:
    from textdiffusion.pipelines import CaptionPipeline

    train, test = by_image(args.train, args.image_root), by_image(args.test, args.image_root)
    images, references = list(test), list(test.values())
    log(f"{len(images)} images, {len(train)} training images")
    pipe = CaptionPipeline.from_pretrained(args.model, device=str(device))
    saved = pipe.config.sample
    sampler = (
        f"{args.sampler or saved.sampler} at temperature {args.temperature or saved.temperature:g}"
    )
    if (args.sampler or saved.sampler) == "confidence" and saved.threshold:
        sampler += f", threshold {saved.threshold:g}"
    results.set(
        "model",
        {"path": args.model, "parameters": pipe.model.num_parameters(), "sampler": sampler},
    )

    def constant() -> dict:
        caption = central([c for captions in train.values() for c in captions])
        return score(
            "one caption for every image", [caption] * len(images), references, example=caption
        )

    def nearest() -> dict:
        train_paths = list(train)
        a, b = pixels(train_paths).astype(np.float32), pixels(images).astype(np.float32)
        distance = (b**2).sum(1)[:, None] - 2 * b @ a.T + (a**2).sum(1)[None]
        picks = [central(train[train_paths[j]]) for j in distance.argmin(1)]
        return score("nearest training image's caption", picks, references)

    run_case(results, "rows", "one caption for every image", constant)
    run_case(results, "rows", "nearest training image's caption", nearest)
    for steps in args.steps:

        def describe(steps=steps) -> dict:
            start = time.perf_counter()
            out = pipe(
                images,
                steps=steps,
                sampler=args.sampler,
                temperature=args.temperature,
                batch_size=args.batch_size,
                seed=0,
            )
            seconds = time.perf_counter() - start
            record = score(
                f"model, {steps} steps",
                out.texts,
                references,
                steps=steps,
                images_per_s=len(images) / seconds,
                calls_per_batch=out.network_calls / -(-len(images) // args.batch_size),
            )
            record["examples"] = [
                {"image": p.name, "caption": c, "reference": r[0]}
                for p, c, r in list(zip(images, out.texts, references))[: args.examples]
            ]
            return record

        record = run_case(results, "rows", f"model, {steps} steps", describe)
        if "bleu" in record:
            log(f"{steps} steps: BLEU {record['bleu']:.1f}, chrF {record['chrf']:.1f}")


COLUMNS = [
    ("case", "captions", ""),
    ("bleu", "BLEU", ".1f"),
    ("chrf", "chrF", ".1f"),
    ("images_per_s", "images/s", ".1f"),
    ("calls_per_batch", "network calls per batch", ".1f"),
]


def render(data: dict) -> str:
    rows, columns = data.get("rows", []), COLUMNS
    model = data.get("model", {})
    constant = next((r.get("example") for r in rows if r.get("example")), None)
    shown_row = next((r for r in rows if r.get("examples")), None)
    shown = "\n".join(
        f"- `{e['image']}`\n  - model: {e['caption']}\n  - a human: {e['reference']}"
        for e in (shown_row or {}).get("examples", [])
    )
    return (
        f"Captions of `{Path(data['args']['test']).name}` by model `{model.get('path')}` "
        f"({model.get('parameters', 0) / 1e6:.1f}M parameters), sampler {model.get('sampler')}, seed 0. sacrebleu corpus BLEU and "
        "chrF against the five human captions.\n\n"
        + markdown_table(rows, columns)
        + (f'\n\nThe one caption for every image: "{constant}"' if constant else "")
        + (f"\n\nFirst captions ({shown_row['case']}):\n\n{shown}" if shown else "")
    )


def summary(data: dict) -> str:
    return markdown_table(data.get("rows", []), COLUMNS[:3])


BENCH = Benchmark("captioning", "Image captioning", render=render, summary=summary)


if __name__ == "__main__":
    main(parse_args(CaptionArgs, QUICK))
