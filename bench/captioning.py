"""Image captioning on held-out pictures of every kind the captioner was trained on: BLEU-4 and chrF of the model's
captions against the human (or generated) ones, beside baselines chosen from the same source's training captions,
and, on the generated scenes, the share of attributes (colour, shape, count, position) named correctly.

Validation sets (the tables scripts/caption_data.py writes into --data): `coco_tiny` (its 35 visible validation
photos), `coco_mini` (the quarter of coco_mini's visible photos kept out of training, by image), `clipart` (20% of
the openclipart drawings, by file) and `scenes` (generated scenes whose colour-shape pairs never occur in training).
Baselines, from the training captions of the same source (photos, drawings or scenes):
- one caption for every image: the training caption with the highest mean chrF against the others (among
  --central-sample of them, drawn with seed 0);
- the nearest training image's caption, by raw pixels (32 x 32 centre crops) and by the model's image-encoder
  features (mean over patches, cosine): the neighbour's most typical caption (highest mean chrF to its others).
The model: one sampled caption, and the consensus of --candidates sampled ones (the pipeline's minimum Bayes risk
choice, which the shipped captioner uses). Scores are sacrebleu's corpus BLEU and chrF (0..100).

    python scripts/caption_data.py runs/caption-data --clipart runs/openclipart --scenes runs/scenes
    python -m bench.captioning --model captioner --data runs/caption-data
    python -m bench.captioning --render bench/results/captioning-cpu.json    # redraw the tables
"""

from __future__ import annotations

import dataclasses
import random
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from bench.common import overlap
from bench.harness import (
    BenchArgs,
    Results,
    log,
    markdown_table,
    parse_args,
    run,
    run_case,
)
from bench.harness import Benchmark as _Benchmark
from textdiffusion.evaluation.overlap import consensus
from textdiffusion.tasks.caption.images import center_crop, load_image, read_captions

SETS = ("coco_tiny", "coco_mini", "clipart", "scenes")
SOURCE = {"coco_tiny": "photos", "coco_mini": "photos", "clipart": "clipart", "scenes": "scenes"}


@dataclasses.dataclass
class CaptionArgs(BenchArgs):
    model: str = "captioner"
    """A captioning model: the shipped `captioner`, or a folder trained with --task caption."""
    data: str = "runs/caption-data"
    """The folder scripts/caption_data.py wrote (valid_<set>.tsv and train_<source>.tsv tables)."""
    sets: tuple[str, ...] = SETS
    """Validation sets to score (those without a table in --data are skipped)."""
    limit: int = 0
    """Score at most this many images of each set (0: all)."""
    steps: int | None = None
    """Refinement steps (default: the model's saved setting)."""
    candidates: int = 8
    """Captions sampled per image for the consensus row."""
    central_sample: int = 300
    """Training captions among which the constant caption is chosen."""
    batch_size: int = 32
    examples: int = 4
    """Captions kept in the results per set (and shown under the tables)."""


QUICK = dict(quick=True, limit=12, candidates=4, central_sample=100)


def by_image(table: Path, limit: int = 0) -> dict[Path, list[str]]:
    groups: dict[Path, list[str]] = defaultdict(list)
    for path, caption in read_captions([table], image_root="/"):
        groups[path].append(caption)
    items = list(groups.items())
    return dict(items[:limit] if limit else items)


def typical(captions: list[str]) -> str:
    """The caption with the highest mean chrF against the others."""
    return captions[consensus(captions)]


def pixels(paths: list[Path], size: int = 32) -> np.ndarray:
    crops = np.stack([center_crop(load_image(p, size), size) for p in paths]).astype(np.float32)
    return crops.reshape(len(paths), -1) / 255


def nearest(test: np.ndarray, train: np.ndarray) -> np.ndarray:
    """Index of the most similar training row (cosine) of each test row."""
    a = train / np.linalg.norm(train, axis=1, keepdims=True).clip(1e-8)
    b = test / np.linalg.norm(test, axis=1, keepdims=True).clip(1e-8)
    return (b @ a.T).argmax(1)


def main(args: CaptionArgs) -> dict:
    return run(BENCH, args, lambda results, device: measure(args, results, device))


