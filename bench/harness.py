"""The run/record/render skeleton every benchmark shares, so that a script keeps only its measurements.

A script declares a `Benchmark` (its name, its section title, `render` for its full tables and `summary` for the few
lines bench/README.md shows) and calls `run(BENCH, args, measure)`. `run` then

- resolves the device and CPU threads (`--device`, `--threads`);
- opens `bench/results/NAME-{cpu,cuda}[-quick].json` (or `--json FILE`), with the machine, the command and the
  date, and saves it after every record, so that a run cut by a timeout keeps what it finished (`"complete": false`);
- calls `measure(results, device)`;
- writes the Markdown tables beside the JSON (`STEM.md`) and, unless `--no-readme`, the summary into
  bench/README.md between `<!-- bench:STEM:start -->` and `<!-- bench:STEM:end -->`, where the README has them.

`--render FILE.json` redraws both from a result file (e.g. one brought back from a GPU machine) without measuring.
Timings are compared as ratios within one run on one machine; a number alone says little across machines.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import torch

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
README = BENCH_DIR / "README.md"
RESULTS_DIR = BENCH_DIR / "results"
SHARED_DATA = next(  # ../shared/data beside the checkout, or beside the folder of worktrees
    (
        folder / "shared" / "data"
        for folder in (REPO_DIR.parent, REPO_DIR.parent.parent)
        if (folder / "shared" / "data").is_dir()
    ),
    REPO_DIR.parent / "shared" / "data",
)


# -- arguments ----------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class BenchArgs:
    """The options every benchmark script shares; each script adds its own."""

    device: str = "auto"
    """cpu, cuda or auto."""
    quick: bool = False
    """CPU-sized run: the script's QUICK defaults (flags given with --quick still override them)."""
    threads: int | None = None
    """CPU threads (default: all cores, at most 16)."""
    json: str | None = None
    """Result file (default: bench/results/BENCHMARK-{cpu,cuda}[-quick].json; the .md tables go beside it)."""
    readme: bool = True
    """Write the summary into bench/README.md (where it has the file's markers)."""
    render: str | None = None
    """Only redraw the tables (FILE.md) and the README summary from this result file, then stop."""


def parse_args(cls, quick: dict, argv: list[str] | None = None):
    """The script's arguments from the command line; with --quick the CPU-sized defaults in `quick` apply first."""
    import tyro

    from textdiffusion.cli.common import join_help_lines

    join_help_lines()
    argv = sys.argv[1:] if argv is None else argv
    return tyro.cli(cls, args=argv, default=cls(**quick) if "--quick" in argv else None)


# -- the device ---------------------------------------------------------------------------------------------------
def resolve_device(name: str) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit(
            f"--device {name}: CUDA is not available on this machine (use --device cpu)"
        )
    return device


def setup_torch(device: torch.device, *, threads: int | None = None, tf32: bool = True) -> None:
    """CPU threads (default: all cores, at most 16); on CUDA, TF32 for the float32 matmuls unless `tf32` is False
    (likelihoods are evaluated in full float32)."""
    torch.set_num_threads(threads or min(16, os.cpu_count() or 1))
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32


# -- the machine --------------------------------------------------------------------------------------------------
def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args], cwd=REPO_DIR, capture_output=True, text=True, timeout=10
        )
        return out.stdout.strip() if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def _git_commit() -> str | None:
    """The commit, with "+changes" when the package or the benchmarks differ from it."""
    commit = _git("rev-parse", "--short", "HEAD")
    if commit and _git("status", "--porcelain", "--", "textdiffusion", "bench"):
        commit += "+changes"
    return commit


def machine_info(device: torch.device) -> dict[str, Any]:
    """What the numbers were measured on."""
    info: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "device": str(device),
        "cpu": _cpu_model(),
        "cpu_cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "git_commit": _git_commit(),
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(
            gpu=props.name,
            gpu_memory_gib=round(props.total_memory / 2**30, 1),
            gpu_capability=f"{props.major}.{props.minor}",
            cuda=torch.version.cuda,
        )
    return info


