"""Image captioning: describe an image with a model trained on (image, caption) pairs
(`textdiffusion train --task caption --data captions.tsv --image-size 64`).

The image is encoded once; every refinement step of the sampler reads its features through cross-attention. The
caption is generated from all-masked positions (the model's caption length); trailing PADs end it.
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
from textdiffusion.networks import Cond
from textdiffusion.tasks.caption.images import center_crop, load_image
from textdiffusion.tasks.pipeline import DiffusionPipeline, InputError


@dataclasses.dataclass
class CaptionOutput:
    texts: list[str]
    """One caption per image, in the order given."""
    ids: torch.Tensor
    """int64 (N, length) generated ids, PADs included."""
    seconds: float
    network_calls: int


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
        seed: int | None = 0,
        callback: Callable | None = None,
        progress: Callable[[int, int], None] | None = None,
        **sampling,
    ) -> CaptionOutput:
        """Caption each image (a path, a PIL image, a list of them, or float (N, 3, S, S) pixels). `sampling`:
        steps, sampler, temperature, top_p, threshold (None: the model's saved defaults)."""
        if batch_size < 1:
            raise InputError(f"batch_size must be at least 1, got {batch_size}")
        pixels = self.pixels(images)
        generator = self.generator(seed)
        start = time.perf_counter()
        ids, calls = [], 0
        for first in range(0, len(pixels), batch_size):
            batch = pixels[first : first + batch_size]
            cond = Cond(image_features=self.model.encode_image(batch))  # once, not at every step
            out = self.sample(
                (len(batch), self.length),
                generator=generator,
                cond=cond,
                callback=callback,
                **sampling,
            )
            ids.append(out.ids.cpu())
            calls += out.network_calls
            if progress is not None:
                progress(min(first + batch_size, len(pixels)), len(pixels))
        ids = torch.cat(ids)
        pad = self.tokenizer.pad_id
        texts = []
        for row in ids.tolist():
            row = row[: row.index(pad)] if pad in row else row
            texts.append(self.tokenizer.decode(row).strip())
        return CaptionOutput(
            texts=texts, ids=ids, seconds=time.perf_counter() - start, network_calls=calls
        )
