"""Language modelling: unconditional generation, prompt completion and infilling, trained on packed windows of
text. Pipelines: `GenerationPipeline` (generate.py) and `InfillPipeline` (infill.py)."""

from __future__ import annotations

import logging

from textdiffusion.config import LMConfig
from textdiffusion.data import (
    BatchStream,
    DataError,
    chunk_stream,
    pack_documents,
    read_documents,
    split_stream,
)
from textdiffusion.tasks.base import (
    Task,
    TaskData,
    TaskRequest,
    ValidationSet,
    ensure_tokenizer,
    load_documents,
)
from textdiffusion.tasks.lm.blanks import BlankStream
from textdiffusion.tasks.lm.generate import GenerationOutput, GenerationPipeline
from textdiffusion.tasks.lm.infill import InfillOutput, InfillPipeline

logger = logging.getLogger(__name__)


class LMTask(Task):
    name = "generate"
    trains = "language models"
    config_class = LMConfig
    pipeline = GenerationPipeline
    processes = ("masked", "uniform", "gaussian")
    blocks = True

    def prepare(self, request: TaskRequest) -> TaskData:
        """Tokenize and pack the training text into one stream; --valid, or its tail, for validation. With
        --lm.blank-rate, a share of the training windows gets variable-length blanks (blanks.py)."""
        data = request.data
        documents = load_documents(data)
        tokenizer = ensure_tokenizer(documents, request)
        stream = pack_documents(tokenizer.encode_batch(documents), eos_id=tokenizer.eos_id)
        if data.valid:
            valid_docs = list(read_documents(data.valid, jsonl_field=data.jsonl_field))
            valid = pack_documents(tokenizer.encode_batch(valid_docs), eos_id=tokenizer.eos_id)
            train = stream
        else:
            train, valid = split_stream(
                stream, valid_fraction=data.valid_fraction, seq_len=request.seq_len or 2
            )
        logger.info("%d training tokens, %d validation tokens", len(train), len(valid))
        windows = chunk_stream(valid, request.seq_len)[: request.eval_batches * request.batch_size]
        chars = len(tokenizer.decode(windows.reshape(-1).tolist())) if len(windows) else 0
        config = request.config or LMConfig()
        stream = BatchStream(train, seq_len=request.seq_len, seed=request.seed, **request.placement)
        if config.blank_rate > 0:
            if request.model.block_size:
                raise DataError("--blank-rate trains whole-context models, not --block-size ones")
            stream = BlankStream(
                stream,
                tokenizer=tokenizer,
                blank_rate=config.blank_rate,
                max_blank=config.max_blank,
                mask_blanks=config.mask_blanks,
            )
        return TaskData(
            tokenizer=tokenizer,
            config=config,
            train=stream,
            valid=ValidationSet(chars=chars, windows=windows),
        )


TASK = LMTask()

__all__ = [
    "TASK",
    "BlankStream",
    "GenerationOutput",
    "GenerationPipeline",
    "InfillOutput",
    "InfillPipeline",
    "LMTask",
]