def describe(info: dict[str, Any]) -> str:
    """One line naming the machine."""
    where = (
        info.get("gpu")
        or f"{info['cpu']} ({info['torch_threads']} threads of {info['cpu_cores']} cores)"
    )
    return f"{where}, torch {info['torch']}, {info['date']}"


def command_line() -> str:
    """How this process was started, as a command to rerun: `python -m bench.NAME ARGS` for a benchmark."""
    script = Path(sys.argv[0]).resolve()
    head = f"python -m bench.{script.stem}" if script.parent == BENCH_DIR else script.name
    return " ".join([head, *sys.argv[1:]])


# -- results ------------------------------------------------------------------------------------------------------
def log(message: str) -> None:
    """Progress on stderr, flushed at once (runs are often read from a log while they go)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write atomically (a temporary file, then a rename), so a killed run leaves the last complete file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_json(path: str | os.PathLike, data: Any) -> None:
    write_text(path, json.dumps(data, indent=2, default=_json_default) + "\n")


def _json_default(value: Any) -> Any:
    if isinstance(value, (Path, torch.device, torch.dtype)):
        return str(value)
    if dataclasses.is_dataclass(value):
        return dataclasses.asdict(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


class Results:
    """A result file written after every record, so that partial results survive a timeout. `previous` holds what
    the file held before (a rerun may reuse the models an earlier run finished)."""

    def __init__(
        self, path: str | os.PathLike, *, benchmark: str, args: Any, device: torch.device
    ) -> None:
        self.path = Path(path)
        try:
            self.previous: dict[str, Any] = json.loads(self.path.read_text())
        except (OSError, ValueError):
            self.previous = {}
        self.data: dict[str, Any] = {
            "benchmark": benchmark,
            "command": command_line(),
            "args": dataclasses.asdict(args) if dataclasses.is_dataclass(args) else args,
            "machine": machine_info(device),
            "complete": False,
        }
        self.save()

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def add(self, section: str, record: dict[str, Any]) -> None:
        """Append `record` to the list `section` and save."""
        self.data.setdefault(section, []).append(record)
        self.save()

    def set(self, key: str, value: Any) -> None:
        self.data[key] = value
        self.save()

    def save(self) -> None:
        write_json(self.path, self.data)

    def finish(self) -> None:
        self.data["complete"] = True
        self.save()


def run_case(
    results: Results, section: str, name: str, fn: Callable[[], dict[str, Any]], **fields
) -> dict:
    """Run one benchmark case; an exception is recorded with the case (and logged), and the run goes on."""
    start = time.perf_counter()
    try:
        record = {"case": name, **fields, **fn()}
    except Exception as exc:
        # one failing case (out of memory, a compile error) must not lose the others
        record = {"case": name, **fields, "error": f"{type(exc).__name__}: {exc}"[:2000]}
        log(f"{name}: FAILED {record['error'][:300]}")
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    record["case_seconds"] = time.perf_counter() - start
    results.add(section, record)
    return record


# -- one benchmark, end to end ------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Benchmark:
    """What `run` needs to know about a script besides its measurements."""

    name: str
    """The results' name: bench/results/NAME-{cpu,cuda}[-quick].json by default."""
    title: str
    """Heading of the Markdown tables (and of the script's section in bench/README.md)."""
    render: Callable[[dict], str]
    """The full tables of a result file, written to STEM.md beside it."""
    summary: Callable[[dict], str]
    """A few lines of the same numbers for bench/README.md."""
    tf32: bool = True
    """TF32 matmuls on CUDA (likelihoods are evaluated in full float32)."""
    stem: Callable[[Any, torch.device], str] | None = None
    """The result file's name without .json, when it is not NAME-DEVICE[-quick]."""

    def path(self, args: BenchArgs, device: torch.device) -> Path:
        if args.json:
            return Path(args.json)
        if self.stem is not None:
            return RESULTS_DIR / f"{self.stem(args, device)}.json"
        return RESULTS_DIR / f"{self.name}-{device.type}{'-quick' if args.quick else ''}.json"


