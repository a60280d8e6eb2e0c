"""`textdiffusion particles`: Brownian particles in a closed container, sampled with Metropolis–Hastings.

Writes to --out: trajectories.npz, summary.json, config.json and (unless --no-plots) msd.png,
trajectories.png and density.png. torch, numpy and matplotlib are imported inside the function so that
`textdiffusion --help` stays fast.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Literal


@dataclasses.dataclass
class ParticlesArgs:
    """Simulate N particles diffusing in a closed container and analyse their noisy trajectories."""

    n: int = 10_000
    """Number of particles N."""
    steps: int = 2000
    """Metropolis–Hastings steps; each step is a time --dt."""
    box: float = 1.0
    """Container size: the side L of the box [0, L]^3, or the diameter of the sphere."""
    container: Literal["box", "sphere"] = "box"
    """Container shape; walls are hard (moves that leave it are rejected)."""
    diffusion: float = 1e-3
    """True diffusion coefficient D (length²/time); proposals have std sqrt(2·D·dt) per axis."""
    dt: float = 1.0
    """Time per step."""
    noise: float = 0.002
    """Localisation error σ: observed = true + N(0, σ²) per coordinate and frame."""
    gravity: float = 0.0
    """Potential gravity·z (force along -z, k_B = 1): stationary density ∝ exp(-gravity·z/T). Metropolis rejections then also slow the short-time motion by O(gravity·sqrt(2·D·dt)/T), reported as chain_short_time_diffusion."""
    trap: float = 0.0
    """Harmonic trap stiffness k about the container centre; Gaussian of variance T/k per axis."""
    temperature: float = 1.0
    """Temperature T of the Boltzmann target exp(-U/T)."""
    hard_sphere_radius: float = 0.0
    """Radius a of hard-sphere exclusion between particles (0: ideal gas). Slow for large N."""
    seed: int = 0
    """Seed of the torch.Generator; the same seed gives the same trajectory."""
    device: str = "auto"
    """Device: auto, cpu, cuda or cuda:K."""
    out: Path = Path("runs/particles")
    """Output folder for trajectories.npz, summary.json, config.json and the PNG plots."""
    record_particles: int = 256
    """Particles whose true and observed positions go into trajectories.npz (the first P). The full steps×N×3 trajectory is not stored (2000 steps × 10^4 particles × 3 floats is 240 MB): D and the MSD curve are computed on the fly from all N particles."""
    record_every: int = 1
    """Store those P particles' positions every this many steps."""
    max_lag: int = 4
    """Largest lag (in steps) of the short-lag MSD fit MSD = 6Dτ + 6σ² (Michalet 2010)."""
    plots: bool = True
    """Write msd.png, trajectories.png and density.png."""
    json: bool = False
    """Print the summary as one JSON object on stdout (and no progress bar)."""


def _validate(args: ParticlesArgs) -> None:
    from textdiffusion.cli.common import CLIError

    positive = {
        "--n": args.n,
        "--steps": args.steps,
        "--box": args.box,
        "--diffusion": args.diffusion,
    }
    positive |= {"--dt": args.dt, "--temperature": args.temperature, "--max-lag": args.max_lag}
    positive |= {"--record-every": args.record_every}
    for flag, value in positive.items():
        if not value > 0 or not math.isfinite(value):
            raise CLIError(f"{flag} must be a positive number, got {value}")
    for flag, value in {
        "--noise": args.noise,
        "--trap": args.trap,
        "--hard-sphere-radius": args.hard_sphere_radius,
        "--record-particles": args.record_particles,
    }.items():
        if not value >= 0 or not math.isfinite(value):
            raise CLIError(f"{flag} must be >= 0, got {value}")
    if not math.isfinite(args.gravity):
        raise CLIError(f"--gravity must be finite, got {args.gravity}")
    if args.max_lag >= args.steps:
        raise CLIError(f"--max-lag ({args.max_lag}) must be smaller than --steps ({args.steps})")


