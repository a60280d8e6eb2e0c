"""From the data flags to training data: read documents, train or reuse a tokenizer, then either pack token
streams (language modelling) or cut clean sentences (for on-the-fly noisy -> clean pairs)."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np
import torch

from textdiffusion.config import DataConfig, DenoiseConfig
from textdiffusion.data import (
    DataError,
    Tokenizer,
    pack_documents,
    read_documents,
    read_hf_dataset,
    read_line_pairs,
    split_stream,
)
from textdiffusion.data.corruption import CorruptionConfig, Corruptor
from textdiffusion.data.pairs import (
    CorruptionPairStream,
    LengthRule,
    read_word_counts,
    sentences_from_text,
)
from textdiffusion.networks import Cond
from textdiffusion.training import distributed

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class Corpus:
    tokenizer: Tokenizer
    train: np.ndarray
    """int32 (N,) training token stream."""
    valid: np.ndarray
    """int32 (M,) validation token stream."""


@dataclasses.dataclass
class PairCorpus:
    tokenizer: Tokenizer
    train: list[str]
    """Clean training sentences."""
    valid: list[str]
    """Clean validation sentences."""
    word_counts: dict[str, float] | None = None
    """The single words to draw (`--words`), or None for the words of the sentences."""


@dataclasses.dataclass
class ParallelCorpus:
    tokenizer: Tokenizer
    train: list[tuple[list[int], list[int]]]
    """(source, target) token ids of the training pairs."""
    valid: list[tuple[list[int], list[int]]]
    length: LengthRule
    """Target positions per source length."""


def load_parallel_corpus(
    data: DataConfig,
    *,
    tokenizer: Tokenizer | None,
    info: distributed.DistInfo,
    out: Path,
    max_len: int,
    length: LengthRule | None = None,
) -> ParallelCorpus:
    """Aligned (source, target) lines of --data and --targets (style transfer); --valid/--valid-targets or the
    tail of the pairs for validation. The target length rule is fitted on the training pairs unless given; pairs
    that do not fit it, or the model's context, are left out (and counted in the log)."""
    if not data.targets:
        raise DataError("--task style needs --targets: files aligned line by line with --data")
    if not data.data:
        raise DataError("--task style needs --data: the source files (one text per line)")
    if data.hf_dataset:
        raise DataError("--task style reads aligned files (--data and --targets), not --hf-dataset")
    if bool(data.valid) != bool(data.valid_targets):
        raise DataError("--valid and --valid-targets go together (aligned files)")
    texts = read_line_pairs(data.data, data.targets)
    if not texts:
        raise DataError(
            f"{list(data.data)} and {list(data.targets)} hold no pair of non-empty lines"
        )
    valid_texts = read_line_pairs(data.valid, data.valid_targets) if data.valid else []
    tokenizer = ensure_tokenizer(
        [text for pair in texts for text in pair], data, tokenizer=tokenizer, info=info, out=out
    )

    def encode(pairs: list[tuple[str, str]]) -> list[tuple[list[int], list[int]]]:
        sources = tokenizer.encode_batch([s for s, _ in pairs])
        targets = tokenizer.encode_batch([t for _, t in pairs])
        return list(zip(sources, targets))

    train = encode(texts)
    if valid_texts:
        valid = encode(valid_texts)
    else:
        n_valid = int(len(train) * data.valid_fraction)
        train, valid = train[: len(train) - n_valid], train[len(train) - n_valid :]
    length = length or LengthRule.fit(train)

    def fits(pair: tuple[list[int], list[int]]) -> bool:
        n = len(pair[0])
        return len(pair[1]) <= length(n) and n + length(n) <= max_len

    kept, kept_valid = [p for p in train if fits(p)], [p for p in valid if fits(p)]
    if not kept:
        raise DataError(
            f"no training pair fits: a target may have {length.ratio:.2f} x its source's tokens + {length.slack}, "
            f"and a source with its target {max_len} tokens (--max-len)"
        )
    logger.info(
        "%d training pairs, %d validation pairs (%d and %d left out: longer than the context or the target "
        "length rule, %.2f x source + %d)",
        len(kept),
        len(kept_valid),
        len(train) - len(kept),
        len(valid) - len(kept_valid),
        length.ratio,
        length.slack,
    )
    return ParallelCorpus(tokenizer=tokenizer, train=kept, valid=kept_valid, length=length)


def load_documents(data: DataConfig) -> list[str]:
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


