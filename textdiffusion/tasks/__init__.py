"""Tasks: each one's data, training stream, pipeline, sampling defaults and metrics in one place.

`TASKS = {name: Task}`, like `samplers.SAMPLERS`. A new task is one subpackage defining a `Task` (tasks/base.py), its
typed settings in config/tasks.py, and one line below.
"""

from __future__ import annotations

from textdiffusion.tasks import caption, denoise, lm, style
from textdiffusion.tasks.base import Task, TaskData, TaskRequest, ValidationSet

TASKS: dict[str, Task] = {
    task.name: task for task in (lm.TASK, denoise.TASK, style.TASK, caption.TASK)
}


def get_task(name: str) -> Task:
    """The task called `name`; an unknown name is an error that lists the known ones."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; choose from {', '.join(TASKS)}")
    return TASKS[name]


__all__ = ["TASKS", "Task", "TaskData", "TaskRequest", "ValidationSet", "get_task"]
