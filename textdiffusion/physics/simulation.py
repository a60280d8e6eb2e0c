"""A whole particle experiment: start, chain, noisy measurement, streaming statistics, and their analysis.

`simulate_particles` runs the Metropolis–Hastings chain of `mcmc` and, after every step, observes all
particles with Gaussian localisation noise (y = x + σ·ε, kept apart from the true positions x). It does
not store the full (steps × N × 3) trajectory: it keeps
  - the true and observed positions of the first `record_particles` particles every `record_every`
    steps (for plots and files),
  - the ensemble MSD E|x(t) - x(0)|² (true) and E|y(t) - y(0)|² (observed) over all N particles at
    about `msd_points` log-spaced steps (the full curve, up to the plateau of a bounded container),
  - streaming short-lag MSDs (lags 1..`max_lag` steps, every time origin, all particles) binned by the
    origin's distance to the wall, from which `analyse_simulation` estimates D away from the walls.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from textdiffusion.physics.analysis import (
    DiffusionEstimate,
    MSDTable,
    ShortLagMSD,
    estimate_diffusion,
    metropolis_short_time_diffusion,
)
from textdiffusion.physics.container import Container, Potential
from textdiffusion.physics.hard_spheres import place_without_overlap
from textdiffusion.physics.mcmc import run_chain
from textdiffusion.physics.stationary import DensityFit, density_goodness_of_fit, msd_plateau_theory


def observe(x: Tensor, *, noise: float, generator: torch.Generator | None) -> Tensor:
    """Measured positions y = x + σ·ε, ε ~ N(0, I), independent per particle, axis and frame.

    Args:
        x: (..., 3) float true positions.
        noise: σ >= 0 (0 returns a copy of x and draws nothing).
        generator: source of ε (needed when σ > 0).

    Returns:
        (..., 3) tensor like x.
    """
    if noise == 0:
        return x.clone()
    eps = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
    return eps.mul_(noise).add_(x)


def log_spaced_steps(steps: int, points: int) -> Tensor:
    """About `points` distinct integer steps in 1..steps, log-spaced (int64, increasing)."""
    if steps < 1:
        return torch.zeros(0, dtype=torch.long)
    grid = torch.logspace(0, math.log10(steps), max(points, 2), dtype=torch.float64)
    return torch.unique(grid.round().long().clamp(1, steps))


@dataclass
class ParticleSimulation:
    """Output of `simulate_particles`: the setup, the kept records and the streaming statistics.

    Attributes:
        container, potential, temperature, diffusion, dt, noise, hard_sphere_radius: the setup.
        x0: (N, 3) start positions; x: (N, 3) final true positions.
        record_steps: (F,) int64 steps of the records (0 = start).
        true_record, observed_record: (F, P, 3) positions of the first P particles.
        msd_steps: (T,) int64 log-spaced steps; msd_true, msd_observed: (T,) float64 ensemble MSDs.
        short_lag_true, short_lag_observed: streaming short-lag `MSDTable`s.
        acceptance_rate: accepted / proposed moves.
        elapsed_s: wall time of the run.
    """

    container: Container
    potential: Potential | None
    temperature: float
    diffusion: float
    dt: float
    noise: float
    hard_sphere_radius: float
    x0: Tensor
    x: Tensor
    record_steps: Tensor
    true_record: Tensor
    observed_record: Tensor
    msd_steps: Tensor
    msd_true: Tensor
    msd_observed: Tensor
    short_lag_true: MSDTable
    short_lag_observed: MSDTable
    acceptance_rate: float
    elapsed_s: float


def simulate_particles(
    n: int,
    steps: int,
    *,
    container: Container,
    diffusion: float,
    dt: float,
    generator: torch.Generator,
    potential: Potential | None = None,
    temperature: float = 1.0,
    noise: float = 0.0,
    hard_sphere_radius: float = 0.0,
    record_particles: int = 256,
    record_every: int = 1,
    max_lag: int = 4,
    msd_points: int = 48,
    dtype: torch.dtype = torch.float32,
    progress: Callable[[int], None] | None = None,
) -> ParticleSimulation:
    """Simulate N particles for `steps` steps, measure them with noise, and keep streaming statistics.

    Draw order from `generator`: start positions (uniform; redrawn where hard spheres overlap), one
    seed for the measurement generator, then the chain. The true trajectory therefore does not depend
    on `noise`, and the same seed gives the same trajectory.

    Args:
        n: particles N >= 1.
        steps: chain steps >= 1.
        container: `Box` or `Sphere`.
        diffusion: D > 0; dt: time per step > 0.
        generator: source of all randomness, on the device to simulate on.
        potential: external `Potential` or None.
        temperature: T > 0.
        noise: localisation error σ >= 0 of each measured coordinate.
        hard_sphere_radius: a >= 0 (0: no exclusion).
        record_particles: P, how many particles' positions to keep (the first P).
        record_every: keep positions every this many steps.
        max_lag: largest short lag (steps) of the streaming MSD.
        msd_points: about how many log-spaced steps of the ensemble MSD to keep.
        dtype: float dtype of positions.
        progress: called with the step number after every step.

    Returns:
        `ParticleSimulation`.
    """
    if n < 1 or steps < 1 or record_every < 1 or record_particles < 0:
        raise ValueError(
            f"need n, steps, record_every >= 1 and record_particles >= 0; got {n}, {steps}, "
            f"{record_every}, {record_particles}"
        )
    if noise < 0:
        raise ValueError(f"noise must be >= 0, got {noise}")
    device = generator.device
    start = time.perf_counter()
    x0 = place_without_overlap(
        n,
        container=container,
        radius=hard_sphere_radius,
        generator=generator,
        dtype=dtype,
        device=device,
    )
    seed = int(torch.randint(2**62, (1,), generator=generator, device=device).item())
    measurement = torch.Generator(device=device).manual_seed(seed)
    p = min(record_particles, n)
    record_steps = torch.arange(0, steps + 1, record_every)
    true_record = torch.empty(record_steps.numel(), p, 3, dtype=dtype, device=device)
    observed_record = torch.empty_like(true_record)
    msd_steps = log_spaced_steps(steps, msd_points)
    msd_index = {int(s): i for i, s in enumerate(msd_steps)}
    msd_true: list[Tensor] = []
    msd_observed: list[Tensor] = []
    lag_true = ShortLagMSD(container=container, max_lag=max_lag, device=device)
    lag_observed = ShortLagMSD(container=container, max_lag=max_lag, device=device)
    y0 = observe(x0, noise=noise, generator=measurement)

    def keep(step: int, x: Tensor, y: Tensor) -> None:
        lag_true.update(x)
        lag_observed.update(y)
        if step % record_every == 0:
            true_record[step // record_every] = x[:p]
            observed_record[step // record_every] = y[:p]
        if step in msd_index:
            msd_true.append(((x - x0) ** 2).sum(dim=-1).mean(dtype=torch.float64))
            msd_observed.append(((y - y0) ** 2).sum(dim=-1).mean(dtype=torch.float64))
        if progress is not None:
            progress(step)

    def on_step(step: int, x: Tensor, accepted: Tensor) -> None:
        keep(step, x, observe(x, noise=noise, generator=measurement))

    keep(0, x0, y0)
    result = run_chain(
        x0,
        steps,
        container=container,
        diffusion=diffusion,
        dt=dt,
        generator=generator,
        potential=potential,
        temperature=temperature,
        hard_sphere_radius=hard_sphere_radius,
        callback=on_step,
    )
    return ParticleSimulation(
        container=container,
        potential=potential,
        temperature=temperature,
        diffusion=diffusion,
        dt=dt,
        noise=noise,
        hard_sphere_radius=hard_sphere_radius,
        x0=x0.cpu(),
        x=result.x.cpu(),
        record_steps=record_steps,
        true_record=true_record.cpu(),
        observed_record=observed_record.cpu(),
        msd_steps=msd_steps,
        msd_true=torch.stack(msd_true).cpu() if msd_true else torch.zeros(0, dtype=torch.float64),
        msd_observed=torch.stack(msd_observed).cpu()
        if msd_observed
        else torch.zeros(0, dtype=torch.float64),
        short_lag_true=lag_true.table(),
        short_lag_observed=lag_observed.table(),
        acceptance_rate=result.acceptance_rate,
        elapsed_s=time.perf_counter() - start,
    )


@dataclass
class ParticleAnalysis:
    """Output of `analyse_simulation`.

    Attributes:
        diffusion: D estimated from the observed (noisy) positions (`estimate_diffusion`).
        diffusion_from_true: the same estimator on the true positions (no localisation error).
        density: chi-square test of the final true snapshot along z against the Boltzmann marginal.
        msd_plateau: ensemble MSD at the last step (the plateau once steps ≫ L²/D);
            msd_plateau_theory: its t -> ∞ limit.
    """

    diffusion: DiffusionEstimate
    diffusion_from_true: DiffusionEstimate
    density: DensityFit
    msd_plateau: float
    msd_plateau_theory: float

    def summary(self, sim: ParticleSimulation) -> dict[str, Any]:
        """JSON-ready numbers: estimated vs true D, acceptance, density fit, plateau."""
        d = self.diffusion
        pot = sim.potential
        chain_d = math.nan  # position-dependent in a trap; otherwise exact (see the function)
        if pot is None or pot.trap == 0:
            chain_d = metropolis_short_time_diffusion(
                diffusion=sim.diffusion,
                dt=sim.dt,
                gravity=pot.gravity if pot is not None else 0.0,
                temperature=sim.temperature,
            )
        return {
            "true_diffusion": sim.diffusion,
            "chain_short_time_diffusion": chain_d,
            "estimated_diffusion": d.diffusion,
            "naive_diffusion": d.naive_diffusion,
            "relative_error": d.diffusion / sim.diffusion - 1,
            "diffusion_from_true_positions": self.diffusion_from_true.diffusion,
            "true_noise": sim.noise,
            "estimated_noise": d.noise_std,
            "acceptance_rate": sim.acceptance_rate,
            "density_axis": "z",
            "density_chi2": self.density.statistic,
            "density_dof": self.density.dof,
            "density_pvalue": self.density.pvalue,
            "msd_plateau": self.msd_plateau,
            "msd_plateau_theory": self.msd_plateau_theory,
            "fit_lag_times": d.lag_times.tolist(),
            "fit_msd": d.msd.tolist(),
            "wall_margins": d.margins.tolist(),
            "fit_origins": d.origins.tolist(),
        }


def analyse_simulation(
    sim: ParticleSimulation, *, margin_factor: float = 4.5, density_bins: int | None = None
) -> ParticleAnalysis:
    """Estimate D (noise-corrected and naive), test the stationary density, and compare the plateau.

    Args:
        sim: a `ParticleSimulation`.
        margin_factor: wall margin in displacement lengths (`estimate_diffusion`).
        density_bins: bins of the z histogram; default min(40, max(4, N // 25)).

    Returns:
        `ParticleAnalysis`. The chi-square p-value assumes independent particles, so it is only
        approximate with hard-sphere exclusion.
    """
    n = sim.x.shape[0]
    bins = density_bins or min(40, max(4, n // 25))
    return ParticleAnalysis(
        diffusion=estimate_diffusion(
            sim.short_lag_observed, dt=sim.dt, margin_factor=margin_factor
        ),
        diffusion_from_true=estimate_diffusion(
            sim.short_lag_true, dt=sim.dt, margin_factor=margin_factor
        ),
        density=density_goodness_of_fit(
            sim.x,
            container=sim.container,
            potential=sim.potential,
            temperature=sim.temperature,
            bins=bins,
        ),
        msd_plateau=float(sim.msd_true[-1]) if sim.msd_true.numel() else math.nan,
        msd_plateau_theory=msd_plateau_theory(
            sim.x0, container=sim.container, potential=sim.potential, temperature=sim.temperature
        ),
    )
