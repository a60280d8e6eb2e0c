"""Image captioning: caption tables and images (images.py: reading, cropping, the augmented training stream) and
the pipeline that describes images (pipeline.py)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from textdiffusion.config import CaptionConfig
from textdiffusion.data import DataError
from textdiffusion.evaluation.overlap import bleu, chrf
from textdiffusion.tasks.base import (
    SEQ2SEQ_SAMPLING,
    Task,
    TaskData,
    TaskRequest,
    ensure_tokenizer,
    validation_batches,
)
from textdiffusion.tasks.caption.images import CaptionStream, load_image, read_captions
from textdiffusion.tasks.caption.pipeline import CaptionOutput, CaptionPipeline

logger = logging.getLogger(__name__)


class CaptionTask(Task):
    name = "caption"
    trains = "captioners"
    config_class = CaptionConfig
    pipeline = CaptionPipeline
    sample = SEQ2SEQ_SAMPLING
    data_flags = {"image_root": "--task caption"}
    reads_images = True
    metrics = {"bleu": bleu, "chrf": chrf}

    def prepare(self, request: TaskRequest) -> TaskData:
        """The captions of the --data tables and their images; --valid tables, or the captions of the last
        --valid-fraction of the images, for validation. Captions longer than the caption length (a resumed run's,
        or the longest training caption, at most the context) are left out and counted in the log."""
        data, model = request.data, request.model
        if not data.data:
            raise DataError(
                "--task caption needs --data: caption tables (.tsv, .csv or .jsonl) with image and caption "
                "columns"
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
        tokenizer = ensure_tokenizer([caption for _, caption in pairs], request)
        paths = list(dict.fromkeys(path for path, _ in pairs + valid_pairs))
        index = {path: i for i, path in enumerate(paths)}
        logger.info("reading %d images at %d pixels", len(paths), model.image_size)
        images = np.stack([load_image(path, model.image_size) for path in paths])

        def encode(items: list[tuple[Path, str]]) -> list[tuple[int, list[int]]]:
            ids = tokenizer.encode_batch([caption for _, caption in items])
            return [(index[path], row) for (path, _), row in zip(items, ids)]

        train, valid = encode(pairs), encode(valid_pairs)
        if request.resumed:
            length = request.config.length
        else:
            length = min(model.max_len, max(len(ids) for _, ids in train))
        kept = [c for c in train if len(c[1]) <= length]
        kept_valid = [c for c in valid if len(c[1]) <= length]
        logger.info(
            "%d images; %d training and %d validation captions of up to %d tokens (%d and %d longer ones "
            "left out)",
            len(paths),
            len(kept),
            len(kept_valid),
            length,
            len(train) - len(kept),
            len(valid) - len(kept_valid),
        )
        if not kept:
            raise DataError(
                f"no training caption fits the model's {length} caption tokens (--max-len, or the length a "
                "resumed run started with)"
            )
        fixed = dict(
            pad_id=tokenizer.pad_id,
            length=length,
            image_size=model.image_size,
            **request.placement,
        )
        held = (
            CaptionStream(images, kept_valid, augment=False, seed=request.seed + 1, **fixed)
            if kept_valid
            else None
        )
        return TaskData(
            tokenizer=tokenizer,
            config=CaptionConfig(length=length),
            train=CaptionStream(images, kept, augment=True, seed=request.seed, **fixed),
            valid=validation_batches(held, tokenizer, request.eval_batches),
        )


TASK = CaptionTask()

__all__ = ["TASK", "CaptionOutput", "CaptionPipeline", "CaptionTask"]
