"""Style transfer, learnt from aligned pairs (--data sources, --targets rewrites) or from labelled texts alone
(--data a file per label, --labels their names: attribute transfer with classifier-free guidance). pairs.py holds
the length rule and the training streams; pipeline.py rewrites text."""

from __future__ import annotations

import functools
import logging

from textdiffusion.config import StyleConfig
from textdiffusion.data import DataError, read_documents, read_line_pairs
from textdiffusion.data.edits import canvas_length, edit_canvas, source_canvas
from textdiffusion.data.textform import recorded_form
from textdiffusion.evaluation.overlap import bleu, chrf
from textdiffusion.tasks.base import (
    SEQ2SEQ_SAMPLING,
    Task,
    TaskData,
    TaskRequest,
    ensure_tokenizer,
    validation_batches,
)
from textdiffusion.tasks.style.pairs import LabelStream, LengthRule, ParallelPairStream, growth
from textdiffusion.tasks.style.pipeline import StyleOutput, StylePipeline

logger = logging.getLogger(__name__)


def _lines(path: str) -> list[str]:
    texts = [line.strip() for doc in read_documents([path]) for line in doc.split("\n")]
    texts = [text for text in texts if text]
    if not texts:
        raise DataError(f"{path} holds no line of text")
    return texts


class StyleTask(Task):
    name = "style"
    trains = "rewriters"
    config_class = StyleConfig
    pipeline = StylePipeline
    sample = SEQ2SEQ_SAMPLING
    data_flags = {
        "targets": "--task style (aligned pairs)",
        "valid_targets": "--task style (aligned pairs)",
        "labels": "attribute transfer (--task style without --targets): a file per label",
    }
    metrics = {"bleu": bleu, "chrf": chrf}
    sampling_metric = "chrf"

    def prepare(self, request: TaskRequest) -> TaskData:
        data = request.data
        if data.hf_dataset:
            raise DataError(
                "--task style reads line files (--data and --targets or --labels), not --hf-dataset"
            )
        if data.labels and data.targets:
            raise DataError(
                "--labels is for attribute transfer (--task style without --targets): a file per label"
            )
        if data.labels:
            return self._attribute(request)
        return self._pairs(request)

    def _pairs(self, request: TaskRequest) -> TaskData:
        """Aligned (source, target) lines of --data and --targets; --valid/--valid-targets or the tail of the
        pairs for validation. The target length rule is fitted on the training pairs unless the run is resumed;
        pairs that do not fit it, or the model's context, are left out (and counted in the log)."""
        data, max_len = request.data, request.model.max_len
        if not data.targets:
            raise DataError(
                "--task style needs --targets: files aligned line by line with --data (or --labels, a label "
                "per --data file, for attribute transfer)"
            )
        if not data.data:
            raise DataError("--task style needs --data: the source files (one text per line)")
        if bool(data.valid) != bool(data.valid_targets):
            raise DataError("--valid and --valid-targets go together (aligned files)")
        texts = read_line_pairs(data.data, data.targets)
        if not texts:
            raise DataError(
                f"{list(data.data)} and {list(data.targets)} hold no pair of non-empty lines"
            )
        valid_texts = read_line_pairs(data.valid, data.valid_targets) if data.valid else []
        tokenizer = ensure_tokenizer([text for pair in texts for text in pair], request)

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
        gap = request.config.gap if isinstance(request.config, StyleConfig) else 0
        if gap:
            return self._canvases(request, tokenizer, train, valid, texts, gap)
        if request.resumed:
            length = LengthRule(ratio=request.config.ratio, slack=request.config.slack)
        else:
            length = LengthRule.fit(train)

        def fits(pair: tuple[list[int], list[int]]) -> bool:
            n = len(pair[0])
            return len(pair[1]) <= length(n) and n + length(n) <= max_len

        kept, kept_valid = [p for p in train if fits(p)], [p for p in valid if fits(p)]
        if not kept:
            raise DataError(
                f"no training pair fits: a target may have {length.ratio:.2f} x its source's tokens + "
                f"{length.slack}, and a source with its target {max_len} tokens (--max-len)"
            )
        logger.info(
            "%d training pairs, %d validation pairs (%d and %d left out: longer than the context or the "
            "target length rule, %.2f x source + %d)",
            len(kept),
            len(kept_valid),
            len(train) - len(kept),
            len(valid) - len(kept_valid),
            length.ratio,
            length.slack,
        )
        return self._data(
            request,
            tokenizer,
            StyleConfig(ratio=length.ratio, slack=length.slack),
            kept,
            kept_valid,
            texts,
            length=length,
        )

    def _canvases(self, request, tokenizer, train, valid, texts, gap: int) -> TaskData:
        """Source-start pairs: each target written on its source's canvas (data/edits.py); pairs whose edits do not
        fit the canvas, or whose source and canvas do not fit the context, are left out (and counted)."""
        pad, max_len = tokenizer.pad_id, request.model.max_len

        def on_canvas(pairs):
            out = []
            for source, target in pairs:
                if len(source) + canvas_length(len(source), gap) > max_len:
                    continue
                canvas = edit_canvas(source, target, gap, pad_id=pad)
                if canvas is not None:
                    out.append((source, canvas))
            return out

        kept, kept_valid = on_canvas(train), on_canvas(valid)
        if not kept:
            raise DataError(
                f"no training pair fits a canvas with --edit-gap {gap} (at most {gap} tokens inserted in one "
                f"place) and the context of {max_len} tokens"
            )
        logger.info(
            "%d training pairs, %d validation pairs on source canvases with %d insertion slots per token "
            "(%d and %d left out: edits that do not fit, or longer than the context)",
            len(kept),
            len(kept_valid),
            gap,
            len(train) - len(kept),
            len(valid) - len(kept_valid),
        )
        return self._data(
            request,
            tokenizer,
            StyleConfig(gap=gap),
            kept,
            kept_valid,
            texts,
            length=functools.partial(canvas_length, gap=gap),
            prior=functools.partial(source_canvas, gap=gap, pad_id=pad),
        )

    def _data(self, request, tokenizer, config, kept, kept_valid, texts, **layout) -> TaskData:
        fixed = dict(pad_id=tokenizer.pad_id, **layout, **request.placement)
        held = (
            ParallelPairStream(kept_valid, seed=request.seed + 1, **fixed) if kept_valid else None
        )
        return TaskData(
            tokenizer=tokenizer,
            config=config,
            train=ParallelPairStream(kept, seed=request.seed, **fixed),
            valid=validation_batches(held, tokenizer, request.eval_batches),
            text_form=recorded_form(
                [source for source, _ in texts[:20000]], [target for _, target in texts[:20000]]
            ),
        )

    def _attribute(self, request: TaskRequest) -> TaskData:
        """The lines of each --data file with that file's label (--labels); --valid files (one per label), or the
        last --valid-fraction of each file's lines, for validation. Lines longer than the line length (default:
        the longest training line and the room a rewrite may grow by, at most the context) are left out and
        counted in the log."""
        data, max_len = request.data, request.model.max_len
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
        if request.resumed and tuple(request.config.labels) != tuple(data.labels):
            raise DataError(
                f"--labels {list(data.labels)} differ from the run's {list(request.config.labels)}"
            )
        train_texts, valid_texts = [], []
        for label, path in enumerate(data.data):
            texts = _lines(path)
            if data.valid:
                valid_texts += [(label, text) for text in _lines(data.valid[label])]
            else:
                n_valid = int(len(texts) * data.valid_fraction)
                valid_texts += [(label, text) for text in texts[len(texts) - n_valid :]]
                texts = texts[: len(texts) - n_valid]
            train_texts += [(label, text) for text in texts]
        tokenizer = ensure_tokenizer([text for _, text in train_texts], request)

        def encode(items: list[tuple[int, str]]) -> list[tuple[int, list[int]]]:
            ids = tokenizer.encode_batch([text for _, text in items])
            return [(label, row) for (label, _), row in zip(items, ids)]

        train, valid = encode(train_texts), encode(valid_texts)
        if request.resumed:
            length = request.config.length
        else:
            longest = max(len(ids) for _, ids in train)
            length = min(max_len, longest + growth(longest))
        kept = [item for item in train if len(item[1]) <= length]
        kept_valid = [item for item in valid if len(item[1]) <= length]
        counts = ", ".join(
            f"{name} {sum(label == i for label, _ in kept):,}" for i, name in enumerate(data.labels)
        )
        logger.info(
            "%d training lines (%s) and %d validation lines of up to %d tokens (%d and %d longer ones left "
            "out)",
            len(kept),
            counts,
            len(kept_valid),
            length,
            len(train) - len(kept),
            len(valid) - len(kept_valid),
        )
        if not kept:
            raise DataError(f"no training line fits {length} tokens")
        n_labels = len(data.labels)
        fixed = dict(pad_id=tokenizer.pad_id, length=length, n_labels=n_labels, **request.placement)
        held = LabelStream(kept_valid, seed=request.seed + 1, **fixed) if kept_valid else None
        train_stream = LabelStream(kept, seed=request.seed, dropout=data.label_dropout, **fixed)
        return TaskData(
            tokenizer=tokenizer,
            config=StyleConfig(labels=tuple(data.labels), length=length),
            train=train_stream,
            valid=validation_batches(held, tokenizer, request.eval_batches),
            n_labels=n_labels,
            text_form=recorded_form(text for _, text in train_texts[:20000]),
        )


TASK = StyleTask()

__all__ = ["TASK", "LengthRule", "StyleOutput", "StylePipeline", "StyleTask"]
