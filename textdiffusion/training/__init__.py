"""Training: the builder that asks the task for its data, the loop, optimiser and schedule, EMA, checkpoints, and
torchrun (DDP/FSDP) set-up."""

from textdiffusion.training.builder import build_parts, build_trainer, train
from textdiffusion.training.parts import TrainingParts, TrainResult
from textdiffusion.training.state import TrainingDiverged, TrainingError, find_checkpoints
from textdiffusion.training.trainer import Trainer

__all__ = [
    "TrainResult",
    "Trainer",
    "TrainingDiverged",
    "TrainingError",
    "TrainingParts",
    "build_parts",
    "build_trainer",
    "find_checkpoints",
    "train",
]
