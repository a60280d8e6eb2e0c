"""Run logs of a training run, written by rank 0: OUT/metrics.jsonl, OUT/curves.png and optionally TensorBoard.

metrics.jsonl holds one JSON object per line, appended as the run goes: at each log step `step`, `loss` (training
ELBO, nats per token, mean over the log interval), `lr` and `tokens_per_second` (all ranks, padding included); at
each evaluation `valid_nll` (nats per token) and `valid_bits_per_char`, in the same object when both fall on one
step. A resumed run first drops the lines past its checkpoint's step (written after the checkpoint the run went
back to), so every step appears once.
"""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

METRICS_NAME = "metrics.jsonl"
CURVES_NAME = "curves.png"


class LoggingError(ValueError):
    """A requested run log cannot be written (e.g. `--log tensorboard` without the tensorboard package)."""


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """The rows of a metrics.jsonl file; a line cut short by a killed process is skipped."""
    rows = []
    for line in Path(path).read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict) and isinstance(row.get("step"), int):
            rows.append(row)
    return rows


class RunLog:
    """Appends metric rows to OUT/metrics.jsonl (and TensorBoard scalars); a no-op where `enabled` is False.

    Args:
        out: the run's folder.
        start_step: the step the run starts from (its checkpoint's when resuming): rows past it are dropped.
        enabled: write anything at all (rank 0 only).
        tensorboard: also write TensorBoard event files to OUT/tensorboard.
    """

    def __init__(
        self, out: Path, *, start_step: int, enabled: bool = True, tensorboard: bool = False
    ) -> None:
        self.path = out / METRICS_NAME
        self.enabled = enabled
        self._file = None
        self._writer = None
        if not enabled:
            return
        if tensorboard:
            self._writer = _tensorboard_writer(out / "tensorboard", purge_step=start_step + 1)
        out.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            kept = [row for row in read_metrics(self.path) if row["step"] <= start_step]
            tmp = self.path.with_name(f".{self.path.name}.tmp-{os.getpid()}")
            tmp.write_text("".join(json.dumps(row) + "\n" for row in kept))
            os.replace(tmp, self.path)
        self._file = self.path.open("a", buffering=1)  # line-buffered: a killed run keeps its lines

    def write(self, row: dict[str, Any]) -> None:
        """Append one row (must hold `step`); non-finite floats are written as null (JSON has no NaN)."""
        if not self.enabled or self._file is None:
            return
        clean = {
            k: (None if isinstance(v, float) and not math.isfinite(v) else v)
            for k, v in row.items()
        }
        self._file.write(json.dumps(clean) + "\n")
        if self._writer is not None:
            for name, value in row.items():
                if name != "step" and isinstance(value, (int, float)):
                    self._writer.add_scalar(name, value, row["step"])

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def _tensorboard_writer(folder: Path, *, purge_step: int):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise LoggingError(
            "--log tensorboard needs the tensorboard package: pip install tensorboard"
        ) from None
    # purge_step: a resumed run hides the events a killed run wrote past its checkpoint
    return SummaryWriter(str(folder), purge_step=purge_step)


def plot_curves(metrics: str | Path, png: str | Path) -> Path | None:
    """Draw the training loss, validation bits/char, learning rate and tokens/s of a metrics.jsonl against the
    step into `png`; returns its path, or None when the file holds no rows yet."""
    rows = read_metrics(metrics)
    if not rows:
        return None
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    def series(name: str) -> tuple[list[int], list[float]]:
        points = [(r["step"], r[name]) for r in rows if isinstance(r.get(name), (int, float))]
        return [p[0] for p in points], [p[1] for p in points]

    panels = [
        ("loss", "training loss (nats/token)"),
        ("valid_bits_per_char", "validation bits/char"),
        ("lr", "learning rate"),
        ("tokens_per_second", "tokens/s"),
    ]
    # a fixed layout: half the time of "constrained", and this runs after every training run
    figure = Figure(figsize=(9, 6))
    FigureCanvasAgg(figure)
    figure.subplots_adjust(left=0.08, right=0.97, bottom=0.08, top=0.94, hspace=0.45, wspace=0.25)
    for i, (name, title) in enumerate(panels):
        ax = figure.add_subplot(2, 2, i + 1)
        x, y = series(name)
        if x:
            ax.plot(x, y, marker="o" if len(x) < 20 else None, markersize=3)
        else:
            ax.text(0.5, 0.5, "no values yet", ha="center", va="center", transform=ax.transAxes)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    return save_figure(figure, png)


def save_figure(figure, png: str | Path) -> Path:
    """Write a matplotlib figure as PNG atomically (a temporary sibling, then a rename): a reader never sees half a
    picture."""
    png = Path(png)
    tmp = png.with_name(f".{png.stem}.tmp-{os.getpid()}.png")
    figure.savefig(tmp, dpi=80)
    os.replace(tmp, png)
    return png
