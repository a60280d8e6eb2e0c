"""PNG plots of a particle simulation: MSD against theory, a few 3-D trajectories, the density profile.

matplotlib is imported inside each function and drawn through its object API on the Agg canvas, so
importing this module is free and no global pyplot state or display is touched.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from textdiffusion.physics.container import Box, boltzmann_marginal
from textdiffusion.physics.simulation import ParticleAnalysis, ParticleSimulation


def _figure(size: tuple[float, float]):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=110)
    FigureCanvasAgg(fig)
    return fig


def plot_msd(path: Path, *, sim: ParticleSimulation, analysis: ParticleAnalysis) -> Path:
    """MSD against lag time (log-log): ensemble curves, short-lag fit points, theory lines, plateau.

    Theory: 6·D·t (true positions) and 6·D·t + 6σ² (observed, Michalet 2010), capped in the container
    by the long-time plateau.

    Args:
        path: output PNG.
        sim: the simulation; analysis: its `analyse_simulation` result.

    Returns:
        path.
    """
    fig = _figure((6.4, 4.6))
    ax = fig.add_subplot()
    t = (sim.msd_steps.double() * sim.dt).numpy()
    ax.loglog(t, sim.msd_true.numpy(), ".", ms=4, label="ensemble MSD, true positions")
    ax.loglog(t, sim.msd_observed.numpy(), "x", ms=4, label="ensemble MSD, observed")
    d = analysis.diffusion
    fit_label = "short-lag MSD away from walls (fit)"
    ax.loglog(d.lag_times.numpy(), d.msd.numpy(), "o", mfc="none", label=fit_label)
    grid = np.geomspace(t[0], t[-1], 200)
    ax.loglog(grid, 6 * sim.diffusion * grid, "k-", lw=1, label="theory 6Dt (free space)")
    if sim.noise > 0:
        ax.loglog(
            grid, 6 * sim.diffusion * grid + 6 * sim.noise**2, "k--", lw=1, label="theory 6Dt + 6σ²"
        )
    if math.isfinite(analysis.msd_plateau_theory):
        ax.axhline(analysis.msd_plateau_theory, color="gray", ls=":", label="plateau (theory)")
    ax.set_xlabel("lag time τ")
    ax.set_ylabel("MSD(τ)")
    ax.set_title(
        f"D: true {sim.diffusion:.4g}, estimated {d.diffusion:.4g}, naive {d.naive_diffusion:.4g}"
    )
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    return path


def plot_trajectories(
    path: Path, *, sim: ParticleSimulation, count: int = 5, max_frames: int = 400
) -> Path:
    """The recorded true trajectories of the first `count` particles in 3-D, inside the container outline.

    Args:
        path: output PNG.
        sim: the simulation.
        count: how many trajectories.
        max_frames: draw at most this many recorded frames (the start of the run), for legibility.

    Returns:
        path.
    """
    fig = _figure((5.6, 5.2))
    ax = fig.add_subplot(projection="3d")
    lo, hi = sim.container.bounds
    if isinstance(sim.container, Box):
        for a in (lo, hi):
            for b in (lo, hi):
                ax.plot([lo, hi], [a, a], [b, b], color="gray", lw=0.5)
                ax.plot([a, a], [lo, hi], [b, b], color="gray", lw=0.5)
                ax.plot([a, a], [b, b], [lo, hi], color="gray", lw=0.5)
    else:
        c, r = sim.container.center, sim.container.radius
        s = np.linspace(0, 2 * math.pi, 100)
        for plane in range(3):
            circle = [np.full_like(s, c[i]) for i in range(3)]
            circle[(plane + 1) % 3] = c[(plane + 1) % 3] + r * np.cos(s)
            circle[(plane + 2) % 3] = c[(plane + 2) % 3] + r * np.sin(s)
            ax.plot(*circle, color="gray", lw=0.5)
    frames = sim.true_record[:max_frames].numpy()  # (F, P, 3)
    for i in range(min(count, frames.shape[1])):
        ax.plot(frames[:, i, 0], frames[:, i, 1], frames[:, i, 2], lw=0.6)
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_zlim(lo, hi)
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_zlabel("z")
    last = int(sim.record_steps[frames.shape[0] - 1])
    ax.set_title(f"{min(count, frames.shape[1])} trajectories, steps 0–{last}")
    fig.tight_layout()
    fig.savefig(path)
    return path


def plot_density(path: Path, *, sim: ParticleSimulation, analysis: ParticleAnalysis) -> Path:
    """Histogram of the final z positions against the Boltzmann marginal along z.

    Args:
        path: output PNG.
        sim: the simulation; analysis: its `analyse_simulation` result.

    Returns:
        path.
    """
    fig = _figure((6.0, 4.2))
    ax = fig.add_subplot()
    lo, hi = sim.container.bounds
    fit = analysis.density
    edges = fit.edges.numpy()
    widths = edges[1:] - edges[:-1]
    height = fit.observed.double().numpy() / (float(fit.observed.sum()) * widths)
    ax.bar(edges[:-1], height, width=widths, align="edge", alpha=0.5, label="final z (true)")
    u = torch.linspace(lo, hi, 400, dtype=torch.float64)
    p = boltzmann_marginal(
        u, axis=2, container=sim.container, potential=sim.potential, temperature=sim.temperature
    )
    p = p / torch.trapezoid(p, u)
    ax.plot(u.numpy(), p.numpy(), "k-", label="Boltzmann marginal (theory)")
    ax.set_xlabel("z")
    ax.set_ylabel("density")
    ax.set_title(f"χ² = {fit.statistic:.1f} on {fit.dof} dof, p = {fit.pvalue:.3g}")
    ax.legend(fontsize=8, loc="lower center")
    fig.tight_layout()
    fig.savefig(path)
    return path
