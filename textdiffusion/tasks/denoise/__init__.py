"""Denoising (spelling and grammar correction): clean sentences are corrupted on the fly (corruption.py,
confusions.py) into (noisy, clean) pairs (pairs.py); the pipeline (pipeline.py) corrects text, guided by a word
lexicon (lexicon.py); metrics.py scores correctors on real misspellings and JFLEG."""

from __future__ import annotations

import logging

from textdiffusion.config import DenoiseConfig
from textdiffusion.data import DataError, read_documents
from textdiffusion.evaluation.overlap import chrf
from textdiffusion.tasks.base import (
    SEQ2SEQ_SAMPLING,
    Task,
    TaskData,
    TaskRequest,
    ensure_tokenizer,
    load_documents,
    validation_batches,
)
from textdiffusion.tasks.denoise.corruption import CorruptionConfig, Corruptor
from textdiffusion.tasks.denoise.lexicon import Lexicon, recase
from textdiffusion.tasks.denoise.metrics import gleu, word_accuracy
from textdiffusion.tasks.denoise.pairs import (
    CorruptionPairStream,
    read_word_counts,
    sentences_from_text,
)
from textdiffusion.tasks.denoise.pipeline import DenoiseOutput, DenoisePipeline

logger = logging.getLogger(__name__)


def corruption_stream(
    sentences: list[str],
    config: DenoiseConfig,
    request: TaskRequest,
    *,
    tokenizer,
    word_counts: dict[str, float] | None,
    seed: int,
    workers: int = 0,
) -> CorruptionPairStream:
    """The on-the-fly (corrupted, clean) pairs of `sentences`, with the noise rates of `config`."""
    g = config.grammar_rate
    corruptor = Corruptor(
        CorruptionConfig(
            word_error_rate=config.word_error_rate,
            article_rate=g,
            agreement_rate=g,
            verb_form_rate=g,
            preposition_rate=g,
            clean_rate=config.clean_rate,
        )
    )
    return CorruptionPairStream(
        sentences,
        tokenizer=tokenizer,
        corruptor=corruptor,
        seed=seed,
        word_fraction=config.word_fraction,
        word_clean_rate=config.word_clean_rate,
        tokenized_rate=config.tokenized_rate,
        word_counts=word_counts,
        workers=workers,
        max_tokens=request.model.max_len,
        **request.placement,
    )


class DenoiseTask(Task):
    name = "denoise"
    trains = "correctors"
    config_class = DenoiseConfig
    pipeline = DenoisePipeline
    sample = SEQ2SEQ_SAMPLING
    metrics = {"chrf": chrf, "gleu": gleu, "word_accuracy": word_accuracy}
    sampling_metric = "chrf"

    def prepare(self, request: TaskRequest) -> TaskData:
        """Clean sentences of the training text (its tail, or --valid, held out), corrupted on the fly."""
        config = request.config or DenoiseConfig()
        data = request.data
        documents = load_documents(data)
        tokenizer = ensure_tokenizer(documents, request)
        cut = dict(max_chars=config.max_chars)
        sentences = [s for doc in documents for s in sentences_from_text(doc, **cut)]
        if data.valid:
            valid_docs = read_documents(data.valid, jsonl_field=data.jsonl_field)
            valid = [s for doc in valid_docs for s in sentences_from_text(doc, **cut)]
            train = sentences
        else:
            n_valid = int(len(sentences) * data.valid_fraction)
            train, valid = (
                sentences[: len(sentences) - n_valid],
                sentences[len(sentences) - n_valid :],
            )
        if not train:
            raise DataError("the training data holds no sentence of at least 8 characters")
        logger.info("%d training sentences, %d validation sentences", len(train), len(valid))
        word_counts = read_word_counts(config.words) if config.words else None
        streams = dict(tokenizer=tokenizer, word_counts=word_counts)
        stream = corruption_stream(
            train, config, request, seed=request.seed, workers=config.workers, **streams
        )
        held = (
            corruption_stream(valid, config, request, seed=request.seed + 1, **streams)
            if valid
            else None
        )
        return TaskData(
            tokenizer=tokenizer,
            config=config,
            train=stream,
            valid=validation_batches(held, tokenizer, request.eval_batches),
        )


TASK = DenoiseTask()

__all__ = [
    "TASK",
    "CorruptionConfig",
    "Corruptor",
    "DenoiseOutput",
    "DenoisePipeline",
    "DenoiseTask",
    "Lexicon",
    "recase",
]
