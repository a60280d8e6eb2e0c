"""Sample quality per sampler and step count, judged by a character n-gram model, beside real text.

For each sampler setting and number of steps, N samples of L tokens are generated from the model (fixed seeds, one
batch), decoded and scored by `textdiffusion.evaluation.judge`: bits/char under an interpolated Kneser-Ney character
6-gram judge trained on --judge-train (tinyshakespeare/train.txt, which the model also trained on), distinct-1/2 over
whitespace-separated words (pooled over the N samples) and the share of words that occur in the judge's training
text. N windows of L characters of --valid (text neither saw) are scored the same way: the figures a sampler should
reach. A sample much below the real text's bits/char with low distinct-2 is repetitive, not better.

A setting is `sampler[:key=value,...]` with keys from `SampleConfig` (temperature, top_p, order_temperature,
remask_schedule, eta, t_on, t_off, alpha_on), e.g. `remask:remask_schedule=loop,eta=0.05`.

    python -m bench.sampler_judge --judge-train ../shared/data/tinyshakespeare/train.txt \
        --valid ../shared/data/tinyshakespeare/valid.txt              # the default table (~30 min on a busy core)
    python -m bench.sampler_judge --settings cached remask:eta=0.05 --steps 64 --n-samples 8 --no-write
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import torch

from bench.common import DEFAULT_DATA
from bench.harness import RESULTS_DIR, log, machine_info, markdown_table, write_json

DEFAULT_SETTINGS = (
    "ancestral",
    "cached",
    "confidence",
    "confidence:order_temperature=1.0",
    "cached:top_p=0.9",  # the control for the remask rows, which use ReMDM's nucleus sampling
    "remask:remask_schedule=cap,eta=0.05,top_p=0.9",
    "remask:remask_schedule=rescale,eta=0.1,top_p=0.9",
    "remask:remask_schedule=loop,eta=0.05,top_p=0.9",
)
"""The table of bench/results/sampler-judge-cpu.md; the knobs were tuned at 64 steps on 8 samples (same seed):
order_temperature 0.5 / 1 / 2 gave gaps -0.12 / -0.02 / +0.11 bits/char with distinct-2 0.90 / 0.96 / 0.99, and
rescale eta 0.5 was worse than none (+0.88 against +0.81)."""


@dataclasses.dataclass
class SamplerJudgeArgs:
    model: str = "shakespeare-char"
    """The diffusion model (shipped name or folder)."""
    settings: tuple[str, ...] = DEFAULT_SETTINGS
    """Sampler settings, each `sampler[:key=value,...]`."""
    steps: tuple[int, ...] = (16, 32, 64)
    n_samples: int = 16
    """Samples per setting and step count, generated as one batch."""
    length: int = 256
    """Tokens (characters) per sample, and characters per real-text window."""
    judge_train: str = str(DEFAULT_DATA / "train.txt")
    """The judge's training text."""
    valid: str = str(DEFAULT_DATA / "valid.txt")
    """Real text to score beside the samples."""
    order: int = 6
    """The judge's n-gram order."""
    seed: int = 0
    """Seed of every setting's generator (each setting and step count starts from it)."""
    threads: int = 1
    """CPU threads for torch."""
    device: str = "cpu"
    max_minutes: float | None = None
    """No new setting starts after this much wall time."""
    write: bool = True
    """Write --json and --markdown."""
    json: str = str(RESULTS_DIR / "sampler-judge-cpu.json")
    markdown: str = str(RESULTS_DIR / "sampler-judge-cpu.md")


