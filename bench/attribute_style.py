"""Attribute (sentiment) transfer on Yelp reviews: a label-conditioned model moves negative sentences to positive and
back; scored by how many outputs a separate sentiment classifier assigns to the target label, by BLEU against four
human rewrites, and by BLEU against the source (content kept), beside the copy baseline.

The data are `../shared/data/yelp`: the visible test sentences of Li et al. (2018) (375 per polarity) with the four
human references of Li et al. and Luo et al. (2019). The classifier is naive Bayes over word unigrams and bigrams,
trained here on the training pool and checked on the dev sets (it never sees the test sentences); the model is
trained by `scripts/train_attribute_yelp.sh` on the training pool alone.

    python -m bench.attribute_style --model runs/yelp-attribute                 # 750 sentences, 3 guidance scales
    python -m bench.attribute_style --model runs/yelp-attribute --quick         # 100 sentences, guidance 2
    python -m bench.attribute_style --render bench/results/attribute-style-cpu.json
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections import Counter
from pathlib import Path

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

DATA_DIR = SHARED_DATA / "yelp"
NAMES = ("negative", "positive")


@dataclasses.dataclass
class AttributeArgs(BenchArgs):
    model: str = "runs/yelp-attribute"
    """A model trained with `textdiffusion train --task style --labels negative positive` on Yelp."""
    data_dir: str = str(DATA_DIR)
    limit: int | None = None
    """Sentences per polarity, evenly spaced (default: all 375)."""
    guidance: tuple[float, ...] = (1.0, 2.0, 4.0)
    """Classifier-free guidance scales."""
    strength: float = 0.3
    """Largest share of a sentence's words regenerated."""
    batch_size: int = 64
    examples: int = 4
    """Rewrites kept in the results (and shown under the table)."""


QUICK = dict(quick=True, limit=50, guidance=(2.0,))


def words(line: str) -> list[str]:
    tokens = line.lower().split()
    return tokens + [f"{a} {b}" for a, b in zip(tokens, tokens[1:])]


class NaiveBayes:
    """Two-class multinomial naive Bayes over word unigrams and bigrams, add-one smoothing."""

    def __init__(self, texts: dict[int, list[str]]) -> None:
        counts = {
            label: Counter(w for t in lines for w in words(t)) for label, lines in texts.items()
        }
        vocabulary = set(counts[0]) | set(counts[1])
        totals = {label: sum(c.values()) + len(vocabulary) for label, c in counts.items()}
        self.weight = {
            w: math.log((counts[1][w] + 1) / totals[1]) - math.log((counts[0][w] + 1) / totals[0])
            for w in vocabulary
        }
        self.bias = math.log(len(texts[1]) / len(texts[0]))

    def predict(self, lines: list[str]) -> list[int]:
        return [int(self.bias + sum(self.weight.get(w, 0.0) for w in words(t)) > 0) for t in lines]