def run(bench: Benchmark, args: BenchArgs, measure: Callable[[Results, torch.device], Any]) -> dict:
    """Measure into a result file, then publish its tables (see the module docstring); returns the results."""
    if args.render:
        path = Path(args.render)
        data = json.loads(path.read_text())
        publish(bench, data, path, readme=args.readme)
        return data
    device = resolve_device(args.device)
    setup_torch(device, threads=args.threads, tf32=bench.tf32)
    path = bench.path(args, device)
    results = Results(path, benchmark=bench.name, args=args, device=device)
    log(f"writing {path}")
    measure(results, device)
    results.finish()
    publish(bench, results.data, path, readme=args.readme)
    return results.data


def publish(bench: Benchmark, data: dict, path: Path, *, readme: bool = True) -> None:
    """STEM.md beside the result file: the full tables; bench/README.md: the summary, if it has STEM's markers."""
    md = path.with_suffix(".md")
    tables = (
        f"# {bench.title}: `{path.name}`\n\n{bench.render(data).strip()}\n\n{provenance(data)}\n"
    )
    write_text(md, tables)
    log(f"wrote {md}")
    if readme:
        if update_readme(
            path.stem, f"{bench.summary(data).strip()}\n\n{source_line(data, md.name)}"
        ):
            log(f"updated bench/README.md ({path.stem})")


# -- Markdown -----------------------------------------------------------------------------------------------------
def fmt(value: Any, spec: str = ".3g") -> str:
    if value is None:
        return "–"
    if isinstance(value, float) and not math.isfinite(value):
        return "–"
    if spec and isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            return format(value, spec)
        except ValueError:  # e.g. ",d" given a float
            return format(value, ",.0f" if spec.endswith("d") else ".3g")
    return str(value)


def markdown_table(rows: Iterable[dict[str, Any]], columns: Sequence[tuple[str, str, str]]) -> str:
    """A Markdown table; `columns` are (key, header, format spec); a spec right-aligns the column."""
    lines = ["| " + " | ".join(header for _, header, _ in columns) + " |"]
    lines.append("|" + "|".join("---:" if spec else "---" for _, _, spec in columns) + "|")
    for row in rows:
        lines.append(
            "| " + " | ".join(fmt(row.get(key), spec or "") for key, _, spec in columns) + " |"
        )
    return "\n".join(lines)


def ok(rows: Iterable[dict]) -> list[dict]:
    """The records that did not fail."""
    return [r for r in rows if "error" not in r]


def provenance(data: dict[str, Any]) -> str:
    """The lines under a table: machine, command, completeness."""
    command = data.get("command")
    if command and not command.startswith("python"):  # files from before bench/ was a package
        command = f"python bench/{command}"
    lines = [f"Machine: {machine_line(data)}."] + ([f"Command: `{command}`"] if command else [])
    if not data.get("complete", True):
        lines.append("**Partial results: the run stopped before the end.**")
    return "  \n".join(lines)


def machine_line(data: dict[str, Any]) -> str:
    info = data.get("machine")
    if not info:
        return f"{data.get('date', 'undated')} (the file records no machine)"
    return f"{describe(info)}; git {info.get('git_commit') or 'uncommitted'}"


def source_line(data: dict[str, Any], md_name: str) -> str:
    """One line under a README summary: the machine, and where the full tables and the command are."""
    partial = "" if data.get("complete", True) else " **Partial: the run stopped before the end.**"
    return f"{machine_line(data)}. [All tables, the command](results/{md_name}).{partial}"


def markers(name: str) -> tuple[str, str]:
    return f"<!-- bench:{name}:start -->", f"<!-- bench:{name}:end -->"


def update_readme(name: str, body: str, *, path: Path = README) -> bool:
    """Replace the text between `<!-- bench:NAME:start -->` and `<!-- bench:NAME:end -->` in bench/README.md.

    Everything outside the markers is left as it is, and a README without them is not touched (it is written by
    hand: a result shows there only where a section names it). Returns whether the block was written."""
    start, end = markers(name)
    text = path.read_text() if path.exists() else ""
    if not (start in text and end in text and text.index(start) < text.index(end)):
        return False
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    write_text(path, f"{head}{start}\n{body.strip()}\n{end}{tail}")
    return True
