"""How long the English `Lexicon` takes to start: building symspell's index, against reading the cached one.

`textdiffusion denoise` builds a `Lexicon` at every start. Building indexes every deletion of up to 3 letters of the
82,765 words (seconds of Python); the first build writes the result to the cache (`textdiffusion.tasks.denoise.lexicon_index`)
and later starts read it. Both are timed alternately in one process, in a fresh temporary cache folder, and their
candidates are compared on the misspellings below.

    python -m bench.lexicon_startup          # about a minute on a CPU
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import tempfile
import time
from pathlib import Path

from bench.harness import BenchArgs, Benchmark, Results, log, markdown_table, parse_args, run
from textdiffusion.tasks.denoise.lexicon import Lexicon

WORDS = [
    "speling",
    "recieve",
    "alot",
    "dont",
    "teh",
    "anual",
    "goverment",
    "wich",
    "thier",
    "accomodate",
]


@dataclasses.dataclass
class StartupArgs(BenchArgs):
    edit_distance: int = 3
    """As `textdiffusion denoise --edit-distance`."""
    repeats: int = 3


def measure(args: StartupArgs, results: Results, device) -> None:
    build_times, read_times = [], []
    with tempfile.TemporaryDirectory() as cache:
        os.environ["TEXTDIFFUSION_CACHE"] = cache  # a fresh cache: the first start builds
        start = time.perf_counter()
        Lexicon(max_edit_distance=args.edit_distance)  # builds and writes the index
        first = time.perf_counter() - start
        size = sum(f.stat().st_size for f in Path(cache).iterdir())
        for _ in range(args.repeats):
            start = time.perf_counter()
            built = Lexicon(max_edit_distance=args.edit_distance, cache=False)
            build_times.append(time.perf_counter() - start)
            start = time.perf_counter()
            read = Lexicon(max_edit_distance=args.edit_distance)
            read_times.append(time.perf_counter() - start)
    build, cached = statistics.median(build_times), statistics.median(read_times)
    record = {
        "build_s": build,
        "first_s": first,
        "cached_s": cached,
        "speedup": build / cached,
        "index_mb": size / 1e6,
        "identical": all(built.candidates(w, 8) == read.candidates(w, 8) for w in WORDS),
        "build_times_s": build_times,
        "cached_times_s": read_times,
    }
    results.add("cases", record)
    log(
        f"build {build:.2f} s, first start (build + write) {first:.2f} s, cached {cached:.2f} s: "
        f"{record['speedup']:.1f}x, identical candidates: {record['identical']}"
    )


COLUMNS = [
    ("build_s", "build s (no cache)", ".3g"),
    ("first_s", "first start s (build + write)", ".3g"),
    ("cached_s", "cached start s", ".3g"),
    ("speedup", "build / cached", ".1f"),
    ("index_mb", "index MB", ".0f"),
    ("identical", "same candidates", ""),
]


def render(data: dict) -> str:
    args = data["args"]
    return (
        f"`Lexicon(max_edit_distance={args['edit_distance']})` (the English default), median of "
        f"{args['repeats']} starts each, alternately in one process.\n\n" + summary(data)
    )


def summary(data: dict) -> str:
    return markdown_table(data.get("cases", []), COLUMNS)


BENCH = Benchmark(
    "lexicon-startup",
    "Lexicon start-up",
    render=render,
    summary=summary,
    stem=lambda args, device: "lexicon-startup-cpu",  # the CPU's work, whatever --device says
)


def main(args: StartupArgs) -> dict:
    return run(BENCH, dataclasses.replace(args, device="cpu"), lambda r, d: measure(args, r, d))


if __name__ == "__main__":
    main(parse_args(StartupArgs, {}))
