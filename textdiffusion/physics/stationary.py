"""The stationary state: chi-square goodness of fit of sampled positions to the Boltzmann density, its moments,
and the long-time MSD plateau of a bounded chain.

Pearson's test compares counts O_b in B bins with expectations E_b = n·p_b from the theoretical marginal
(`container.boltzmann_marginal`, integrated by Gauss–Legendre quadrature per bin); under the null,
Σ (O - E)² / E ~ χ²_{B-1}, with p-value Q((B - 1)/2, statistic/2) from `torch.special.gammaincc` (no scipy).
The samples must be independent: one snapshot of non-interacting particles after equilibration.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from textdiffusion.physics.container import DIM, Container, Potential, boltzmann_marginal


def chi_square_sf(statistic: float, dof: int) -> float:
    """P(χ²_dof >= statistic) = Q(dof / 2, statistic / 2), the regularised upper incomplete gamma."""
    a = torch.tensor(dof / 2, dtype=torch.float64)
    return float(torch.special.gammaincc(a, torch.tensor(statistic / 2, dtype=torch.float64)))


def _gauss_legendre(points: int) -> tuple[Tensor, Tensor]:
    nodes, weights = np.polynomial.legendre.leggauss(points)
    return torch.from_numpy(nodes), torch.from_numpy(weights)


def bin_probabilities(
    edges: Tensor, density: Callable[[Tensor], Tensor], *, points: int = 16
) -> Tensor:
    """Probability of each bin under an unnormalised density, by Gauss–Legendre quadrature per bin.

    Args:
        edges: (B + 1,) increasing float bin edges covering the density's support.
        density: maps (G,) float64 points to (G,) float64 unnormalised density values.
        points: quadrature nodes per bin.

    Returns:
        (B,) float64 probabilities summing to 1.
    """
    nodes, weights = _gauss_legendre(points)
    e = edges.to(torch.float64)
    mid, half = (e[1:] + e[:-1]) / 2, (e[1:] - e[:-1]) / 2  # (B,)
    x = mid.unsqueeze(1) + half.unsqueeze(1) * nodes  # (B, points)
    mass = (density(x.flatten()).view_as(x) * weights).sum(dim=1) * half
    return mass / mass.sum()


@dataclass
class DensityFit:
    """Pearson chi-square test of a sampled marginal against its theoretical density.

    Attributes:
        edges: (B + 1,) float64 bin edges after merging sparse bins.
        observed: (B,) int64 counts.
        expected: (B,) float64 expected counts.
        statistic: Σ (O - E)² / E.
        dof: B - 1.
        pvalue: P(χ²_dof >= statistic).
    """

    edges: Tensor
    observed: Tensor
    expected: Tensor
    statistic: float
    dof: int
    pvalue: float


def chi_square_test(
    samples: Tensor, edges: Tensor, probabilities: Tensor, *, min_expected: float = 5.0
) -> DensityFit:
    """Pearson's chi-square goodness of fit of independent samples to binned probabilities.

    Adjacent bins are merged (left to right) until each expects at least `min_expected` counts.

    Args:
        samples: (n,) float values, independent draws (e.g. one snapshot of non-interacting particles).
        edges: (B + 1,) float bin edges; samples outside are clamped into the end bins.
        probabilities: (B,) float bin probabilities summing to 1.
        min_expected: smallest expected count per bin.

    Returns:
        `DensityFit`.
    """
    e = edges.to(torch.float64)
    idx = torch.bucketize(samples.detach().to(torch.float64).cpu(), e[1:-1], right=True)
    observed = torch.bincount(idx, minlength=e.numel() - 1)
    expected = probabilities.to(torch.float64) * samples.numel()
    n_bins = expected.numel()
    keep, acc = [0], 0.0  # indices of the edges that survive the merge
    for i in range(n_bins):
        acc += float(expected[i])
        if acc >= min_expected:
            keep.append(i + 1)
            acc = 0.0
    if keep[-1] != n_bins:  # a sparse tail joins the last full group
        if len(keep) > 1:
            keep[-1] = n_bins
        else:
            keep.append(n_bins)
    cuts = torch.tensor(keep)
    obs = torch.stack([observed[a:b].sum() for a, b in zip(cuts[:-1], cuts[1:])])
    exp = torch.stack([expected[a:b].sum() for a, b in zip(cuts[:-1], cuts[1:])])
    statistic = float(((obs - exp) ** 2 / exp).sum())
    dof = obs.numel() - 1
    return DensityFit(
        e[cuts], obs, exp, statistic, dof, chi_square_sf(statistic, dof) if dof > 0 else math.nan
    )


def density_goodness_of_fit(
    x: Tensor,
    *,
    container: Container,
    potential: Potential | None = None,
    temperature: float = 1.0,
    axis: int = 2,
    bins: int = 40,
) -> DensityFit:
    """Chi-square test of one snapshot of positions against the Boltzmann marginal along `axis`.

    Args:
        x: (n, 3) float positions of independent particles.
        container, potential, temperature: the target density (see `boltzmann_marginal`).
        axis: 0, 1 or 2 (z, the gravity axis).
        bins: equal-width bins over the container's extent (merged where sparse).

    Returns:
        `DensityFit`.
    """
    lo, hi = container.bounds
    edges = torch.linspace(lo, hi, bins + 1, dtype=torch.float64)
    probs = bin_probabilities(
        edges,
        lambda u: boltzmann_marginal(
            u, axis=axis, container=container, potential=potential, temperature=temperature
        ),
    )
    return chi_square_test(x[:, axis], edges, probs)


def stationary_moments(
    *, container: Container, potential: Potential | None = None, temperature: float = 1.0
) -> tuple[Tensor, Tensor]:
    """Per-axis mean and variance of the Boltzmann density, by quadrature of its marginals.

    Returns:
        ((3,) float64 means, (3,) float64 variances).
    """
    lo, hi = container.bounds
    edges = torch.linspace(lo, hi, 257, dtype=torch.float64)
    nodes, weights = _gauss_legendre(16)
    mid, half = (edges[1:] + edges[:-1]) / 2, (edges[1:] - edges[:-1]) / 2
    u = (mid.unsqueeze(1) + half.unsqueeze(1) * nodes).flatten()  # (256·16,)
    w = (weights * half.unsqueeze(1)).flatten()
    means, variances = [], []
    for axis in range(DIM):
        p = (
            boltzmann_marginal(
                u, axis=axis, container=container, potential=potential, temperature=temperature
            )
            * w
        )
        p = p / p.sum()
        mean = (p * u).sum()
        means.append(mean)
        variances.append((p * (u - mean) ** 2).sum())
    return torch.stack(means), torch.stack(variances)


def msd_plateau_theory(
    x0: Tensor,
    *,
    container: Container,
    potential: Potential | None = None,
    temperature: float = 1.0,
) -> float:
    """Long-time limit of the ensemble MSD E|x(t) - x(0)|² of a bounded chain started at x0.

    As t -> ∞, x(t) becomes independent of x(0) and Boltzmann-distributed, so the limit is
    Σ_axes [Var_∞ + Var_0 + (mean_∞ - mean_0)²]; in a box of side L from a uniform start, L²/2.

    Args:
        x0: (n, 3) float start positions (their empirical moments are used).
        container, potential, temperature: the stationary density.

    Returns:
        The plateau in length².
    """
    mean_inf, var_inf = stationary_moments(
        container=container, potential=potential, temperature=temperature
    )
    x0 = x0.detach().to(torch.float64).cpu()
    mean0, var0 = x0.mean(dim=0), x0.var(dim=0, unbiased=False)
    return float((var_inf + var0 + (mean_inf - mean0) ** 2).sum())
