"""Training: the loop, optimiser and schedule, EMA, checkpoints, and torchrun (DDP/FSDP) set-up."""

from textdiffusion.training.trainer import (
    Trainer,
    TrainingDiverged,
    TrainingError,
    TrainResult,
    find_checkpoints,
    train,
)

__all__ = [
    "TrainResult",
    "Trainer",
    "TrainingDiverged",
    "TrainingError",
    "find_checkpoints",
    "train",
]
