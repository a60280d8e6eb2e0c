"""Progress display of a training run: a rich progress bar on a terminal, periodic log lines elsewhere."""

from __future__ import annotations

import logging
import time

logger = logging.getLogger(__name__)


class TrainProgress:
    """`with TrainProgress(total=..., start=...) as bar: bar.update(step, loss=..., speed=..., lr=...)`."""

    def __init__(
        self, *, total: int, start: int = 0, enabled: bool = True, log_interval: float = 30.0
    ) -> None:
        self.total, self.start, self.enabled = total, start, enabled
        self.log_interval, self._last_log = log_interval, 0.0
        self.fields = {"loss": float("nan"), "speed": 0.0, "lr": 0.0, "valid_bpc": float("nan")}
        self._progress = None
        self._task = None

    def __enter__(self) -> TrainProgress:
        if not self.enabled:
            return self
        from rich.console import Console

        console = Console(stderr=True)
        if console.is_terminal:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
            )

            self._progress = Progress(
                TextColumn("[bold]train"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn(
                    "loss {task.fields[loss]:.4f}  {task.fields[speed]:,.0f} tok/s  lr {task.fields[lr]:.2e}"
                ),
                TextColumn("valid {task.fields[valid_bpc]:.3f} bpc"),
                TimeRemainingColumn(),
                console=console,
            )
            self._progress.start()
            self._task = self._progress.add_task(
                "train", total=self.total, completed=self.start, **self.fields
            )
        return self

    def update(self, step: int, **fields: float) -> None:
        self.fields.update(fields)
        if not self.enabled:
            return
        if self._progress is not None:
            self._progress.update(self._task, completed=step, **self.fields)
        elif time.monotonic() - self._last_log > self.log_interval or step >= self.total:
            self._last_log = time.monotonic()
            logger.info(
                "step %d/%d  loss %.4f  %.0f tok/s  lr %.2e",
                step,
                self.total,
                self.fields["loss"],
                self.fields["speed"],
                self.fields["lr"],
            )

    def note(self, **fields: float) -> None:
        self.fields.update(fields)
        if self._progress is not None:
            self._progress.update(self._task, **self.fields)

    def __exit__(self, *exc) -> None:
        if self._progress is not None:
            self._progress.stop()
