"""What a task is: the contract between one task's code and the generic training and loading floors.

A `Task` bundles its typed settings (`config.TASK_CONFIGS`), how it reads its data and makes its training
stream and validation set (`prepare`), the pipeline that runs a trained model, the sampling defaults saved with
such a model, and its metrics. The training builder asks the task for its data; nothing below this floor knows a
task by name.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from textdiffusion.config import DataConfig, ModelConfig, SampleConfig
from textdiffusion.data import DataError, Tokenizer, read_documents, read_hf_dataset

logger = logging.getLogger(__name__)

SEQ2SEQ_SAMPLING = SampleConfig(sampler="confidence", steps=32, threshold=0.9, temperature=0.1)
"""Sampling defaults of the conditional tasks (denoise, style, caption): near-greedy, parallel decoding."""


class Stream(Protocol):
    """A resumable source of training batches (the streams of data/packing.py, data/seq2seq.py and the tasks)."""

    def next_batch(self) -> np.ndarray | dict[str, np.ndarray]: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


@dataclasses.dataclass
class TaskRequest:
    """What the training builder hands a task to make its data."""

    data: DataConfig
    model: ModelConfig
    """The network's settings (context length, image size); vocab_size is not set yet for a new model."""
    config: Any = None
    """The task's typed settings when they are given (a resumed run's, or the caller's options); None: the task
    derives them from the data (lengths, labels) or takes its defaults."""
    resumed: bool = False
    """A resumed run: `config` is the run's own and must be kept (a fine-tuning run derives new settings)."""
    tokenizer: Tokenizer | None = None
    """The checkpoint's tokenizer (resume, fine-tune); None: the task trains one on its data."""
    out: Path = Path(".")
    seq_len: int = 0
    """Length of the packed training windows (language modelling)."""
    batch_size: int = 1
    rank: int = 0
    world_size: int = 1
    seed: int = 0
    eval_batches: int = 8
    is_main: bool = True
    barrier: Callable[[], None] = lambda: None
    """Waits for every rank (the tokenizer is trained by rank 0 and read by the others)."""

    @property
    def placement(self) -> dict[str, int]:
        """The batch placement every stream takes: global batch size and this rank's slice."""
        return dict(batch_size=self.batch_size, rank=self.rank, world_size=self.world_size)


@dataclasses.dataclass
class ValidationSet:
    """Held-out data the trainer scores at each evaluation: token windows of a language model (scored by the
    likelihood scorer, evaluation/elbo.py) or fixed conditional batches (scored by the training objective with
    fixed noise). `chars` counts their clean characters, for bits per character."""

    chars: int
    windows: np.ndarray | None = None
    """int32 (N, L) token windows."""
    batches: list[dict[str, np.ndarray]] = dataclasses.field(default_factory=list)

    def __len__(self) -> int:
        return len(self.windows) if self.windows is not None else len(self.batches)


@dataclasses.dataclass
class TaskData:
    """A task's answer to a TaskRequest."""

    tokenizer: Tokenizer
    config: Any
    """The typed settings to save in config.json."""
    train: Stream
    valid: ValidationSet
    n_labels: int = 0
    """Class labels the network embeds (attribute transfer)."""
    text_form: dict | None = None
    """The form of the model's input text (data/textform.py, `recorded_form`), when it is not text as typed."""


class Task:
    """One task: subclasses set the class attributes and implement `prepare`."""

    name: str = ""
    trains: str = ""
    """What a model of this task is, in a message ("language models", "correctors")."""
    config_class: type = object
    pipeline: type | None = None
    """The pipeline class that runs a model trained for this task (`textdiffusion.pipeline(model)`)."""
    sample: SampleConfig | None = None
    """Sampling defaults saved with a new model (None: SampleConfig())."""
    data_flags: dict[str, str] = {}
    """DataConfig fields that only this task reads, each with what it is for (any other task refuses them)."""
    processes: tuple[str, ...] = ("masked",)
    """Forward processes a model of this task can be trained with."""
    blocks: bool = False
    """Models of this task may be block-diffusion (BD3-LM) models (`--block-size`)."""
    reads_images: bool = False
    """The network reads images (ModelConfig.image_size must be set)."""
    metrics: dict[str, Callable[..., float]] = {}
    """Named task metrics of outputs against references (bench, search): metric(hypotheses, references), the
    references a list per output."""
    sampling_metric: str | None = None
    """The metric of `metrics` that `search` picks the sampling steps by (None: the task has none)."""

    def prepare(self, request: TaskRequest) -> TaskData:
        raise NotImplementedError


def load_documents(data: DataConfig) -> list[str]:
    """The documents of --data and --hf-dataset; an error if there are none or all are empty."""
    documents = list(read_documents(data.data, jsonl_field=data.jsonl_field)) if data.data else []
    if data.hf_dataset:
        documents += list(
            read_hf_dataset(data.hf_dataset, split=data.hf_split, field=data.jsonl_field)
        )
    if not documents:
        raise DataError("no training data: pass --data FILE/FOLDER/GLOB or --hf-dataset")
    if not any(doc.strip() for doc in documents):
        raise DataError(f"the training data {list(data.data)} holds no text (only empty documents)")
    return documents


def ensure_tokenizer(documents: list[str], request: TaskRequest) -> Tokenizer:
    """The request's tokenizer, or a new one trained on `documents` by rank 0 and shared with the others
    through OUT/tokenizer.json."""
    if request.tokenizer is not None:
        return request.tokenizer
    data, out = request.data, request.out
    path = out / "tokenizer.json"
    tokenizer = None
    if request.is_main:
        out.mkdir(parents=True, exist_ok=True)
        if data.tokenizer == "char":
            tokenizer = Tokenizer.train_char(documents)
        else:
            tokenizer = Tokenizer.train_bpe(documents, vocab_size=data.bpe_vocab_size)
        tmp = path.with_name(".tokenizer.json.tmp")
        tokenizer.save(tmp)
        tmp.replace(path)
        logger.info("trained a %s tokenizer with %d tokens", data.tokenizer, tokenizer.vocab_size)
    request.barrier()
    return tokenizer if tokenizer is not None else Tokenizer.load(path)


def validation_batches(stream: Stream | None, tokenizer: Tokenizer, n: int) -> ValidationSet:
    """The first `n` batches of a fixed conditional stream, with the clean characters of this rank's targets
    (decode drops the PADs): bits per character for any tokenizer."""
    batches = [stream.next_batch() for _ in range(n)] if stream is not None else []
    chars = sum(len(tokenizer.decode(row)) for b in batches for row in b["target"].tolist())
    return ValidationSet(chars=chars, batches=batches)