def read(path: Path, limit: int | None) -> list[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    if limit and limit < len(lines):
        lines = [lines[round(i * len(lines) / limit)] for i in range(limit)]
    return lines


def main(args: AttributeArgs) -> dict:
    return run(BENCH, args, lambda results, device: measure(args, results, device))


def measure(args: AttributeArgs, results: Results, device) -> None:
    from textdiffusion.pipelines import StylePipeline

    folder = Path(args.data_dir)
    start = time.perf_counter()
    pool = {y: read(folder / "trainpool" / f"sentiment.trainpool.{y}", None) for y in (0, 1)}
    classifier = NaiveBayes(pool)
    dev = {y: read(folder / f"sentiment.dev.{y}", None) for y in (0, 1)}
    right = sum(p == y for y in (0, 1) for p in classifier.predict(dev[y]))
    results.set(
        "classifier",
        {
            "dev_accuracy": right / (len(dev[0]) + len(dev[1])),
            "seconds": time.perf_counter() - start,
        },
    )
    log(f"classifier: {100 * results['classifier']['dev_accuracy']:.1f}% on the dev sentences")
    # sources of polarity y go to 1 - y; reference{k}.visible.y are human rewrites of them
    sources = {y: read(folder / "test" / f"sentiment.test.visible.{y}", args.limit) for y in (0, 1)}
    references = {
        y: list(
            zip(
                *(read(folder / "test" / f"reference{k}.visible.{y}", args.limit) for k in range(4))
            )
        )
        for y in (0, 1)
    }
    log(f"{len(sources[0])} + {len(sources[1])} sentences")

    def scores(name: str, outputs: dict[int, list[str]], **fields) -> dict:
        flat = outputs[0] + outputs[1]
        refs = references[0] + references[1]
        targets = [1] * len(outputs[0]) + [0] * len(outputs[1])
        accuracy = sum(p == y for p, y in zip(classifier.predict(flat), targets)) / len(flat)
        to_refs = overlap(flat, refs)
        to_source = overlap(flat, [[s] for s in sources[0] + sources[1]])
        return {
            "case": name,
            "accuracy": 100 * accuracy,
            "bleu": to_refs["bleu"],
            "self_bleu": to_source["bleu"],
            "gm": math.sqrt(max(0.0, 100 * accuracy * to_refs["bleu"])),
            **fields,
        }

    run_case(results, "rows", "copy the source", lambda: scores("copy the source", sources))
    pipe = StylePipeline.from_pretrained(args.model, device=str(device))
    results.set("model", {"path": args.model, "parameters": pipe.model.num_parameters()})
    for guidance in args.guidance:

        def transfer(guidance=guidance) -> dict:
            begin = time.perf_counter()
            outputs, calls = {}, 0
            for y in (0, 1):
                out = pipe(
                    sources[y],
                    to=NAMES[1 - y],
                    strength=args.strength,
                    guidance=guidance,
                    batch_size=args.batch_size,
                    seed=0,
                )
                outputs[y], calls = out.texts, calls + out.network_calls
            seconds = time.perf_counter() - begin
            n = len(sources[0]) + len(sources[1])
            record = scores(
                f"model, guidance {guidance:g}",
                outputs,
                guidance=guidance,
                strength=args.strength,
                sentences_per_s=n / seconds,
                calls_per_batch=calls / (2 * -(-len(sources[0]) // args.batch_size)),
            )
            record["examples"] = [
                {"source": s, "output": o, "reference": r[0]}
                for y in (0, 1)
                for s, o, r in list(zip(sources[y], outputs[y], references[y]))[
                    : args.examples // 2
                ]
            ]
            return record

        record = run_case(results, "rows", f"model, guidance {guidance:g}", transfer)
        if "bleu" in record:
            log(
                f"guidance {guidance:g}: accuracy {record['accuracy']:.1f}%, BLEU {record['bleu']:.1f}, "
                f"self-BLEU {record['self_bleu']:.1f}"
            )


COLUMNS = [
    ("case", "outputs", ""),
    ("accuracy", "target sentiment %", ".1f"),
    ("bleu", "BLEU (4 human refs)", ".1f"),
    ("self_bleu", "BLEU to source", ".1f"),
    ("gm", "GM(acc, BLEU)", ".1f"),
    ("sentences_per_s", "sentences/s", ".1f"),
    ("calls_per_batch", "network calls per batch", ".1f"),
]


def render(data: dict) -> str:
    rows, columns = data.get("rows", []), COLUMNS
    model = data.get("model", {})
    classifier = data.get("classifier", {})
    args = data["args"]
    shown_row = max(
        (r for r in rows if r.get("examples")), key=lambda r: r.get("gm", 0), default=None
    )
    shown = "\n".join(
        f"- {e['source']}\n  - model: {e['output']}\n  - a human: {e['reference']}"
        for e in (shown_row or {}).get("examples", [])
    )
    return (
        f"Yelp test sentences ({args['limit'] or 375} per polarity) moved to the other sentiment by model "
        f"`{model.get('path')}` ({model.get('parameters', 0) / 1e6:.1f}M parameters), strength {args['strength']}, "
        f"its saved sampler, seed 0. Target sentiment by a naive Bayes classifier trained on the training pool "
        f"({100 * classifier.get('dev_accuracy', 0):.1f}% right on the 4,000 dev sentences); sacrebleu corpus BLEU.\n\n"
        + markdown_table(rows, columns)
        + (f"\n\nRewrites ({shown_row['case']}):\n\n{shown}" if shown else "")
    )


def summary(data: dict) -> str:
    return markdown_table(data.get("rows", []), COLUMNS[:5])


BENCH = Benchmark("attribute-style", "Attribute transfer", render=render, summary=summary)


if __name__ == "__main__":
    main(parse_args(AttributeArgs, QUICK))
