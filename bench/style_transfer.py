"""Style transfer, modern English -> Shakespeare: BLEU and chrF of a style model's rewrites against Shakespeare's own
lines, beside the copy baseline (the modern line left as it is), at several numbers of refinement steps.

The data are the sentence-aligned pairs of Xu et al. (2012) in the split of Jhamtani et al. (2017),
`../shared/data/shakespeare_modern` (test.visible: 1,096 pairs). Copying the source scores well on this corpus (many
lines are nearly unchanged), so a model must beat that row to have learnt anything. Scores are sacrebleu's corpus BLEU
and chrF (0..100) on the NLTK-tokenised text, as the corpus comes.

    python -m bench.style_transfer --model runs/style-shakespeare                 # all 1,096 test pairs
    python -m bench.style_transfer --model runs/style-shakespeare --quick         # 200 pairs, 16 steps
    python -m bench.style_transfer --render bench/results/style-transfer-cpu.json # redraw the tables
"""

from __future__ import annotations

import dataclasses
import time
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


@dataclasses.dataclass
class StyleArgs(BenchArgs):
    model: str = "runs/style-shakespeare"
    """A model trained with `textdiffusion train --task style` on modern -> original pairs."""
    data_dir: str = str(SHARED_DATA / "shakespeare_modern")
    split: str = "test.visible"
    """Files {split}.modern.nltktok (sources) and {split}.original.nltktok (references)."""
    limit: int | None = None
    """Pairs scored, evenly spaced (default: all)."""
    steps: tuple[int, ...] = (8, 16, 32)
    """Refinement steps of the model's sampler (its saved sampler: confidence, threshold 0.9)."""
    strengths: tuple[float, ...] = ()
    """Source-start models (`train --edit-gap`): the strengths tried (default: the model's, 0.5)."""
    rounds: tuple[int, ...] = (1,)
    """Source-start models: the detect-and-rewrite rounds tried."""
    deletions: tuple[bool, ...] = (False,)
    """Source-start models: whether source tokens may be dropped, each setting tried."""
    batch_size: int = 64
    examples: int = 5
    """Rewrites kept in the results (and shown under the table)."""


QUICK = dict(quick=True, limit=200, steps=(16,))


def load_pairs(args: StyleArgs) -> tuple[list[str], list[str]]:
    folder = Path(args.data_dir)
    sources = (folder / f"{args.split}.modern.nltktok").read_text().splitlines()
    references = (folder / f"{args.split}.original.nltktok").read_text().splitlines()
    if len(sources) != len(references):
        raise SystemExit(f"{folder}: {len(sources)} sources but {len(references)} references")
    if args.limit and args.limit < len(sources):
        keep = [round(i * len(sources) / args.limit) for i in range(args.limit)]
        sources, references = [sources[i] for i in keep], [references[i] for i in keep]
    return sources, references


def score(name: str, outputs: list[str], references: list[str], **fields) -> dict:
    return {"case": name, **overlap(outputs, [[r] for r in references]), **fields}


def main(args: StyleArgs) -> dict:
    return run(BENCH, args, lambda results, device: measure(args, results, device))


def measure(args: StyleArgs, results: Results, device) -> None:
    from textdiffusion.pipelines import StylePipeline

    sources, references = load_pairs(args)
    log(f"{len(sources)} pairs")
    pipe = StylePipeline.from_pretrained(args.model, device=str(device))
    results.set("model", {"path": args.model, "parameters": pipe.model.num_parameters()})
    run_case(
        results, "rows", "copy the source", lambda: score("copy the source", sources, references)
    )
    edits = (
        [
            dict(strength=strength, rounds=rounds, deletions=deletions)
            for strength in (args.strengths or (None,))
            for rounds in args.rounds
            for deletions in args.deletions
        ]
        if pipe.gap
        else [{}]
    )
    for steps in args.steps:
        for options in edits:
            name = f"model, {steps} steps" + "".join(
                f", {k} {v}" for k, v in options.items() if v is not None
            )

            def rewrite(steps=steps, options=options, name=name) -> dict:
                start = time.perf_counter()
                out = pipe(sources, steps=steps, batch_size=args.batch_size, seed=0, **options)
                seconds = time.perf_counter() - start
                record = score(
                    name,
                    out.texts,
                    references,
                    steps=steps,
                    sentences_per_s=len(sources) / seconds,
                    calls_per_batch=out.network_calls / -(-len(sources) // args.batch_size),
                    unchanged=sum(o == src for o, src in zip(out.texts, sources)) / len(sources),
                    **options,
                )
                record["examples"] = [
                    {"source": s, "output": o, "reference": r}
                    for s, o, r in list(zip(sources, out.texts, references))[: args.examples]
                ]
                return record

            record = run_case(results, "rows", name, rewrite)
            if "bleu" in record:
                log(f"{name}: BLEU {record['bleu']:.1f}, chrF {record['chrf']:.1f}")


COLUMNS = [
    ("case", "rewrite", ""),
    ("bleu", "BLEU", ".1f"),
    ("chrf", "chrF", ".1f"),
    ("unchanged", "lines unchanged", ".2f"),
    ("sentences_per_s", "sentences/s", ".1f"),
    ("calls_per_batch", "network calls per batch", ".1f"),
]


def render(data: dict) -> str:
    rows = data.get("rows", [])
    model = data.get("model", {})
    args = data["args"]
    shown_row = next((r for r in rows if r.get("examples")), None)
    shown = "\n".join(
        f"- {e['source']}\n  - model: {e['output']}\n  - Shakespeare: {e['reference']}"
        for e in (shown_row or {}).get("examples", [])
    )
    return (
        f"Modern -> Shakespeare on `{args['split']}` ({args['limit'] or 'all'} pairs), model `{model.get('path')}` "
        f"({model.get('parameters', 0) / 1e6:.1f}M parameters), confidence sampler, seed 0. sacrebleu corpus BLEU "
        "and chrF against the one original line.\n\n"
        + markdown_table(rows, COLUMNS)
        + (f"\n\nFirst rewrites ({shown_row['case']}):\n\n{shown}" if shown else "")
    )


def summary(data: dict) -> str:
    return markdown_table(data.get("rows", []), COLUMNS[:3])


BENCH = Benchmark("style-transfer", "Style transfer", render=render, summary=summary)


if __name__ == "__main__":
    main(parse_args(StyleArgs, QUICK))