def measure(args: CaptionArgs, results: Results, device) -> None:
    from textdiffusion.pipelines import CaptionPipeline

    data = Path(args.data)
    pipe = CaptionPipeline.from_pretrained(args.model, device=str(device))
    saved = pipe.config.sample
    results.set(
        "model",
        {
            "path": args.model,
            "parameters": pipe.model.num_parameters(),
            "sampler": f"{saved.sampler}, {args.steps or saved.steps} steps, temperature {saved.temperature:g}",
            "candidates": pipe.config.task_config.candidates,
        },
    )

    @torch.no_grad()
    def features(paths: list[Path]) -> np.ndarray:
        out = [
            pipe.model.encode_image(pipe.pixels(paths[i : i + 64])).mean(1).float().cpu().numpy()
            for i in range(0, len(paths), 64)
        ]
        return np.concatenate(out)

    def one_set(name: str) -> None:
        table = data / f"valid_{name}.tsv"
        if not table.is_file():
            log(f"{name}: no {table}, skipped")
            return
        test = by_image(table, args.limit)
        train = by_image(data / f"train_{SOURCE[name]}.tsv")
        images, references = list(test), list(test.values())
        train_paths = list(train)
        log(f"{name}: {len(images)} images, {len(train)} training images")
        truth = scene_truth(images) if name == "scenes" else None

        def score(outputs: list[str], **fields) -> dict:
            record = {"set": name, **overlap(outputs, references), **fields}
            if truth is not None:
                from textdiffusion.tasks.caption.scenes import attribute_rates

                record.update(attribute_rates(outputs, truth))
            record["examples"] = [
                {"image": p.name, "caption": c, "reference": r[0]}
                for p, c, r in list(zip(images, outputs, references))[: args.examples]
            ]
            return record

        def constant() -> dict:
            pool = [c for captions in train.values() for c in captions]
            sample = random.Random(0).sample(pool, min(len(pool), args.central_sample))
            return score([typical(sample)] * len(images))

        def neighbour(kind: str) -> dict:
            embed = pixels if kind == "pixels" else features
            picks = nearest(embed(images), embed(train_paths))
            return score([typical(train[train_paths[j]]) for j in picks])

        def model(candidates: int) -> dict:
            start = time.perf_counter()
            out = pipe(
                images,
                steps=args.steps,
                candidates=candidates,
                batch_size=args.batch_size,
                seed=0,
            )
            seconds = time.perf_counter() - start
            return score(out.texts, images_per_s=len(images) / seconds)

        run_case(results, "rows", "one caption for every image", constant, set=name)
        run_case(results, "rows", "nearest image's caption (pixels)", lambda: neighbour("pixels"))
        run_case(results, "rows", "nearest image's caption (encoder)", lambda: neighbour("encoder"))
        run_case(results, "rows", "model, one sample", lambda: model(1))
        record = run_case(
            results,
            "rows",
            f"model, consensus of {args.candidates}",
            lambda: model(args.candidates),
        )
        if "chrf" in record:
            log(f"{name}: model chrF {record['chrf']:.1f}, BLEU {record['bleu']:.1f}")

    for name in args.sets:
        one_set(name)


def scene_truth(images: list[Path]):
    """The generated scenes of `images`, from the valid.jsonl beside the scenes' tables (scripts/make_scenes.py)."""
    import json

    from textdiffusion.tasks.caption.scenes import Scene

    root = images[0].parents[2]  # SCENES/images/valid/NNNNN.png
    rows = [json.loads(line) for line in (root / "valid.jsonl").read_text().splitlines() if line]
    scenes = {row["file_name"]: Scene.from_dict(row) for row in rows}
    return [scenes[str(p.relative_to(root))] for p in images]


COLUMNS = [
    ("case", "captions", ""),
    ("bleu", "BLEU-4", ".1f"),
    ("chrf", "chrF", ".1f"),
    ("images_per_s", "images/s", ".1f"),
]
ATTRIBUTES = [
    ("overall", "attributes", ".1%"),
    ("colour", "colour", ".1%"),
    ("shape", "shape", ".1%"),
    ("count", "count", ".1%"),
    ("position", "position", ".1%"),
]


def _tables(data: dict, columns_of) -> str:
    rows = data.get("rows", [])
    parts = []
    for name in dict.fromkeys(r.get("set") for r in rows if r.get("set")):
        subset = [r for r in rows if r.get("set") == name]
        parts.append(f"**{name}**\n\n" + markdown_table(subset, columns_of(subset)))
    return "\n\n".join(parts)


def _columns(rows: list[dict]):
    return COLUMNS + (ATTRIBUTES if any("overall" in r for r in rows) else [])


def render(data: dict) -> str:
    model = data.get("model", {})
    examples = []
    for r in data.get("rows", []):
        if r.get("case", "").startswith("model, consensus"):
            examples += [
                f"- {r['set']} `{e['image']}`: model: {e['caption']} / reference: {e['reference']}"
                for e in r.get("examples", [])
            ]
    return (
        f"Model `{model.get('path')}` ({model.get('parameters', 0) / 1e6:.1f}M parameters), sampler "
        f"{model.get('sampler')}, seed 0; sacrebleu corpus BLEU-4 and chrF against every reference of an image.\n\n"
        + _tables(data, _columns)
        + ("\n\nExamples (consensus captions):\n\n" + "\n".join(examples) if examples else "")
    )


def summary(data: dict) -> str:
    return _tables(data, lambda rows: _columns(rows)[:3] + _columns(rows)[4:5])


BENCH = _Benchmark("captioning", "Image captioning", render=render, summary=summary)


if __name__ == "__main__":
    main(parse_args(CaptionArgs, QUICK))
