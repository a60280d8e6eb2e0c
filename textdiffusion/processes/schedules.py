"""Noise schedules alpha(t): the probability that a token is still clean at time t (alpha(0) = 1, alpha(1) = 0).

The continuous-time ELBO of masked diffusion (MDLM, Sahoo et al. 2024, eq. 10) weighs the cross-entropy at time t by
w(t) = -alpha'(t) / (1 - alpha(t)); in continuous time the bound itself does not depend on the schedule (Kingma et
al. 2021), only the variance of its Monte Carlo estimate does.
"""

from __future__ import annotations

import math

import torch


class Schedule:
    """alpha(t) and the ELBO weight -alpha'(t) / (1 - alpha(t)), for t a float tensor in [0, 1]."""

    name = "base"

    def alpha(self, t: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def weight(self, t: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class LogLinearSchedule(Schedule):
    """alpha(t) = 1 - t, so sigma(t) = -log(1 - t) (MDLM's log-linear noise); w(t) = 1 / t."""

    name = "loglinear"

    def alpha(self, t: torch.Tensor) -> torch.Tensor:
        return 1.0 - t

    def weight(self, t: torch.Tensor) -> torch.Tensor:
        return 1.0 / t


class CosineSchedule(Schedule):
    """alpha(t) = cos(pi t / 2) (MaskGIT's cosine masking ratio); w(t) = (pi/2) sin(pi t/2) / (1 - cos(pi t/2))."""

    name = "cosine"

    def alpha(self, t: torch.Tensor) -> torch.Tensor:
        return torch.where(t >= 1.0, torch.zeros_like(t), torch.cos(0.5 * math.pi * t))

    def weight(self, t: torch.Tensor) -> torch.Tensor:
        half = 0.25 * math.pi * t
        # 1 - cos(2x) = 2 sin^2(x) and sin(2x) = 2 sin x cos x, so w = (pi/2) cos(x) / sin(x) without cancellation.
        return 0.5 * math.pi * torch.cos(half) / torch.sin(half)


class LinearSchedule(Schedule):
    """log alpha linear in t, rescaled to end exactly at 0: alpha(t) = (e^{-s t} - e^{-s}) / (1 - e^{-s}).

    With rate s the noise level sigma grows linearly as in D3PM/SEDD's geometric schedules; w(t) = s / (e^{s t} - 1).
    """

    name = "linear"

    def __init__(self, rate: float = 10.0) -> None:
        self.rate = rate

    def alpha(self, t: torch.Tensor) -> torch.Tensor:
        end = math.exp(-self.rate)
        return ((torch.exp(-self.rate * t) - end) / (1.0 - end)).clamp(min=0.0)

    def weight(self, t: torch.Tensor) -> torch.Tensor:
        return self.rate / torch.expm1(self.rate * t)


SCHEDULES: dict[str, type[Schedule]] = {
    "loglinear": LogLinearSchedule,
    "cosine": CosineSchedule,
    "linear": LinearSchedule,
}


def build_schedule(name: str) -> Schedule:
    try:
        return SCHEDULES[name]()
    except KeyError:
        raise ValueError(f"unknown schedule {name!r}; choose from {sorted(SCHEDULES)}") from None
