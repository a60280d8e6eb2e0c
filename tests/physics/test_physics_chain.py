"""The Metropolis–Hastings particle chain: reproducibility, a reference loop, free diffusion, stationary laws.

Statistical tolerances come from the sampling theory of each quantity (binomial, chi-square, Gaussian
moments) at fixed seeds; they are not tuned to the seeds.
"""

from __future__ import annotations

import math

import pytest
import torch

from textdiffusion.physics.container import Box, Potential, Sphere
from textdiffusion.physics.mcmc import RANDOM_BLOCK_NUMBERS, proposal_std, run_chain
from textdiffusion.physics.stationary import density_goodness_of_fit


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_same_seed_same_trajectory_and_prefetch_changes_nothing():
    box = Box(1.0)
    pot = Potential(gravity=1.5, trap=2.0, center=box.center)
    x0 = box.sample_uniform(300, generator=_gen(0))
    kw = dict(container=box, diffusion=2e-3, dt=1.0, potential=pot)
    seen: list[torch.Tensor] = []
    a = run_chain(
        x0, 600, generator=_gen(7), callback=lambda s, x, acc: seen.append(x.clone()), **kw
    )
    b = run_chain(x0, 600, generator=_gen(7), **kw)
    c = run_chain(x0, 600, generator=_gen(7), prefetch=True, **kw)  # several random blocks
    d = run_chain(x0, 600, generator=_gen(8), **kw)
    assert torch.equal(a.x, b.x) and torch.equal(a.x, c.x) and torch.equal(a.accepted, c.accepted)
    assert torch.equal(seen[-1], a.x) and len(seen) == 600
    assert not torch.equal(a.x, d.x)
    assert torch.equal(x0, box.sample_uniform(300, generator=_gen(0)))  # the start was not modified


