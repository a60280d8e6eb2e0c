"""Batches of the training streams on their way to the device: token windows, or dicts of seq2seq, caption or
labelled-line arrays whose conditioning becomes a `Cond`."""

from __future__ import annotations

import torch

from textdiffusion.networks import Cond


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
        if (
            "blanks" in piece
        ):  # language-model windows with blanks masked whole (tasks/lm/blanks.py)
            out.append((piece["target"], {"blanks": piece["blanks"]}))
            continue
        if "image" in piece:  # uint8 crops travel to the device; floats are made there
            cond = Cond(image=piece["image"].float() / 255)
        elif "label" in piece:
            cond = Cond(label=piece["label"])
        else:
            cond = Cond(prefix=piece["prefix"], prefix_mask=piece["prefix_mask"])
        kwargs = {"cond": cond, "attention_mask": piece["target_mask"]}
        if "prior" in piece:  # a source-start model's canvas of the source (data/edits.py)
            kwargs["prior"] = piece["prior"]
        out.append((piece["target"], kwargs))
    return out
