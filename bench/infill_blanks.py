"""Variable-length blanks: one word of a line blanked, filled by the shipped model (ELBO length choice) and by a
model trained with blanks (`--max-blank K`, one pass), against the most frequent training word of the right length.

For every k-th line of valid.txt that has a word of 4+ letters, one such word (the (i mod n)-th of the line) is
replaced by ___ and filled. Reported per model: exact-match rate of the fill, median |length error| in characters,
the character KN judge's bits/char of the filled lines (trained on train.txt) beside the originals', and seconds per
infill. The baseline fills each blank with the training text's most frequent word of the blanked word's length.

    python bench/infill_blanks.py [--new shakespeare-char] [--old OLD_MODEL] [--quick] [--lines 200] [--old-lines 50]
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import statistics
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
# ../shared beside the checkout (a worktree sits one folder deeper)
DATA = (
    next(
        (p for p in (ROOT.parent / "shared", ROOT.parent.parent / "shared") if p.is_dir()),
        ROOT.parent / "shared",
    )
    / "data"
    / "tinyshakespeare"
)
RESULTS = Path(__file__).resolve().parent / "results"
WORD = re.compile(r"(?<![A-Za-z'])[A-Za-z]{4,}(?![A-Za-z'])")


def blanked_lines(path: Path, n: int) -> list[tuple[str, str, str]]:
    """(original line, line with one word blanked, the word) for n lines spread evenly over the file."""
    eligible = [line for line in path.read_text().splitlines() if WORD.search(line)]
    step = max(len(eligible) // n, 1)
    out = []
    for i, line in enumerate(eligible[::step][:n]):
        matches = list(WORD.finditer(line))
        m = matches[i % len(matches)]
        out.append((line, line[: m.start()] + "___" + line[m.end() :], m.group()))
    return out


def frequent_words(text: str) -> dict[int, str]:
    """The most frequent word (as written) of each length in `text`."""
    counts = collections.Counter(WORD.findall(text))
    best: dict[int, str] = {}
    for word, _ in counts.most_common():
        best.setdefault(len(word), word)
    return best


def score(cases, fills, judge, seconds=None) -> dict:
    """Exact match, median |length error| (characters) and judge bits/char of the filled lines."""
    filled = [blank.replace("___", fill, 1) for (_, blank, _), fill in zip(cases, fills)]
    errors = [abs(len(fill) - len(word)) for (_, _, word), fill in zip(cases, fills)]
    out = {
        "lines": len(cases),
        "exact_match": sum(f.strip() == w for (_, _, w), f in zip(cases, fills)) / len(cases),
        "median_length_error_chars": statistics.median(errors),
        "mean_fill_chars": statistics.mean(len(f) for f in fills),
        "judge_bits_per_char": judge.bits_per_char(filled),
        "judge_bits_per_char_originals": judge.bits_per_char([line for line, _, _ in cases]),
    }
    if seconds is not None:
        out["seconds_per_infill"] = statistics.mean(seconds)
    return out


def run_model(name: str, cases, **call) -> tuple[list[str], list[float]]:
    from textdiffusion.pipelines import InfillPipeline

    pipe = InfillPipeline.from_pretrained(name)
    fills, seconds = [], []
    for i, (_, blank, _) in enumerate(cases):
        start = time.perf_counter()
        out = pipe(blank, seed=i, **call)
        seconds.append(time.perf_counter() - start)
        fills.append(out.fills[0])
    return fills, seconds


def markdown(report: dict) -> str:
    rows = [
        "| fill | lines | exact match | median abs. length error (chars) | mean fill (chars) | judge bits/char "
        "(originals) | s / infill |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in report["results"].items():
        sec = f"{r['seconds_per_infill']:.3f}" if "seconds_per_infill" in r else "-"
        rows.append(
            f"| {name} | {r['lines']} | {r['exact_match']:.3f} | {r['median_length_error_chars']} | "
            f"{r['mean_fill_chars']:.1f} | {r['judge_bits_per_char']:.3f} ({r['judge_bits_per_char_originals']:.3f})"
            f" | {sec} |"
        )
    speed = report.get("speedup")
    tail = f"\nSpeed-up of one pass over the ELBO length choice: {speed:.1f}x.\n" if speed else "\n"
    return (
        f"# infill_blanks ({report['device']}, {report['threads']} thread)\n\n"
        f"One 4+-letter word blanked in each line of valid.txt; models: old `{report['old']}`, "
        f"new `{report['new']}`.\n\n" + "\n".join(rows) + "\n" + tail
    )


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--old",
        default=None,
        help="a model without blanks (ELBO length choice) to time against, e.g. the pre-blank shakespeare-char "
        "(`git show 337101f:textdiffusion/pretrained/shakespeare-char/...`); none: the new model and the baseline",
    )
    parser.add_argument(
        "--new", default="shakespeare-char", help="model trained with --max-blank K"
    )
    parser.add_argument("--lines", type=int, default=200)
    parser.add_argument(
        "--old-lines", type=int, default=None, help="lines for the old model (slow)"
    )
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument(
        "--new-steps", type=int, default=None, help="sampling steps of the new model"
    )
    parser.add_argument(
        "--new-temperature", type=float, default=None, help="sampling temperature of the new model"
    )
    parser.add_argument("--quick", action="store_true", help="10 lines, no results written")
    parser.add_argument("--out", default="infill-blanks-cpu")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    from textdiffusion.evaluation.judge import CharNgramJudge

    n = 10 if args.quick else args.lines
    cases = blanked_lines(args.data / "valid.txt", n)
    train_text = (args.data / "train.txt").read_text()
    judge = CharNgramJudge(train_text)
    frequent = frequent_words(train_text)
    old_cases = cases[: (3 if args.quick else args.old_lines or n)]
    results = {}
    new_fills, new_sec = run_model(
        args.new, cases, steps=args.new_steps, temperature=args.new_temperature
    )
    results["new: one pass"] = score(cases, new_fills, judge, new_sec)
    results["baseline: frequent word"] = score(
        cases, [frequent.get(len(w), "the") for _, _, w in cases], judge
    )
    if args.old is None:
        print(json.dumps(results, indent=1))
        return results
    old_fills, old_sec = run_model(args.old, old_cases)
    results["old: ELBO length choice"] = score(old_cases, old_fills, judge, old_sec)
    results["new, same lines as old"] = score(
        old_cases, new_fills[: len(old_cases)], judge, new_sec[: len(old_cases)]
    )
    report = {
        "device": "cpu",
        "threads": 1,
        "old": args.old,
        "new": args.new,
        "new_steps": args.new_steps,
        "new_temperature": args.new_temperature,
        "results": results,
        "speedup": results["old: ELBO length choice"]["seconds_per_infill"]
        / results["new, same lines as old"]["seconds_per_infill"],
        "examples": [
            {"line": blank, "word": word, "new": new_fills[i], "old": old_fills[i]}
            for i, (_, blank, word) in enumerate(old_cases[:10])
        ],
    }
    print(markdown(report))
    if not args.quick:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / f"{args.out}.json").write_text(json.dumps(report, indent=1) + "\n")
        (RESULTS / f"{args.out}.md").write_text(markdown(report))
    return report


if __name__ == "__main__":
    main()
