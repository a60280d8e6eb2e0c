"""The models a server holds: each checkpoint loaded once, its pipelines, and one worker thread per model that runs
its calls one at a time, first come first served.

A pipeline holds a network and a tokenizer that are not safe to share between threads mid-call (and a GPU runs one
call at a time anyway), so every call for a model goes through that model's queue; calls for different models run
side by side. A call streams events (`queued`, `start`, `step`, `progress`, then `result` or `error`) through its
`Job`, which a web request reads while the worker writes.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import threading
from collections.abc import Callable, Sequence
from typing import Any

logger = logging.getLogger(__name__)

TASKS = ("generate", "infill", "denoise", "style", "caption")
"""The tasks the web app offers, in the order of its tabs."""

TASKS_OF_CHECKPOINT = {
    "generate": ("generate", "infill"),
    "denoise": ("denoise",),
    "style": ("style",),
    "caption": ("caption",),
}
"""The tasks served for a checkpoint of each `config.task` (a language model also fills blanks)."""


class ServeError(ValueError):
    """A request the server refuses: the message says why, `status` is the HTTP status to answer with."""

    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class Cancelled(Exception):
    """Raised inside a call whose client went away (from the step callback), to stop the sampler early."""


class Job:
    """One call: the function the worker runs, the events it streams, and its outcome.

    `run(job)` returns the result dict; it may `emit` events on the way and should call `check()` often (the step
    callback does) so that a cancelled call stops."""

    def __init__(self, run: Callable[[Job], dict[str, Any]]) -> None:
        self.run = run
        self.events: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
        self.cancelled = threading.Event()
        self.finished = threading.Event()
        self.result: dict[str, Any] | None = None
        self.error: ServeError | None = None

    def emit(self, kind: str, data: dict[str, Any]) -> None:
        self.events.put((kind, data))

    def check(self) -> None:
        if self.cancelled.is_set():
            raise Cancelled

    def cancel(self) -> None:
        self.cancelled.set()

    def next_event(self, timeout: float) -> tuple[str, dict[str, Any]] | None:
        """The next event, or None if none came within `timeout` seconds."""
        try:
            return self.events.get(timeout=timeout)
        except queue.Empty:
            return None

    def finish(self, *, result: dict[str, Any] | None = None, error: ServeError | None = None):
        self.result, self.error = result, error
        if error is not None:
            self.emit("error", {"error": str(error), "status": error.status})
        else:
            self.emit("result", result or {})
        self.finished.set()

    def wait(self, timeout: float | None = None) -> dict[str, Any]:
        """Block until the call is done; its result, or its error raised."""
        if not self.finished.wait(timeout):
            raise ServeError("the call took too long", status=504)
        if self.error is not None:
            raise self.error
        return self.result or {}


class ServedModel:
    """A loaded checkpoint, a pipeline for each of its tasks, and the worker thread that runs its calls in order.

    Args:
        name: the name requests use (what `--model` was given).
        pretrained: the loaded checkpoint (`textdiffusion.checkpoint.Pretrained`); its network is shared by the
            pipelines.
        max_queue: calls that may wait; more are refused with status 503.
    """

    def __init__(self, name: str, pretrained: Any, *, max_queue: int = 8) -> None:
        from textdiffusion import pipelines

        classes = {
            "generate": pipelines.GenerationPipeline,
            "infill": pipelines.InfillPipeline,
            "denoise": pipelines.DenoisePipeline,
            "style": pipelines.StylePipeline,
            "caption": pipelines.CaptionPipeline,
        }
        task = pretrained.config.task
        if task not in TASKS_OF_CHECKPOINT:
            raise ServeError(
                f"--model {name}: a {task!r} model has no web task "
                f"(served: {', '.join(TASKS_OF_CHECKPOINT)})"
            )
        self.name, self.task = name, task
        self.pipelines = {t: classes[t](pretrained) for t in TASKS_OF_CHECKPOINT[task]}
        self.lexicon: Any = None
        """Denoise models: the `Lexicon` of word-mode correction, or None (whole lines only)."""
        self._queue: queue.Queue[Job | None] = queue.Queue(maxsize=max_queue)
        self._pending = 0  # waiting or running
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._work, name=f"serve-{name}", daemon=True)
        self._thread.start()

    @property
    def tasks(self) -> tuple[str, ...]:
        return tuple(self.pipelines)

    def describe(self) -> dict[str, Any]:
        """What the page needs to offer this model: tasks, limits and defaults."""
        pipe = next(iter(self.pipelines.values()))
        info: dict[str, Any] = {
            "name": self.name,
            "tasks": list(self.tasks),
            "max_len": pipe.max_len,
            "steps": pipe.config.sample.steps,
            "sampler": pipe.config.sample.sampler,
            "tokenizer": pipe.tokenizer.kind,
        }
        if "style" in self.pipelines:
            info["labels"] = self.pipelines["style"].labels or []
        if "denoise" in self.pipelines:
            info["modes"] = (["words"] if self.lexicon is not None else []) + ["lines"]
        if "caption" in self.pipelines:
            info["image_size"] = self.pipelines["caption"].image_size
        return info

    def submit(self, job: Job) -> Job:
        """Queue `job`; it streams `queued` (with the calls ahead of it) at once. Refused (503) when full."""
        with self._lock:
            try:
                self._queue.put_nowait(job)
            except queue.Full:
                raise ServeError(
                    f"model {self.name} is busy ({self._pending} calls waiting or running); try again soon",
                    status=503,
                ) from None
            job.emit("queued", {"ahead": self._pending})
            self._pending += 1
        return job

    def close(self, timeout: float = 10.0) -> None:
        """Stop the worker after the calls already queued, waiting at most `timeout` seconds for it."""
        try:
            self._queue.put(None, timeout=timeout)
        except queue.Full:
            return  # a daemon thread: it ends with the process
        self._thread.join(timeout=timeout)

    def _work(self) -> None:
        import torch

        from textdiffusion.pipelines import InputError

        while True:
            job = self._queue.get()
            if job is None:
                return
            try:
                if job.cancelled.is_set():
                    job.finish(error=ServeError("cancelled", status=499))
                    continue
                job.emit("start", {"model": self.name})
                try:
                    with torch.inference_mode():
                        result = job.run(job)
                except Cancelled:
                    job.finish(error=ServeError("cancelled", status=499))
                except ServeError as exc:
                    job.finish(error=exc)
                except (InputError, ValueError) as exc:  # bad input the pipeline found
                    job.finish(error=ServeError(str(exc)))
                except Exception as exc:  # a bug: the server goes on, the client hears of it
                    logger.exception("call on %s failed", self.name)
                    job.finish(error=ServeError(f"internal error: {exc}", status=500))
                else:
                    job.finish(result=result)
            finally:
                with self._lock:
                    self._pending -= 1


@dataclasses.dataclass
class ModelRegistry:
    """The served models by name, in the order given (the first offering a task is its default)."""

    models: dict[str, ServedModel]

    @classmethod
    def load(
        cls, names: Sequence[str], *, device: str = "cpu", max_queue: int = 8
    ) -> ModelRegistry:
        """Load each checkpoint once (shipped name, local folder or hub id). Raises `CheckpointError` or
        `ServeError` naming the model."""
        from textdiffusion.checkpoint import load_pretrained
        from textdiffusion.pipelines import InputError

        if not names:
            raise ServeError("no model to serve: give --model NAME")
        models: dict[str, ServedModel] = {}
        for name in dict.fromkeys(names):
            try:
                models[name] = ServedModel(
                    name, load_pretrained(name, device=device), max_queue=max_queue
                )
            except InputError as exc:
                raise ServeError(f"--model {name}: {exc}") from None
        return cls(models)

    def get(self, name: str | None, task: str) -> ServedModel:
        """The model `name` (or the first doing `task`), checked to do `task`."""
        doing = [m.name for m in self.models.values() if task in m.tasks]
        if name is None:
            if not doing:
                raise ServeError(f"no loaded model does {task}", status=404)
            return self.models[doing[0]]
        if name not in self.models:
            raise ServeError(
                f"model {name!r} is not loaded (loaded: {', '.join(self.models)})", status=404
            )
        model = self.models[name]
        if task not in model.tasks:
            others = f"; models that do: {', '.join(doing)}" if doing else ""
            raise ServeError(
                f"model {name} does not do {task} (it does: {', '.join(model.tasks)}){others}"
            )
        return model

    def tasks(self) -> list[str]:
        return [t for t in TASKS if any(t in m.tasks for m in self.models.values())]

    def close(self) -> None:
        for model in self.models.values():
            model.close()