def _finite_or_none(value):
    """JSON has no NaN: report a missing number as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list):
        return [_finite_or_none(v) for v in value]
    return value


def particles(args: ParticlesArgs) -> None:
    """Simulate Brownian particles in a closed box with Metropolis–Hastings and estimate D from noisy tracks."""
    import json
    import time

    import numpy as np
    import torch

    from textdiffusion.cli.common import CLIError, print_config, resolve_device, save_config
    from textdiffusion.physics import (
        Potential,
        analyse_simulation,
        make_container,
        simulate_particles,
    )

    _validate(args)
    device = resolve_device(args.device)
    container = make_container(args.container, size=args.box)
    potential = None
    if args.gravity or args.trap:
        potential = Potential(gravity=args.gravity, trap=args.trap, center=container.center)
    generator = torch.Generator(device=device).manual_seed(args.seed)
    if not args.json:
        print_config(args, title="particles")
    args.out.mkdir(parents=True, exist_ok=True)
    save_config(dataclasses.asdict(args) | {"resolved_device": device}, args.out / "config.json")

    options = dict(
        container=container,
        diffusion=args.diffusion,
        dt=args.dt,
        generator=generator,
        potential=potential,
        temperature=args.temperature,
        noise=args.noise,
        hard_sphere_radius=args.hard_sphere_radius,
        record_particles=args.record_particles,
        record_every=args.record_every,
        max_lag=args.max_lag,
    )
    start = time.perf_counter()
    try:
        if args.json:
            sim = simulate_particles(args.n, args.steps, **options)
        else:
            from rich.console import Console
            from rich.progress import Progress

            with Progress(console=Console(stderr=True), transient=True) as bar:
                task = bar.add_task(f"{args.n} particles", total=args.steps)
                sim = simulate_particles(
                    args.n, args.steps, progress=lambda s: bar.update(task, completed=s), **options
                )
        analysis = analyse_simulation(sim)
    # A setup the physics cannot run (packing too dense, box too small for the lags, ...).
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    elapsed = time.perf_counter() - start

    np.savez(
        args.out / "trajectories.npz",
        record_steps=sim.record_steps.numpy(),
        record_times=(sim.record_steps.double() * args.dt).numpy(),
        true_positions=sim.true_record.numpy(),
        observed_positions=sim.observed_record.numpy(),
        start_positions=sim.x0.numpy(),
        final_positions=sim.x.numpy(),
        msd_steps=sim.msd_steps.numpy(),
        msd_true=sim.msd_true.numpy(),
        msd_observed=sim.msd_observed.numpy(),
    )
    files = ["trajectories.npz", "summary.json", "config.json"]
    if args.plots:
        from textdiffusion.physics.plots import plot_density, plot_msd, plot_trajectories

        plot_msd(args.out / "msd.png", sim=sim, analysis=analysis)
        plot_trajectories(args.out / "trajectories.png", sim=sim)
        plot_density(args.out / "density.png", sim=sim, analysis=analysis)
        files += ["msd.png", "trajectories.png", "density.png"]
    summary = {
        **analysis.summary(sim),
        "n": args.n,
        "steps": args.steps,
        "dt": args.dt,
        "container": args.container,
        "box": args.box,
        "gravity": args.gravity,
        "trap": args.trap,
        "temperature": args.temperature,
        "hard_sphere_radius": args.hard_sphere_radius,
        "seed": args.seed,
        "device": device,
        "elapsed_s": elapsed,
        # the whole simulation: chain, measurement and streaming statistics (bench/ times the chain alone)
        "simulation_particle_steps_per_s": args.n * args.steps / sim.elapsed_s,
        "out": str(args.out),
        "files": files,
    }
    summary = {k: _finite_or_none(v) for k, v in summary.items()}
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    if args.json:
        print(json.dumps(summary))
        return
    print(
        f"D true {args.diffusion:.5g}   estimated {_fmt(summary['estimated_diffusion'], '.5g')} "
        f"({_fmt(100 * summary['relative_error'], '+.2f')}%)   naive {_fmt(summary['naive_diffusion'], '.5g')}"
        f"   noise σ estimated {_fmt(summary['estimated_noise'], '.3g')} (true {args.noise:.3g})"
    )
    if potential is not None and args.trap == 0:
        print(
            f"short-time D of the Metropolis chain at this dt: {summary['chain_short_time_diffusion']:.5g}"
        )
    print(
        f"acceptance rate {summary['acceptance_rate']:.4f}   density chi2 "
        f"{summary['density_chi2']:.1f} on {summary['density_dof']} dof, p = {_fmt(summary['density_pvalue'], '.3g')}"
    )
    print(
        f"MSD at the last step {summary['msd_plateau']:.4g}; long-time plateau (theory) "
        f"{_fmt(summary['msd_plateau_theory'], '.4g')}"
    )
    print(f"wrote {', '.join(files)} to {args.out}  ({elapsed:.1f} s)")


def _fmt(value, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)
