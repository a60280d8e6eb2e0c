"""Stratified Monte Carlo for the likelihood bounds: draws moved into strata, and the variance of their mean."""

from __future__ import annotations

import torch


def stratified(u: torch.Tensor) -> torch.Tensor:
    """U[0, 1) draws (N, S) moved into strata: column j into [j / S, (j + 1) / S)."""
    samples = u.shape[1]
    return (torch.arange(samples, dtype=torch.float64)[None] + u) / samples


def collapsed_strata(estimates: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and variance of the mean of stratified estimates (N, S), column j from stratum j.

    Collapsed strata (Cochran 1977, 5A.12): neighbouring strata j, j+1 are treated as one stratum with two draws, so
    the squared difference of each pair estimates their two variances (conservatively)."""
    samples = estimates.shape[1]
    if samples < 2:
        return estimates.mean(dim=1), torch.zeros(estimates.shape[0], dtype=torch.float64)
    even = samples - samples % 2
    pairs = estimates[:, 0:even:2] - estimates[:, 1:even:2]  # (N, S/2)
    return estimates.mean(dim=1), pairs.pow(2).sum(dim=1) / samples**2 * (samples / even)
