"""Image captioning: describe an image with a model trained on (image, caption) pairs
(`textdiffusion train --task caption --data captions.tsv --image-size 64`).

The image is encoded once; every refinement step of the sampler reads its features through cross-attention. The
caption is generated from all-masked positions (the model's caption length); trailing PADs end it. With
`candidates` N > 1, N captions are sampled per image and the consensus is returned: the one with the highest mean
chrF against the other N - 1 (minimum Bayes risk decoding; evaluation/overlap.py).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from textdiffusion.data.corpus import DataError
from textdiffusion.evaluation.overlap import consensus
from textdiffusion.networks import Cond
from textdiffusion.tasks.caption.images import center_crop, load_image
from textdiffusion.tasks.pipeline import DiffusionPipeline, InputError


@dataclasses.dataclass
class CaptionOutput:
    texts: list[str]
    """One caption per image, in the order given."""
    ids: torch.Tensor
    """int64 (N, length) generated ids of the returned captions, PADs included."""
    seconds: float
    network_calls: int
    candidates: list[list[str]] = dataclasses.field(default_factory=list)
    """Every caption sampled for each image (one each unless `candidates` > 1)."""


class CaptionPipeline(DiffusionPipeline):
    """`pipe(["photo.jpg"])` -> CaptionOutput with one caption per image."""

    task = "caption"

    def __init__(self, pretrained) -> None:
        super().__init__(pretrained)
        if self.config.task != self.task:
            raise InputError(
                f"{pretrained.path} is a {self.config.task!r} model; captioning needs one trained with "
                "`textdiffusion train --task caption`"
            )
        self.length = self.config.task_config.length
        self.image_size = self.model.config.image_size

    def _allowed_specials(self) -> set[int]:
        return {self.tokenizer.pad_id}  # trailing PADs end the caption

    def pixels(self, images: Any) -> torch.Tensor:
        """float (N, 3, S, S) in [0, 1] on the model's device, from image paths or PIL images (one or a list),
        or from such a tensor (checked)."""
        S = self.image_size
        if isinstance(images, torch.Tensor):
            if images.dim() != 4 or tuple(images.shape[1:]) != (3, S, S):
                raise InputError(
                    f"image tensors must be float (N, 3, {S}, {S}) in [0, 1], got {tuple(images.shape)}"
                )
            return images.float().to(self.device)
        if isinstance(images, (str, Path)) or not isinstance(images, Sequence):
            images = [images]
        if not images:
            raise InputError("no image given")
        try:
            arrays = np.stack([center_crop(load_image(image, S), S) for image in images])
        except DataError as exc:
            raise InputError(str(exc)) from None
        return torch.from_numpy(arrays).to(self.device).float() / 255

    @torch.no_grad()
    def __call__(
        self,
        images: Any,
        *,
        batch_size: int = 16,
        candidates: int | None = None,
        seed: int | None = 0,
        callback: Callable | None = None,
        progress: Callable[[int, int], None] | None = None,
        **sampling,
    ) -> CaptionOutput:
        """Caption each image (a path, a PIL image, a list of them, or float (N, 3, S, S) pixels): `candidates`
        captions sampled (None: the model's saved number), the consensus returned. `sampling`: steps, sampler,
        temperature, top_p, threshold (None: the model's saved defaults). `batch_size` counts sampled captions (at
        least one image's `candidates` per batch)."""
        if batch_size < 1:
            raise InputError(f"batch_size must be at least 1, got {batch_size}")
        n = self.config.task_config.candidates if candidates is None else candidates
        if n < 1:
            raise InputError(f"candidates must be at least 1, got {n}")
        pixels = self.pixels(images)
        per_batch = max(1, batch_size // n)  # images per batch: their n candidates sampled together
        generator = self.generator(seed)
        start = time.perf_counter()
        ids, calls = [], 0
        for first in range(0, len(pixels), per_batch):
            # each image encoded once (not at every step, nor for every candidate)
            features = self.model.encode_image(pixels[first : first + per_batch])
            out = self.sample(
                (len(features) * n, self.length),
                generator=generator,
                cond=Cond(image_features=features.repeat_interleave(n, dim=0)),
                callback=callback,
                **sampling,
            )
            ids.append(out.ids.cpu())
            calls += out.network_calls
            if progress is not None:
                progress(min(first + per_batch, len(pixels)), len(pixels))
        ids = torch.cat(ids)
        pad = self.tokenizer.pad_id
        sampled = []
        for row in ids.tolist():
            row = row[: row.index(pad)] if pad in row else row
            sampled.append(self.tokenizer.decode(row).strip())
        groups = [sampled[i : i + n] for i in range(0, len(sampled), n)]
        picks = [i * n + consensus(group) for i, group in enumerate(groups)]
        return CaptionOutput(
            texts=[sampled[i] for i in picks],
            ids=ids[picks],
            candidates=groups,
            seconds=time.perf_counter() - start,
            network_calls=calls,
        )