def _reference_chain(x0, steps, *, container, std, potential, temperature, generator):
    """Per-particle, per-step loop with the chain's random numbers (same block order)."""
    m = x0.shape[0]
    uniform = potential is not None
    block = max(1, min(steps, RANDOM_BLOCK_NUMBERS // ((3 + uniform) * m)))
    x = x0.clone()
    for start in range(0, steps, block):
        size = min(block, steps - start)
        xi = torch.empty(size, 3, m, dtype=x0.dtype).normal_(generator=generator)
        u = torch.empty(size, m, dtype=x0.dtype).uniform_(generator=generator) if uniform else None
        for j in range(size):
            for i in range(m):
                prop = x[i] + std * xi[j, :, i]
                if not bool(container.contains(prop)):
                    continue
                if uniform:
                    delta = float(potential.energy(prop) - potential.energy(x[i]))
                    if not math.log(float(u[j, i])) * temperature + delta <= 0:
                        continue
                x[i] = prop
    return x


@pytest.mark.parametrize("container", [Box(1.0), Sphere(0.5)])
def test_chain_matches_reference_loop(container):
    pot = Potential(gravity=2.0, trap=8.0, center=container.center)
    x0 = container.sample_uniform(40, generator=_gen(1), dtype=torch.float64)
    kw = dict(container=container, potential=pot, temperature=0.7)
    got = run_chain(x0, 30, diffusion=5e-3, dt=1.0, generator=_gen(2), **kw)
    ref = _reference_chain(
        x0, 30, std=proposal_std(diffusion=5e-3, dt=1.0), generator=_gen(2), **kw
    )
    torch.testing.assert_close(got.x, ref, rtol=0, atol=1e-12)
    assert 0.3 < got.acceptance_rate < 0.95  # the walls and the potential both rejected moves


def test_acceptance_rate_matches_wall_theory():
    # One step from a uniform start: each axis stays inside with p = 1 - 2s / (L·sqrt(2π)) (exact up to
    # e^{-L²/2s²}), axes independent, so acceptance ~ Binomial(N, p³) / N.
    box, n = Box(1.0), 200_000
    s = proposal_std(diffusion=1e-3, dt=1.0)
    res = run_chain(
        box.sample_uniform(n, generator=_gen(3)),
        1,
        container=box,
        diffusion=1e-3,
        dt=1.0,
        generator=_gen(4),
    )
    p = (1 - 2 * s / math.sqrt(2 * math.pi)) ** 3
    assert abs(res.acceptance_rate - p) < 4 * math.sqrt(p * (1 - p) / n)


def test_free_space_msd_is_2dDt():
    # Far from every wall the chain is a Gaussian random walk: MSD(t) = 2·d·D·t, and |Δ|²/(2Dt) ~ χ²_3.
    box, n, d_coef = Box(100.0), 4000, 2e-3
    x0 = torch.full((n, 3), 50.0)
    msd: dict[int, float] = {}

    def record(step, x, accepted):
        if step in (1, 10, 100):
            msd[step] = float(((x - x0) ** 2).sum(-1).mean(dtype=torch.float64))

    res = run_chain(
        x0, 100, container=box, diffusion=d_coef, dt=0.5, generator=_gen(5), callback=record
    )
    assert res.acceptance_rate == 1.0
    for step, value in msd.items():
        theory = 6 * d_coef * step * 0.5
        assert abs(value - theory) < 4 * theory * math.sqrt(2 / 3) / math.sqrt(
            n
        )  # SE of a χ²_3 mean


def test_start_outside_or_bad_shape_is_rejected():
    box = Box(1.0)
    with pytest.raises(ValueError, match="outside"):
        run_chain(
            torch.full((3, 3), 1.5), 1, container=box, diffusion=1.0, dt=1.0, generator=_gen(0)
        )
    with pytest.raises(ValueError, match="shape"):
        run_chain(torch.zeros(4, 2), 1, container=box, diffusion=1.0, dt=1.0, generator=_gen(0))
    with pytest.raises(ValueError, match="diffusion"):
        run_chain(torch.zeros(4, 3), 1, container=box, diffusion=0.0, dt=1.0, generator=_gen(0))


def _equilibrate(container, *, n, steps, diffusion, potential=None, temperature=1.0, seed=0):
    x0 = container.sample_uniform(n, generator=_gen(seed))
    return run_chain(
        x0, steps, container=container, diffusion=diffusion, dt=1.0, generator=_gen(seed + 1),
        potential=potential, temperature=temperature,
    ).x  # fmt: skip


def test_stationary_density_barometric_profile():
    # Relaxation rate D·(π²/L² + (g/2T)²) ≈ 0.05 per step: 400 steps leave e^{-20} of the start.
    box = Box(1.0)
    pot = Potential(gravity=3.0, center=box.center)
    x = _equilibrate(box, n=20_000, steps=400, diffusion=4e-3, potential=pot, temperature=1.0)
    assert density_goodness_of_fit(x, container=box, potential=pot, axis=2).pvalue > 1e-3
    assert density_goodness_of_fit(x, container=box, potential=pot, axis=0).pvalue > 1e-3
    # the test has power: the same sample is far from the uniform law and from the wrong temperature
    assert density_goodness_of_fit(x, container=box, axis=2).pvalue < 1e-6
    assert (
        density_goodness_of_fit(x, container=box, potential=pot, temperature=1.3, axis=2).pvalue
        < 1e-6
    )


def test_stationary_density_flat_box_stays_uniform():
    box = Box(2.0)
    x = _equilibrate(box, n=20_000, steps=200, diffusion=5e-3)
    for axis in range(3):
        assert density_goodness_of_fit(x, container=box, axis=axis).pvalue > 1e-3


@pytest.mark.parametrize("axis", [0, 2])
def test_stationary_density_sphere_gravity_and_trap(axis):
    sphere = Sphere(0.5)
    pot = Potential(gravity=2.0, trap=6.0, center=sphere.center)
    x = _equilibrate(
        sphere, n=20_000, steps=300, diffusion=4e-3, potential=pot, temperature=0.8, seed=10
    )
    assert bool(sphere.contains(x).all())
    fit = density_goodness_of_fit(x, container=sphere, potential=pot, temperature=0.8, axis=axis)
    assert fit.pvalue > 1e-3
    assert density_goodness_of_fit(x, container=sphere, axis=axis).pvalue < 1e-6


def test_harmonic_trap_recovers_gaussian_moments():
    # Walls at 10 standard deviations: the target is N(c, T/k) per axis. SE of the mean σ/√n, of the
    # variance σ²·sqrt(2/(n-1)).
    box, n, k, temperature = Box(1.0), 20_000, 400.0, 1.0
    pot = Potential(trap=k, center=box.center)
    x = _equilibrate(
        box, n=n, steps=100, diffusion=1e-3, potential=pot, temperature=temperature, seed=20
    )
    var = temperature / k
    x = x.double()
    assert (x.mean(0) - 0.5).abs().max() < 4 * math.sqrt(var / n)
    assert (x.var(0) - var).abs().max() < 4 * var * math.sqrt(2 / (n - 1))
