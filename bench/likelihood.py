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

    python bench/likelihood.py --quick
    python bench/likelihood.py --device cuda --sizes mini small --tokens 20000000 --max-minutes 4
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from pathlib import Path
from typing import Literal

import torch
from common import (
    BENCH_DIR,
    DEFAULT_DATA,
    RESULTS_DIR,
    BenchArgs,
    Results,
    block_name,
    log,
    markdown_table,
    model_config,
    parse_args,
    provenance,
    resolve_device,
    setup_torch,
    update_readme,
)


@dataclasses.dataclass
class LikelihoodArgs(BenchArgs):
    quick: bool = False
    """CPU-sized run: tiny and mini models, 100k tokens each, 8 validation windows (about 3 minutes)."""
    data_dir: str = str(DEFAULT_DATA)
    """Folder with train.txt and valid.txt."""
    sizes: tuple[str, ...] = ("mini", "small")
    """Model sizes (bench/common.py SIZES: tiny, mini, small, medium, base)."""
    objectives: tuple[Literal["diffusion", "ar"], ...] = ("diffusion", "ar")
    tokens: int = 20_000_000
    """Training tokens per model (steps = tokens / (batch_size * seq_len))."""
    seq_len: int = 256
    """Context of the models (training windows and evaluation windows)."""
    batch_size: int = 64
    lr: float = 1e-3
    warmup_steps: int = 200
    """Linear warm-up (capped at a tenth of the steps)."""
    dropout: float = 0.1
    ema_decay: float = 0.999
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    """Training precision (auto: bf16 autocast on CUDA). Evaluation is always float32."""
    compile: bool = False
    """torch.compile the networks (faster steps on CUDA, ~30 s of compilation per model)."""
    max_minutes: float | None = None
    """Wall-clock budget of the whole run; each model may use its share of what is left (tokens then differ; the
    JSON says so)."""
    eval_samples: int = 32
    """Monte Carlo samples per window of the diffusion ELBO."""
    eval_windows: int | None = None
    """Evaluate only the first N windows of valid.txt (default: all of it)."""
    eval_batch_size: int = 64
    out: str = str(BENCH_DIR / "runs" / "likelihood")
    """Folder of the trained models."""
    seed: int = 0


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


