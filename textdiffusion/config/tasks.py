"""The typed settings of each task, saved as the `task_config` section of config.json.

They live on the config floor (nothing here imports torch or the tasks) because checkpoint.py reads them; each task
of `textdiffusion.tasks` names its class. A new task adds its dataclass here and one line to TASK_CONFIGS.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

from textdiffusion.config.base import _check

TaskName = Literal["generate", "denoise", "style", "caption"]
"""generate: a language model; denoise: a corrector of corrupted text; style: a rewriter trained on aligned pairs or
on labelled texts; caption: a describer of images trained on (image, caption) pairs."""


@dataclasses.dataclass
class LMConfig:
    """Language modelling (generate, complete, infill). With `max_blank` K > 0 the model also learns blanks of
    unknown length: a share `blank_rate` of the training windows has one or two word spans rewritten as the span
    followed by PADs up to K positions (tasks/lm/blanks.py), so infilling fills K masks once and drops the PADs.
    Saved in config.json; only the trainer reads blank_rate and mask_blanks."""

    blank_rate: float = 0.0
    """Share of training windows given variable-length blanks (needs max_blank > 0)."""
    max_blank: int = 0
    """K, the positions of one blank (its text, then PADs); 0: the model has no variable-length blanks."""
    mask_blanks: float = 0.5
    """Share of the blanked windows whose blanks are masked whole (the context noised as usual), as at infilling
    time; the other blanks are noised like the rest of the window."""

    def __post_init__(self) -> None:
        _check(
            0.0 <= self.blank_rate <= 1.0,
            f"--blank-rate must be in [0, 1], got {self.blank_rate}",
        )
        _check(self.max_blank >= 0, f"--max-blank must be >= 0, got {self.max_blank}")
        _check(
            0.0 <= self.mask_blanks <= 1.0,
            f"--mask-blanks must be in [0, 1], got {self.mask_blanks}",
        )
        _check(
            self.blank_rate == 0.0 or self.max_blank > 0,
            f"--blank-rate {self.blank_rate} needs --max-blank K > 0 (the positions of a blank)",
        )


@dataclasses.dataclass
class DenoiseConfig:
    """Training pairs of the denoising task: clean text corrupted on the fly (see data/corruption.py)."""

    max_chars: int = 120
    """Longest clean text per pair; longer lines are corrected in pieces of this size."""
    word_fraction: float = 0.3
    """Share of training pairs that are single words (for word-level spelling correction)."""
    word_clean_rate: float = 0.25
    """Share of those words left correct, so that correct words come back unchanged."""
    tokenized_rate: float = 0.0
    """Share of sentences given tokenised spacing ("do n't stop , then ."), so that tokenised input keeps it."""
    words: str | None = None
    """Word list for the single-word pairs: one word per line, optionally followed by a count (e.g. symspellpy's
    frequency dictionary); a word is drawn with probability proportional to the square root of its count. Default:
    the words of --data seen at least twice."""
    word_error_rate: float = 0.15
    """Share of words of a sentence that get a spelling error."""
    grammar_rate: float = 0.05
    """Rate of each grammatical slip (articles, agreement, verb forms, prepositions)."""
    clean_rate: float = 0.1
    """Share of sentences left clean."""
    workers: int = 0
    """Processes corrupting text ahead of training (0: in the training process)."""

    def __post_init__(self) -> None:
        _check(self.max_chars >= 8, f"--max-chars must be >= 8, got {self.max_chars}")
        for name in (
            "word_fraction",
            "word_clean_rate",
            "tokenized_rate",
            "word_error_rate",
            "grammar_rate",
            "clean_rate",
        ):
            value = getattr(self, name)
            _check(
                0.0 <= value <= 1.0, f"--{name.replace('_', '-')} must be in [0, 1], got {value}"
            )
        _check(self.workers >= 0, f"--workers must be >= 0, got {self.workers}")


@dataclasses.dataclass
class StyleConfig:
    """Style transfer. From aligned pairs: the target length rule, ceil(ratio * n) + slack positions for a source of n
    tokens (fitted on the training pairs). Of an attribute (`labels` given): the label names and the positions of a
    line (its text, then learnt PADs)."""

    ratio: float = 1.0
    """Aligned pairs: target positions per source token."""
    slack: int = 16
    """Aligned pairs: target positions added to every rewrite."""
    labels: tuple[str, ...] = ()
    """Attribute transfer: the label names, in the order of their ids; empty for aligned pairs."""
    length: int = 0
    """Attribute transfer: positions per line."""
    gap: int = 0
    """Aligned pairs: 0 generates the rewrite from masks (its length by ratio and slack); G > 0 refines the source
    itself, written on a canvas of its tokens each followed by G insertion slots (data/edits.py)."""

    def __post_init__(self) -> None:
        _check(self.ratio > 0, f"style ratio must be positive, got {self.ratio}")
        _check(self.slack >= 0, f"style slack must be >= 0, got {self.slack}")
        _check(self.gap >= 0, f"--edit-gap must be >= 0, got {self.gap}")
        _check(not (self.labels and self.gap), "--edit-gap is for aligned pairs (--targets), not --labels")
        _check(
            not self.labels or self.length > 0,
            f"an attribute model needs a positive line length, got {self.length}",
        )

    @property
    def attribute(self) -> bool:
        """Attribute transfer (labels), rather than aligned pairs."""
        return bool(self.labels)


@dataclasses.dataclass
class CaptionConfig:
    """Captioning: caption positions (the longest training caption's tokens; shorter ones end in learnt PADs) and
    the captions sampled per image, of which the pipeline returns the consensus (minimum Bayes risk under chrF)."""

    length: int = 0
    candidates: int = 1

    def __post_init__(self) -> None:
        _check(self.length >= 0, f"caption length must be >= 0, got {self.length}")
        _check(self.candidates >= 1, f"--candidates must be at least 1, got {self.candidates}")


TASK_CONFIGS: dict[str, type] = {
    "generate": LMConfig,
    "denoise": DenoiseConfig,
    "style": StyleConfig,
    "caption": CaptionConfig,
}
