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
from textdiffusion.data.captions import load_image, read_captions
from textdiffusion.data.corruption import CorruptionConfig, Corruptor
from textdiffusion.data.pairs import (
    CorruptionPairStream,
    LengthRule,
    growth,
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


@dataclasses.dataclass
class CaptionCorpus:
    tokenizer: Tokenizer
    images: np.ndarray
    """uint8 (N, 3, S', S') every image, training and validation (see data/captions.py)."""
    train: list[tuple[int, list[int]]]
    """(image index, caption token ids) of the training captions."""
    valid: list[tuple[int, list[int]]]
    length: int
    """Caption positions: the longest training caption's tokens; shorter ones end in learnt PADs."""


def load_caption_corpus(
    data: DataConfig,
    *,
    tokenizer: Tokenizer | None,
    info: distributed.DistInfo,
    out: Path,
    max_len: int,
    image_size: int,
    length: int | None = None,
) -> CaptionCorpus:
    """The captions of the --data tables and their images; --valid tables, or the captions of the last
    --valid-fraction of the images, for validation. Captions longer than `length` (default: the longest training
    caption, at most max_len tokens) are left out and counted in the log."""
    if not data.data:
        raise DataError(
            "--task caption needs --data: caption tables (.tsv, .csv or .jsonl) with image and caption columns"
        )
    if data.hf_dataset:
        raise DataError("--task caption reads caption tables (--data), not --hf-dataset")
    pairs = read_captions(data.data, image_root=data.image_root)
    if data.valid:
        valid_pairs = read_captions(data.valid, image_root=data.image_root)
    else:  # hold out whole images, so that no validation image was seen in training
        paths = list(dict.fromkeys(path for path, _ in pairs))
        held = set(paths[len(paths) - int(len(paths) * data.valid_fraction) :])
        valid_pairs = [p for p in pairs if p[0] in held]
        pairs = [p for p in pairs if p[0] not in held]
    tokenizer = ensure_tokenizer(
        [caption for _, caption in pairs], data, tokenizer=tokenizer, info=info, out=out
    )
    paths = list(dict.fromkeys(path for path, _ in pairs + valid_pairs))
    index = {path: i for i, path in enumerate(paths)}
    logger.info("reading %d images at %d pixels", len(paths), image_size)
    images = np.stack([load_image(path, image_size) for path in paths])

    def encode(items: list[tuple[Path, str]]) -> list[tuple[int, list[int]]]:
        ids = tokenizer.encode_batch([caption for _, caption in items])
        return [(index[path], row) for (path, _), row in zip(items, ids)]

    train, valid = encode(pairs), encode(valid_pairs)
    length = length or min(max_len, max(len(ids) for _, ids in train))
    kept = [c for c in train if len(c[1]) <= length]
    kept_valid = [c for c in valid if len(c[1]) <= length]
    logger.info(
        "%d images; %d training and %d validation captions of up to %d tokens (%d and %d longer ones left out)",
        len(paths),
        len(kept),
        len(kept_valid),
        length,
        len(train) - len(kept),
        len(valid) - len(kept_valid),
    )
    if not kept:
        raise DataError(
            f"no training caption fits the model's {length} caption tokens (--max-len, or the length a resumed run "
            "started with)"
        )
    return CaptionCorpus(
        tokenizer=tokenizer, images=images, train=kept, valid=kept_valid, length=length
    )


@dataclasses.dataclass
class LabelledCorpus:
    tokenizer: Tokenizer
    labels: list[str]
    train: list[tuple[int, list[int]]]
    """(label index, token ids) of the training lines."""
    valid: list[tuple[int, list[int]]]
    length: int
    """Positions per line: the longest training line's tokens and room to grow (`growth`); learnt PADs after the
    text."""


def load_labelled_corpus(
    data: DataConfig,
    *,
    tokenizer: Tokenizer | None,
    info: distributed.DistInfo,
    out: Path,
    max_len: int,
    length: int | None = None,
) -> LabelledCorpus:
    """The lines of each --data file with that file's label (--labels); --valid files (one per label), or the last
    --valid-fraction of each file's lines, for validation. Lines longer than `length` (default: the longest training
    line and the room a rewrite may grow by, at most max_len tokens) are left out and counted in the log."""
    if len(data.data) != len(data.labels):
        raise DataError(
            f"--labels names the attribute of each --data file: {len(data.labels)} labels for "
            f"{len(data.data)} files"
        )
    if data.valid and len(data.valid) != len(data.labels):
        raise DataError(
            f"--valid needs a file per label, in the order of --labels: {len(data.valid)} files for "
            f"{len(data.labels)} labels"
        )
    if data.hf_dataset:
        raise DataError("--labels reads one file per label (--data), not --hf-dataset")

    def lines(path: str) -> list[str]:
        texts = [line.strip() for doc in read_documents([path]) for line in doc.split("\n")]
        texts = [text for text in texts if text]
        if not texts:
            raise DataError(f"{path} holds no line of text")
        return texts

    train_texts, valid_texts = [], []
    for label, path in enumerate(data.data):
        texts = lines(path)
        if data.valid:
            valid_texts += [(label, text) for text in lines(data.valid[label])]
        else:
            n_valid = int(len(texts) * data.valid_fraction)
            valid_texts += [(label, text) for text in texts[len(texts) - n_valid :]]
            texts = texts[: len(texts) - n_valid]
        train_texts += [(label, text) for text in texts]
    tokenizer = ensure_tokenizer(
        [text for _, text in train_texts], data, tokenizer=tokenizer, info=info, out=out
    )

    def encode(items: list[tuple[int, str]]) -> list[tuple[int, list[int]]]:
        ids = tokenizer.encode_batch([text for _, text in items])
        return [(label, row) for (label, _), row in zip(items, ids)]

    train, valid = encode(train_texts), encode(valid_texts)
    if length is None:
        longest = max(len(ids) for _, ids in train)
        length = min(max_len, longest + growth(longest))
    kept = [item for item in train if len(item[1]) <= length]
    kept_valid = [item for item in valid if len(item[1]) <= length]
    counts = ", ".join(
        f"{name} {sum(label == i for label, _ in kept):,}" for i, name in enumerate(data.labels)
    )
    logger.info(
        "%d training lines (%s) and %d validation lines of up to %d tokens (%d and %d longer ones left out)",
        len(kept),
        counts,
        len(kept_valid),
        length,
        len(train) - len(kept),
        len(valid) - len(kept_valid),
    )
    if not kept:
        raise DataError(f"no training line fits {length} tokens")
    return LabelledCorpus(
        tokenizer=tokenizer,
        labels=list(data.labels),
        train=kept,
        valid=kept_valid,
        length=length,
    )


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
        raise DataError(
            "--task style needs --targets: files aligned line by line with --data (or --labels, a label per "
            "--data file, for attribute transfer)"
        )
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
    """Split a batch (token windows, or a dict of seq2seq, caption or labelled-line arrays) into `micro` pieces on `device`:
    (x0, model keyword arguments) each."""
    if not isinstance(batch, dict):
        return [
            (x0.to(device, non_blocking=True), {}) for x0 in torch.from_numpy(batch).chunk(micro)
        ]
    parts = {k: torch.from_numpy(v).chunk(micro) for k, v in batch.items()}
    out = []
    for i in range(len(parts["target"])):
        piece = {k: v[i].to(device, non_blocking=True) for k, v in parts.items()}
        if "image" in piece:  # uint8 crops travel to the device; floats are made there
            cond = Cond(image=piece["image"].float() / 255)
        elif "label" in piece:
            cond = Cond(label=piece["label"])
        else:
            cond = Cond(prefix=piece["prefix"], prefix_mask=piece["prefix_mask"])
        out.append((piece["target"], {"cond": cond, "attention_mask": piece["target_mask"]}))
    return out