def train_model(
    args: LikelihoodArgs,
    size: str,
    objective: str,
    *,
    out: Path,
    device: torch.device,
    max_minutes: float | None,
    steps: int | None = None,
) -> dict:
    """Train one model with the project's trainer; returns what the JSON keeps about the run.

    `steps` overrides --tokens (the AR partner of a diffusion run that the time budget cut short gets the same
    number of steps, with its learning-rate schedule completed over them, as the cut run had)."""
    from textdiffusion.config import DataConfig, TrainConfig
    from textdiffusion.training import train

    data_dir = Path(args.data_dir)
    steps = steps or max(1, args.tokens // (args.batch_size * args.seq_len))
    config = TrainConfig(
        steps=steps,
        batch_size=args.batch_size,
        lr=args.lr,
        warmup_steps=min(args.warmup_steps, steps // 10),
        ema_decay=args.ema_decay,
        eval_every=0,
        save_every=steps,
        log_every=max(1, min(100, steps // 10)),
        seed=args.seed,
        device=str(device),
        precision=args.precision,
        compile=args.compile,
        objective=objective,
        max_minutes=max_minutes,
    )
    start = time.perf_counter()
    result = train(
        DataConfig(
            data=(str(data_dir / "train.txt"),),
            valid=(str(data_dir / "valid.txt"),),
            tokenizer="char",
            seq_len=args.seq_len,
        ),
        config,
        out=out,
        # vocab_size=1 is replaced by the tokenizer's size
        model=model_config(size, vocab_size=1, max_len=args.seq_len, dropout=args.dropout),
        resume=(out / "checkpoints").is_dir(),  # a rerun continues an interrupted model
        progress=True,  # a bar on a terminal, a log line every 30 s elsewhere
    )
    return {
        "size": size,
        "objective": objective,
        "parameters": result.parameters,
        "steps": result.step,
        "planned_steps": steps,
        "tokens": result.step * args.batch_size * args.seq_len,
        "train_seconds": time.perf_counter() - start,
        "train_tokens_per_s": result.tokens_per_second,
        "final_train_loss": result.loss,
        "path": str(out),
    }


def evaluate_model(args: LikelihoodArgs, path: Path, *, device: torch.device) -> dict:
    """Bits per character of valid.txt: ELBO bound (diffusion) or exact (AR), in float32."""
    from textdiffusion.checkpoint import load_pretrained
    from textdiffusion.evaluation import evaluate_text

    text = (Path(args.data_dir) / "valid.txt").read_text()
    pretrained = load_pretrained(path, device=device)
    start = time.perf_counter()
    result = evaluate_text(
        pretrained,
        text,
        samples=args.eval_samples,
        batch_size=args.eval_batch_size,
        seed=args.seed,
        max_windows=args.eval_windows,
    )
    return {**result.to_dict(), "eval_seconds": time.perf_counter() - start}


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


def main(args: LikelihoodArgs) -> dict:
    if args.render:
        data = json.loads(Path(args.render).read_text())
        update_readme(readme_name(data), render(data), title="Likelihood")
        return data
    logging.basicConfig(level=logging.INFO, format="%(message)s")  # the trainer's progress
    device = resolve_device(args.device)
    setup_torch(device, threads=args.threads, tf32=False)
    out = Path(args.out)
    path = (
        Path(args.json)
        if args.json
        else RESULTS_DIR / f"likelihood-{device.type}{'-quick' if args.quick else ''}.json"
    )
    previous = json.loads(path.read_text()) if path.is_file() else {}
    results = Results(path, benchmark="likelihood", args=args, device=device)
    results.set("models", [])
    deadline = time.monotonic() + 60 * args.max_minutes if args.max_minutes else None
    plan = [(size, objective) for size in args.sizes for objective in args.objectives]
    planned = max(1, args.tokens // (args.batch_size * args.seq_len))
    log(f"writing {path}; {len(plan)} models of {args.tokens:,} tokens each on {device}")
    for size, objective in plan:
        model_dir = out / f"{size}-{objective}"
        done = next(
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
        if done is not None:
            log(f"{size}-{objective}: finished in an earlier run, reused")
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
                log(
                    f"{size}-{objective}: {steps} steps, as many as {size}-{partner['objective']} got"
                )
            if deadline is not None:
                budget = max(0.5, 2 * partner["train_seconds"] / 60)
        elif deadline is not None:
            left = (deadline - time.monotonic()) / 60
            sizes_left = len(args.sizes) - args.sizes.index(size)
            if left <= 0.1:
                log(f"{size}-{objective}: skipped, the --max-minutes budget is spent")
                continue
            # this size's share, a tenth kept for the evaluations, half of it for each objective
            budget = 0.9 * left / sizes_left / len(args.objectives)
        log(f"{size}-{objective}: training" + (f" (at most {budget:.1f} min)" if budget else ""))
        try:
            record = train_model(
                args, size, objective, out=model_dir, device=device, max_minutes=budget, steps=steps
            )
            log(
                f"{size}-{objective}: {record['parameters']:,} parameters, {record['tokens']:,} tokens in "
                f"{record['train_seconds']:.0f} s ({record['train_tokens_per_s']:,.0f} tok/s)"
            )
            record.update(evaluate_model(args, model_dir, device=device))
            log(
                f"{size}-{objective}: {record['bits_per_char']:.4f} bits/char on valid.txt"
                + ("" if record["exact"] else f" (bound, ± {record['stderr_bits_per_char']:.4f})")
            )
        except Exception as exc:  # keep the other models' results
            record = {
                "size": size,
                "objective": objective,
                "error": f"{type(exc).__name__}: {exc}"[:2000],
            }
            log(f"{size}-{objective}: FAILED {record['error'][:300]}")
        results.add("models", record)
        results.set("summary", summarize(results.data))
    results.finish()
    for row in results["summary"] if "summary" in results.data else []:
        log(
            f"{row['size']}: diffusion {row.get('diffusion_bpc')} vs AR {row.get('ar_bpc')} bits/char, "
            f"ratio {row.get('ratio')}"
        )
    if args.readme:
        update_readme(readme_name(results.data), render(results.data), title="Likelihood")
    return results.data


def readme_name(data: dict) -> str:
    return block_name("likelihood", data)


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
    return text + "\n\n" + provenance(data)


if __name__ == "__main__":
    main(parse())