def parse_setting(spec: str) -> tuple[str, dict[str, Any]]:
    """`sampler[:key=value,...]` -> (sampler, options); values are parsed as JSON where they can be."""
    name, _, rest = spec.partition(":")
    options: dict[str, Any] = {}
    for item in filter(None, rest.split(",")):
        key, eq, value = item.partition("=")
        if not eq:
            raise ValueError(f"setting {spec!r}: {item!r} is not key=value")
        try:
            options[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            options[key.strip()] = value.strip()
    return name.strip(), options


def real_windows(text: str, n: int, length: int) -> list[str]:
    """`n` windows of `length` characters at evenly spaced offsets of `text`."""
    if len(text) < length + n:
        raise ValueError(f"the validation text has {len(text)} characters, too few for {n} windows")
    stride = (len(text) - length) // max(n - 1, 1)
    return [text[i * stride : i * stride + length] for i in range(n)]


def row_of(
    label: str, steps: int | None, judge, texts: list[str], extra: dict[str, Any], real=None
) -> dict[str, Any]:
    """The judge's figures of `texts`, the standard error of their bits/char over texts, and the gap to `real`."""
    import statistics

    from textdiffusion.evaluation.judge import judge_texts

    score = judge_texts(judge, texts)
    per_text = [judge.bits(t) / len(t) for t in texts if t]
    row = {"setting": label, "steps": steps, **score.to_dict(), **extra}
    row["bits_se"] = (
        statistics.stdev(per_text) / len(per_text) ** 0.5 if len(per_text) > 1 else None
    )
    if real is not None:
        row["bits_gap"] = score.bits_per_char - real["bits_per_char"]
    return row


COLUMNS = [
    ("setting", "setting", ""),
    ("steps", "steps", "d"),
    ("bits_per_char", "judge bits/char", ".3f"),
    ("bits_se", "± se", ".3f"),
    ("bits_gap", "gap to real", "+.3f"),
    ("distinct_1", "distinct-1", ".3f"),
    ("distinct_2", "distinct-2", ".3f"),
    ("real_word_rate", "real words", ".3f"),
    ("network_calls", "calls", "d"),
    ("seconds", "seconds", ".1f"),
]


def render(data: dict[str, Any]) -> str:
    info = data["machine"]
    lines = [
        "# Sample quality by sampler and steps (character 6-gram judge)",
        "",
        f"Model `{data['model']}`; {data['n_samples']} samples of {data['length']} characters per row, seed "
        f"{data['seed']}; judge: interpolated Kneser-Ney character {data['order']}-gram trained on "
        f"`{Path(data['judge_train']).name}` ({data['judge_seconds']:.1f} s to train). `real text` is "
        f"{data['n_samples']} evenly spaced windows of `{Path(data['valid']).name}` (the reference for distinct-n, "
        "which falls with the number of words pooled); `real text, all windows` is every window, the precise "
        "reference for bits/char and real words. Gap = judge bits/char minus that of all real windows; ± se: the "
        "standard error of bits/char over the samples. "
        "distinct-n over whitespace-separated words, pooled over the samples; real words = share of words found "
        "in the judge's training text. Seconds: the whole batch.",
        "",
        markdown_table(data["rows"], COLUMNS),
        "",
        f"Machine: {info['cpu']}, {info['torch_threads']} torch thread(s), torch {info['torch']}; git "
        f"{info.get('git_commit') or 'uncommitted'}; {info['date']}.  ",
        f"Command: `python -m bench.sampler_judge {data['argv']}`",
    ]
    if not data.get("complete"):
        lines.append("\n**Partial results: the run stopped before the end.**")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    import sys

    import tyro

    from textdiffusion.evaluation.judge import CharNgramJudge
    from textdiffusion.pipelines import DiffusionPipeline

    argv = sys.argv[1:] if argv is None else argv
    args = tyro.cli(SamplerJudgeArgs, args=argv)
    torch.set_num_threads(args.threads)
    settings = [(spec, *parse_setting(spec)) for spec in args.settings]
    start = time.perf_counter()
    judge = CharNgramJudge.from_file(args.judge_train, order=args.order)
    judge_seconds = time.perf_counter() - start
    log(f"judge trained in {judge_seconds:.1f} s")
    valid = Path(args.valid).read_text(encoding="utf-8")
    every = [
        valid[i : i + args.length] for i in range(0, len(valid) - args.length + 1, args.length)
    ]
    real_all = row_of(f"real text, all {len(every)} windows", None, judge, every, {})
    real = row_of("real text", None, judge, real_windows(valid, args.n_samples, args.length), {})
    pipe = DiffusionPipeline.from_pretrained(args.model, device=args.device)
    data: dict[str, Any] = {
        "model": args.model,
        "n_samples": args.n_samples,
        "length": args.length,
        "seed": args.seed,
        "order": args.order,
        "judge_train": args.judge_train,
        "valid": args.valid,
        "judge_seconds": judge_seconds,
        "argv": " ".join(argv),
        "machine": machine_info(torch.device(args.device)),
        "rows": [real_all, real],
        "samples": {},
        "complete": False,
    }
    log(f"real text: {real}; all windows: {real_all}")
    for spec, sampler, options in settings:
        for steps in args.steps:
            if args.max_minutes is not None and time.perf_counter() - start > 60 * args.max_minutes:
                log("time budget spent; stopping")
                return finish(args, data)
            out = pipe.sample(
                (args.n_samples, args.length),
                steps=steps,
                sampler=sampler,
                generator=torch.Generator().manual_seed(args.seed),
                **options,
            )
            texts = pipe.decode(out.ids)
            extra = {"network_calls": out.network_calls, "seconds": out.seconds}
            row = row_of(spec, steps, judge, texts, extra, real_all)
            data["rows"].append(row)
            data["samples"][f"{spec} @ {steps}"] = texts[:2]
            log(
                f"{spec:45s} {steps:4d} steps  {row['bits_per_char']:.3f} bits/char "
                f"({row['bits_gap']:+.3f})  d1 {row['distinct_1']:.3f}  d2 {row['distinct_2']:.3f}  "
                f"words {row['real_word_rate']:.3f}  {out.seconds:.1f} s"
            )
            if args.write:
                write_json(args.json, data)
    data["complete"] = True
    return finish(args, data)


def finish(args: SamplerJudgeArgs, data: dict[str, Any]) -> dict[str, Any]:
    table = render(data)
    print(table)
    if args.write:
        write_json(args.json, data)
        Path(args.markdown).write_text(table, encoding="utf-8")
    return data


if __name__ == "__main__":
    main()