def ensure_tokenizer(
    documents: list[str],
    data: DataConfig,
    *,
    tokenizer: Tokenizer | None,
    info: distributed.DistInfo,
    out: Path,
) -> Tokenizer:
    """`tokenizer`, or a new one trained on `documents` by rank 0 and shared with the others through OUT."""
    if tokenizer is not None:
        return tokenizer
    path = out / "tokenizer.json"
    if info.is_main:
        out.mkdir(parents=True, exist_ok=True)
        if data.tokenizer == "char":
            tokenizer = Tokenizer.train_char(documents)
        else:
            tokenizer = Tokenizer.train_bpe(documents, vocab_size=data.bpe_vocab_size)
        tmp = path.with_name(".tokenizer.json.tmp")
        tokenizer.save(tmp)
        tmp.replace(path)
        logger.info("trained a %s tokenizer with %d tokens", data.tokenizer, tokenizer.vocab_size)
    distributed.barrier()
    return tokenizer if tokenizer is not None else Tokenizer.load(path)


def load_corpus(
    data: DataConfig,
    *,
    tokenizer: Tokenizer | None,
    info: distributed.DistInfo,
    out: Path,
    seq_len: int | None = None,
) -> Corpus:
    """Tokenize and pack the training (and validation) text."""
    documents = load_documents(data)
    tokenizer = ensure_tokenizer(documents, data, tokenizer=tokenizer, info=info, out=out)
    stream = pack_documents(tokenizer.encode_batch(documents), eos_id=tokenizer.eos_id)
    if data.valid:
        valid_docs = list(read_documents(data.valid, jsonl_field=data.jsonl_field))
        valid = pack_documents(tokenizer.encode_batch(valid_docs), eos_id=tokenizer.eos_id)
        train = stream
    else:
        train, valid = split_stream(
            stream, valid_fraction=data.valid_fraction, seq_len=seq_len or 2
        )
    logger.info("%d training tokens, %d validation tokens", len(train), len(valid))
    return Corpus(tokenizer=tokenizer, train=train, valid=valid)


def load_pair_corpus(
    data: DataConfig,
    *,
    tokenizer: Tokenizer | None,
    info: distributed.DistInfo,
    out: Path,
    max_chars: int,
    words: str | None = None,
) -> PairCorpus:
    """Clean sentences to corrupt on the fly; the tail (or --valid) is held out for validation."""
    documents = load_documents(data)
    tokenizer = ensure_tokenizer(documents, data, tokenizer=tokenizer, info=info, out=out)
    sentences = [s for doc in documents for s in sentences_from_text(doc, max_chars=max_chars)]
    if data.valid:
        valid_docs = read_documents(data.valid, jsonl_field=data.jsonl_field)
        valid = [s for doc in valid_docs for s in sentences_from_text(doc, max_chars=max_chars)]
        train = sentences
    else:
        n_valid = int(len(sentences) * data.valid_fraction)
        train, valid = sentences[: len(sentences) - n_valid], sentences[len(sentences) - n_valid :]
    if not train:
        raise DataError("the training data holds no sentence of at least 8 characters")
    logger.info("%d training sentences, %d validation sentences", len(train), len(valid))
    word_counts = read_word_counts(words) if words else None
    return PairCorpus(tokenizer=tokenizer, train=train, valid=valid, word_counts=word_counts)


def pair_stream(
    sentences: list[str],
    denoise: DenoiseConfig,
    *,
    tokenizer: Tokenizer,
    seed: int,
    workers: int = 0,
    **kwargs,
) -> CorruptionPairStream:
    """The on-the-fly (corrupted, clean) pairs of the denoising task, with the noise rates of `denoise`."""
    g = denoise.grammar_rate
    corruptor = Corruptor(
        CorruptionConfig(
            word_error_rate=denoise.word_error_rate,
            article_rate=g,
            agreement_rate=g,
            verb_form_rate=g,
            preposition_rate=g,
            clean_rate=denoise.clean_rate,
        )
    )
    return CorruptionPairStream(
        sentences,
        tokenizer=tokenizer,
        corruptor=corruptor,
        seed=seed,
        word_fraction=denoise.word_fraction,
        word_clean_rate=denoise.word_clean_rate,
        tokenized_rate=denoise.tokenized_rate,
        workers=workers,
        **kwargs,
    )


def micro_batches(batch, micro: int, device: torch.device) -> list[tuple[torch.Tensor, dict]]:
    """Split a batch (token windows, or a dict of seq2seq arrays) into `micro` pieces on `device`:
    (x0, model keyword arguments) each."""
    if not isinstance(batch, dict):
        return [
            (x0.to(device, non_blocking=True), {}) for x0 in torch.from_numpy(batch).chunk(micro)
        ]
    parts = {k: torch.from_numpy(v).chunk(micro) for k, v in batch.items()}
    out = []
    for i in range(len(parts["target"])):
        piece = {k: v[i].to(device, non_blocking=True) for k, v in parts.items()}
        cond = Cond(prefix=piece["prefix"], prefix_mask=piece["prefix_mask"])
        out.append((piece["target"], {"cond": cond, "attention_mask": piece["target_mask"]}))
    return out
