"""Analysis of particle trajectories: mean squared displacement and diffusion estimates.

Diffusion with static localisation error (Michalet 2010, "Mean square displacement analysis of
single-particle trajectories with localization errors: Brownian motion in an isotropic medium",
Phys. Rev. E 82, 041914, eq. (8) without motion blur): observing y = x + N(0, σ² I) in d dimensions,

    MSD(τ) = E|y(t + τ) - y(t)|² = 2·d·D·τ + 2·d·σ².

A straight-line fit over the first few lags gives D from the slope and σ² from the intercept; a line
forced through the origin (the "naive" estimate) absorbs 2dσ² into the slope and overestimates D.
Walls stop displacements, so the short-lag MSD is taken over time origins farther from every wall than
a margin (several displacement lengths, chosen from the data), where the motion is free.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from textdiffusion.physics.container import DIM, Container


def time_averaged_msd(trajectory: Tensor, lags: Sequence[int]) -> Tensor:
    """Mean of |r(t + τ) - r(t)|² over particles and all time origins t, for each lag τ (in frames).

    Args:
        trajectory: (F, P, 3) float positions of P particles over F equally spaced frames.
        lags: K lags, each in 1..F-1.

    Returns:
        (K,) float64.
    """
    out = []
    for lag in lags:
        if not 0 < lag < trajectory.shape[0]:
            raise ValueError(f"lag {lag} is outside 1..{trajectory.shape[0] - 1}")
        d = trajectory[lag:] - trajectory[:-lag]  # (F - lag, P, 3)
        out.append((d * d).sum(dim=-1).mean(dtype=torch.float64))
    return torch.stack(out)


@dataclass
class MSDTable:
    """Short-lag MSD sums, binned by the distance of the time origin to the nearest wall.

    Attributes:
        lags: (K,) int64 lags in frames (1..K).
        bin_edges: (B + 1,) float64 edges of the wall-distance bins (origins outside fall in bin 0).
        sums: (K, B) float64, sum of |r(t + τ) - r(t)|² over origins in each bin.
        counts: (K, B) int64, number of origins in each bin.
    """

    lags: Tensor
    bin_edges: Tensor
    sums: Tensor
    counts: Tensor

    def msd(self, margins: Tensor | float = 0.0) -> tuple[Tensor, Tensor]:
        """MSD per lag over origins at distance >= margin from every wall.

        Args:
            margins: a float, or (K,) float per lag; a bin counts when its lower edge is >= the margin.

        Returns:
            ((K,) float64 MSD, NaN where no origin qualifies; (K,) int64 number of origins used).
        """
        margins = torch.as_tensor(margins, dtype=torch.float64).expand(self.lags.shape)
        # (K, B); bin 0 also holds origins seen outside the container (negative distance)
        use = self.bin_edges[:-1].unsqueeze(0) >= margins.unsqueeze(1)
        n = (self.counts * use).sum(dim=1)
        total = (self.sums * use).sum(dim=1)
        return total / n.clamp_min(1).to(torch.float64) + torch.where(n > 0, 0.0, math.nan), n


class ShortLagMSD:
    """Streaming time-averaged MSD at lags 1..max_lag frames, binned by the origin's wall distance.

    Keeps only the last max_lag + 1 frames, so a run of any length costs O(max_lag · N) memory. Feed
    frames in time order with `update`; read the result with `table()`.

    Args:
        container: gives the distance to the nearest wall.
        max_lag: K >= 1.
        n_bins: wall-distance bins over [0, container.max_wall_distance].
        device: where the frames and the running sums live.
    """

    def __init__(
        self,
        *,
        container: Container,
        max_lag: int = 4,
        n_bins: int = 64,
        device: torch.device | str | None = None,
    ) -> None:
        if max_lag < 1:
            raise ValueError(f"max_lag must be >= 1, got {max_lag}")
        self.container, self.max_lag, self.n_bins = container, max_lag, n_bins
        self.bin_edges = torch.linspace(
            0.0, container.max_wall_distance, n_bins + 1, dtype=torch.float64
        )
        self.sums = torch.zeros(max_lag, n_bins, dtype=torch.float64, device=device)
        self.counts = torch.zeros(max_lag, n_bins, dtype=torch.long, device=device)
        self._frames: list[Tensor] = []  # newest last, at most max_lag + 1
        self._bins: list[Tensor] = []  # wall-distance bin of each kept frame, (N,) int64

    def update(self, r: Tensor) -> None:
        """Add the next frame: r (N, 3) float positions (copied)."""
        r = r.detach().clone()
        width = self.container.max_wall_distance / self.n_bins
        distance = self.container.distance_to_wall(r)  # (N,)
        bins = (distance / width).floor_().long().clamp_(0, self.n_bins - 1)
        self._frames.append(r)
        self._bins.append(bins)
        if len(self._frames) > self.max_lag + 1:
            self._frames.pop(0)
            self._bins.pop(0)
        for lag in range(1, len(self._frames)):
            d = r - self._frames[-1 - lag]  # (N, 3)
            sq = (d * d).sum(dim=1)  # (N,)
            origin_bins = self._bins[-1 - lag]
            self.sums[lag - 1] += torch.bincount(
                origin_bins, weights=sq.double(), minlength=self.n_bins
            )
            self.counts[lag - 1] += torch.bincount(origin_bins, minlength=self.n_bins)

    def table(self) -> MSDTable:
        return MSDTable(
            lags=torch.arange(1, self.max_lag + 1),
            bin_edges=self.bin_edges.clone(),
            sums=self.sums.cpu(),
            counts=self.counts.cpu(),
        )


@dataclass
class DiffusionEstimate:
    """Output of `estimate_diffusion`.

    Attributes:
        diffusion: D from the slope of MSD = 2dDτ + 2dσ² (localisation-error corrected).
        naive_diffusion: D from a line through the origin, MSD = 2dDτ (biased up by the noise).
        noise_std: σ = sqrt(intercept / 2d); NaN when the fitted intercept is negative.
        lag_times: (K,) float64 lags in time units.
        msd: (K,) float64 MSD at those lags, over origins beyond the margins.
        margins: (K,) float64 wall margins used per lag.
        origins: (K,) int64 number of (particle, time) origins used per lag.
    """

    diffusion: float
    naive_diffusion: float
    noise_std: float
    lag_times: Tensor
    msd: Tensor
    margins: Tensor
    origins: Tensor


def fit_msd_line(
    lag_times: Tensor, msd: Tensor, *, weights: Tensor | None = None, dim: int = DIM
) -> tuple[float, float, float]:
    """Weighted least-squares lines through MSD(τ).

    Args:
        lag_times: (K,) lags in time units, K >= 2.
        msd: (K,) mean squared displacements.
        weights: (K,) weights w_τ (inverse variances), default all 1.
        dim: space dimension d.

    Returns:
        (D, σ², D_naive): slope / 2d and intercept / 2d of MSD = a + bτ minimising Σ w (MSD - a - bτ)²,
        and the slope / 2d of the line through the origin, b0 = Σ w·τ·MSD / Σ w·τ².
    """
    t = lag_times.to(torch.float64)
    m = msd.to(torch.float64)
    w = torch.ones_like(t) if weights is None else weights.to(torch.float64)
    # Closed-form weighted normal equations (bit-reproducible, unlike a LAPACK call whose SIMD path can
    # depend on memory alignment).
    sw, st, sm = float(w.sum()), float((w * t).sum()), float((w * m).sum())
    stt, stm = float((w * t * t).sum()), float((w * t * m).sum())
    det = sw * stt - st * st
    if not det > 0:
        raise ValueError("need at least 2 distinct lags with positive weight")
    slope = (sw * stm - st * sm) / det
    intercept = (sm - slope * st) / sw
    slope0 = stm / stt
    return slope / (2 * dim), intercept / (2 * dim), slope0 / (2 * dim)


def estimate_diffusion(
    table: MSDTable, *, dt: float, margin_factor: float = 4.5, dim: int = DIM
) -> DiffusionEstimate:
    """Diffusion coefficient from short-lag MSDs, away from the walls, corrected for localisation error.

    For each lag τ the margin is `margin_factor` · sqrt(MSD_all(τ) / d), a multiple of the per-axis
    displacement length measured over all origins; origins closer to a wall than that are dropped, so a
    particle reaches a wall within the lag with probability below ~2·Φ(-margin_factor) per axis. The
    line MSD = 2dDτ + 2dσ² is fitted with weights n_τ / τ² (n_τ origins; Var MSD(τ) ∝ τ² / n_τ), and
    the naive estimate is the line through the origin with the same weights, whose slope absorbs the
    intercept: its bias is σ²·Σ(n_τ/τ) / (Σ n_τ · dt) (noting τ in frames).

    Args:
        table: `MSDTable` from `ShortLagMSD`, with frames `dt` apart.
        dt: time between frames.
        margin_factor: margin in per-axis displacement lengths.
        dim: space dimension d.

    Returns:
        `DiffusionEstimate` (fit of MSD = 2dDτ + 2dσ² per Michalet 2010).
    """
    if table.lags.numel() < 2:
        raise ValueError("need at least 2 lags to separate D from the localisation error")
    pilot, _ = table.msd(0.0)
    margins = margin_factor * (pilot / dim).sqrt()
    msd, origins = table.msd(margins)
    if bool((origins == 0).any()):
        raise ValueError(
            "no time origin is far enough from the walls; use a bigger container or fewer lags"
        )
    lag_times = table.lags.to(torch.float64) * dt
    weights = origins.to(torch.float64) / table.lags.to(torch.float64) ** 2
    d, sigma2, d_naive = fit_msd_line(lag_times, msd, weights=weights, dim=dim)
    return DiffusionEstimate(
        diffusion=d,
        naive_diffusion=d_naive,
        noise_std=math.sqrt(sigma2) if sigma2 >= 0 else math.nan,
        lag_times=lag_times,
        msd=msd,
        margins=margins,
        origins=origins,
    )


def metropolis_short_time_diffusion(
    *, diffusion: float, dt: float, gravity: float = 0.0, temperature: float = 1.0, dim: int = DIM
) -> float:
    """Short-time diffusivity E|Δ|² / (2·d·dt) of one Metropolis step in a uniform force, away from walls.

    A proposal Δ = s·ξ (s = sqrt(2·D·dt)) is accepted with a = min(1, exp(-gravity·s·ξ_z / T)); a
    rejection also cancels the x and y parts, so E|Δ|² = s²·((d - 1)·E[a] + E[ξ_z²·a]). With no force
    this is D; under gravity it is smaller by O(gravity·s / T) — the time-discretisation error of the
    Metropolis-adjusted random walk, which vanishes as dt -> 0. Computed by quadrature over ξ_z.

    Args:
        diffusion, dt: D and the step time.
        gravity: force along -z (k_B = 1); temperature: T.
        dim: space dimension d.

    Returns:
        The one-step diffusivity, in the units of D.
    """
    s = math.sqrt(2 * diffusion * dt)
    xi = torch.linspace(-12.0, 12.0, 48_001, dtype=torch.float64)
    density = torch.exp(-0.5 * xi**2) / math.sqrt(2 * math.pi)
    accept = torch.exp(-gravity * s * xi / temperature).clamp(max=1.0)
    mean_a = float(torch.trapezoid(density * accept, xi))
    mean_z2a = float(torch.trapezoid(density * xi**2 * accept, xi))
    return s**2 * ((dim - 1) * mean_a + mean_z2a) / (2 * dim * dt)
