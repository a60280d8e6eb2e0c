"""Likelihood: the diffusion model's ELBO bound beside the AR baseline's exact likelihood, in bits per character on
tinyshakespeare's valid.txt, at several model sizes, both trained by the project's trainer on the same tokens.

For each size the diffusion model and the AR baseline get the same backbone, tokenizer (the character tokenizer of
train.txt), batch, learning-rate schedule and number of training tokens; the AR model only switches to causal
attention and the next-token loss (`--objective ar`). The diffusion bound is the count-stratified ELBO estimator
(`textdiffusion.evaluation.elbo.diffusion_nll`, with its Monte Carlo standard error); the AR number is exact.
ratio = diffusion bound / AR (1.0 would mean the bound matches the AR likelihood; above 1 the diffusion model is
worse or the bound is loose).

Models go to OUT/SIZE-OBJECTIVE and are reused when a rerun finds them finished; the JSON is rewritten after every
model and every evaluation, so a run cut by a timeout keeps what it finished.

    python -m bench.likelihood --quick --threads 1
    python -m bench.likelihood --device cuda --sizes mini small --tokens 20000000 --max-minutes 4
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path
from typing import Literal

import torch

from bench.common import CharModelArgs, model_config
from bench.harness import (
    BENCH_DIR,
    Benchmark,
    Results,
    log,
    markdown_table,
    parse_args,
    run,
)


@dataclasses.dataclass
class LikelihoodArgs(CharModelArgs):
    quick: bool = False
    """CPU-sized run: tiny and mini models, 100k tokens each, 8 validation windows (about 3 minutes)."""
    sizes: tuple[str, ...] = ("mini", "small")
    """Model sizes (bench/common.py SIZES: tiny, mini, small, medium, base)."""
    objectives: tuple[Literal["diffusion", "ar"], ...] = ("diffusion", "ar")
    dropout: float = 0.1
    max_minutes: float | None = None
    """Wall-clock budget of the whole run; each model may use its share of what is left (tokens then differ; the
    JSON says so)."""
    eval_samples: int = 32
    """Monte Carlo samples per window of the diffusion ELBO."""
    out: str = str(BENCH_DIR / "runs" / "likelihood")
    """Folder of the trained models."""


QUICK = dict(
    quick=True,
    sizes=("tiny", "mini"),
    tokens=100_000,
    seq_len=128,
    batch_size=16,
    warmup_steps=10,
    lr=2e-3,
    dropout=0.0,
    ema_decay=0.0,
    eval_samples=8,
    eval_windows=8,
    out=str(BENCH_DIR / "runs" / "likelihood-quick"),
)


def parse(argv: list[str] | None = None) -> LikelihoodArgs:
    return parse_args(LikelihoodArgs, QUICK, argv)


def summarize(data: dict) -> list[dict]:
    """One row per size: diffusion bound, AR exact, their ratio, and whether both saw the same tokens."""
    models = {(m["size"], m["objective"]): m for m in data.get("models", [])}
    rows = []
    for size in data["args"]["sizes"]:
        d, a = models.get((size, "diffusion"), {}), models.get((size, "ar"), {})
        row = {
            "size": size,
            "parameters": d.get("parameters") or a.get("parameters"),
            "diffusion_tokens": d.get("tokens"),
            "ar_tokens": a.get("tokens"),
            "diffusion_bpc": d.get("bits_per_char"),
            "diffusion_stderr": d.get("stderr_bits_per_char"),
            "ar_bpc": a.get("bits_per_char"),
        }
        if row["diffusion_bpc"] is not None and row["ar_bpc"]:
            row["ratio"] = row["diffusion_bpc"] / row["ar_bpc"]
        if d and a:
            row["same_tokens"] = d.get("tokens") == a.get("tokens")
        rows.append(row)
    return rows


def render(data: dict) -> str:
    args = data["args"]
    rows = summarize(data)
    columns = [
        ("size", "size", ""),
        ("parameters", "parameters", ",d"),
        ("diffusion_tokens", "tokens (diff.)", ",d"),
        ("ar_tokens", "tokens (AR)", ",d"),
        ("diffusion_bpc", "diffusion bound bpc", ".4f"),
        ("diffusion_stderr", "± (MC)", ".4f"),
        ("ar_bpc", "AR exact bpc", ".4f"),
        ("ratio", "ratio", ".3f"),
    ]
    windows = (
        "all of valid.txt"
        if args.get("eval_windows") is None
        else f"the first {args['eval_windows']} windows"
    )
    text = (
        f"Bits per character on {windows} (windows of {args['seq_len']} tokens), character tokenizer, "
        f"batch {args['batch_size']}, lr {args['lr']}, dropout {args['dropout']}, EMA {args['ema_decay']}; "
        f"diffusion ELBO with {args['eval_samples']} count-stratified samples per window. "
        "ratio = diffusion bound / AR exact.\n\n" + markdown_table(rows, columns)
    )
    failed = [m for m in data.get("models", []) if "error" in m]
    if failed:
        text += "\n\nFailed: " + "; ".join(
            f"{m['size']}-{m['objective']}: {m['error'][:100]}" for m in failed
        )
    if any(r.get("same_tokens") is False for r in rows):
        text += "\n\n**The --max-minutes budget cut some runs: diffusion and AR saw different numbers of tokens.**"
    return text


def summary(data: dict) -> str:
    columns = [
        ("size", "size", ""),
        ("parameters", "parameters", ",d"),
        ("diffusion_tokens", "tokens each", ",d"),
        ("diffusion_bpc", "diffusion bound bpc", ".4f"),
        ("diffusion_stderr", "±", ".4f"),
        ("ar_bpc", "AR bpc", ".4f"),
        ("ratio", "ratio", ".3f"),
    ]
    return markdown_table(summarize(data), columns)


BENCH = Benchmark("likelihood", "Likelihood", render=render, summary=summary, tf32=False)


def main(args: LikelihoodArgs) -> dict:
    if not args.render:
        logging.basicConfig(level=logging.INFO, format="%(message)s")  # the trainer's progress
    return run(BENCH, args, lambda results, device: measure(args, results, device))


def reused(args: LikelihoodArgs, previous: dict, size: str, objective: str) -> dict | None:
    """A model of this plan that an earlier run into the same result file finished and scored."""
    planned = args.planned_steps
    return next(
        (
            m
            for m in previous.get("models", [])
            if m.get("size") == size
            and m.get("objective") == objective
            and "bits_per_char" in m
            and m.get("steps") == m.get("planned_steps") == planned
            and Path(m.get("path", "")).is_dir()
        ),
        None,
    )


def measure(args: LikelihoodArgs, results: Results, device: torch.device) -> None:
    results.set("models", [])
    deadline = time.monotonic() + 60 * args.max_minutes if args.max_minutes else None
    plan = [(size, objective) for size in args.sizes for objective in args.objectives]
    log(f"{len(plan)} models of {args.tokens:,} tokens each on {device}")
    for size, objective in plan:
        name = f"{size}-{objective}"
        done = reused(args, results.previous, size, objective)
        if done is not None:
            log(f"{name}: finished in an earlier run, reused")
            results.add("models", done)
            continue
        partner = next(
            (m for m in results.data["models"] if m["size"] == size and "steps" in m), None
        )
        budget, steps = None, None
        if partner is not None:
            # The second model of a size always runs, for as many tokens as the first got (a budget cut
            # completes the learning-rate schedule early, so the pair still matches); the limit is a safety net.
            if partner["steps"] < partner["planned_steps"]:
                steps = partner["steps"]
                log(f"{name}: {steps} steps, as many as {size}-{partner['objective']} got")
            if deadline is not None:
                budget = max(0.5, 2 * partner["train_seconds"] / 60)
        elif deadline is not None:
            left = (deadline - time.monotonic()) / 60
            sizes_left = len(args.sizes) - args.sizes.index(size)
            if left <= 0.1:
                log(f"{name}: skipped, the --max-minutes budget is spent")
                continue
            # this size's share, a tenth kept for the evaluations, half of it for each objective
            budget = 0.9 * left / sizes_left / len(args.objectives)
        log(f"{name}: training" + (f" (at most {budget:.1f} min)" if budget else ""))
        try:
            # vocab_size=1 is replaced by the tokenizer's size; `steps` overrides --tokens (the AR partner of a
            # diffusion run that the time budget cut short gets as many steps, its schedule completed over them)
            config = model_config(size, vocab_size=1, max_len=args.seq_len, dropout=args.dropout)
            record = {"size": size, "objective": objective}
            record |= args.train(
                config, out=Path(args.out) / name, objective=objective, device=device,
                max_minutes=budget, steps=steps,
            )  # fmt: skip
            log(
                f"{name}: {record['parameters']:,} parameters, {record['tokens']:,} tokens in "
                f"{record['train_seconds']:.0f} s ({record['train_tokens_per_s']:,.0f} tok/s)"
            )
            record.update(args.score(record["path"], device=device))
            log(
                f"{name}: {record['bits_per_char']:.4f} bits/char on valid.txt"
                + ("" if record["exact"] else f" (bound, ± {record['stderr_bits_per_char']:.4f})")
            )
        except Exception as exc:  # keep the other models' results
            record = {"size": size, "objective": objective, "error": f"{type(exc).__name__}: {exc}"}
            log(f"{name}: FAILED {record['error'][:300]}")
        results.add("models", record)
        results.set("summary", summarize(results.data))
    for row in results.data.get("summary", []):
        log(
            f"{row['size']}: diffusion {row.get('diffusion_bpc')} vs AR {row.get('ar_bpc')} bits/char, "
            f"ratio {row.get('ratio')}"
        )


if __name__ == "__main__":
    main(parse())
