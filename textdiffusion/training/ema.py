"""Exponential moving average of the weights (the weights a diffusion model is sampled and evaluated with)."""

from __future__ import annotations

import torch


class EMA:
    """shadow <- decay * shadow + (1 - decay) * param, after every optimizer step, in float32.

    The effective decay warms up as min(decay, (1 + n) / (10 + n)) so early averages are not dominated by the
    random initialisation.
    """

    def __init__(self, model: torch.nn.Module, *, decay: float) -> None:
        self.decay = decay
        self.updates = 0
        self.shadow = {
            name: p.detach().float().clone()
            for name, p in model.named_parameters()
            if p.requires_grad
        }

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        params = dict(model.named_parameters())
        shadows = list(self.shadow.values())
        current = [params[name].detach().float() for name in self.shadow]
        torch._foreach_lerp_(shadows, current, 1.0 - decay)

    def state_dict(self) -> dict:
        return {"decay": self.decay, "updates": self.updates, "shadow": self.shadow}

    def load_state_dict(self, state: dict) -> None:
        self.decay, self.updates = state["decay"], state["updates"]
        for name, tensor in state["shadow"].items():
            self.shadow[name].copy_(tensor)
