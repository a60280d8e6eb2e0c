"""MSD, the diffusion estimators, the chi-square machinery and the plateau, on simulations with known D.

Standard errors used below (from the calibration described in each test, not from these seeds): with
N particles over S steps, the lag-1 MSD of free steps is a mean of χ²_3-distributed terms, SE =
MSD·sqrt(2/3)/sqrt(origins); the weighted 4-lag fit has a relative SE of about 0.8% at N = 2000,
S = 400 in a unit box with D = 1e-3 (away-from-wall origins), shrinking as 1/sqrt(N·S).
"""

from __future__ import annotations

import math

import pytest
import torch

from textdiffusion.physics.analysis import (
    MSDTable,
    ShortLagMSD,
    estimate_diffusion,
    fit_msd_line,
    metropolis_short_time_diffusion,
    time_averaged_msd,
)
from textdiffusion.physics.container import Box, Potential, Sphere
from textdiffusion.physics.simulation import (
    analyse_simulation,
    log_spaced_steps,
    observe,
    simulate_particles,
)
from textdiffusion.physics.stationary import (
    bin_probabilities,
    chi_square_sf,
    chi_square_test,
    density_goodness_of_fit,
    msd_plateau_theory,
    stationary_moments,
)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_time_averaged_msd_matches_loop():
    traj = torch.randn(30, 7, 3, generator=_gen(0), dtype=torch.float64).cumsum(0)  # (F, P, 3)
    got = time_averaged_msd(traj, [1, 3, 29])
    for k, lag in enumerate([1, 3, 29]):
        terms = [
            float(((traj[t + lag, p] - traj[t, p]) ** 2).sum())
            for t in range(30 - lag)
            for p in range(7)
        ]
        assert got[k].item() == pytest.approx(sum(terms) / len(terms), rel=1e-12)
    with pytest.raises(ValueError, match="lag"):
        time_averaged_msd(traj, [30])


def test_streaming_table_equals_batch_msd():
    box = Box(10.0)
    traj = (
        5 + 0.3 * torch.randn(50, 20, 3, generator=_gen(1), dtype=torch.float64).cumsum(0)
    ).clamp(0, 10)
    acc = ShortLagMSD(container=box, max_lag=3, n_bins=8)
    for frame in traj:
        acc.update(frame)
    table = acc.table()
    msd, origins = table.msd(0.0)
    torch.testing.assert_close(msd, time_averaged_msd(traj, [1, 2, 3]))
    assert origins.tolist() == [49 * 20, 48 * 20, 47 * 20]
    # a margin keeps only origins at least that far from every wall
    dist = box.distance_to_wall(traj[:-1])  # (F-1, P) origins of lag 1
    edges = table.bin_edges
    margin = float(edges[3])
    keep = dist >= margin
    d = ((traj[1:] - traj[:-1]) ** 2).sum(-1)
    assert table.msd(margin)[0][0].item() == pytest.approx(float(d[keep].mean()), rel=1e-12)


def test_fit_recovers_line_and_naive_absorbs_the_intercept():
    t = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64)
    d_coef, sigma2 = 2e-3, 1e-4
    msd = 6 * d_coef * t + 6 * sigma2
    d, s2, naive = fit_msd_line(t, msd, weights=torch.tensor([4.0, 2.0, 1.0, 0.5]))
    assert d == pytest.approx(d_coef, rel=1e-10) and s2 == pytest.approx(sigma2, rel=1e-8)
    w = torch.tensor([4.0, 2.0, 1.0, 0.5], dtype=torch.float64)
    assert naive == pytest.approx(
        d_coef + sigma2 * float((w * t).sum() / (w * t * t).sum()), rel=1e-10
    )


def test_chi_square_sf_known_values():
    assert chi_square_sf(3.0, 2) == pytest.approx(math.exp(-1.5), rel=1e-12)  # dof 2: e^{-x/2}
    assert chi_square_sf(1.0, 1) == pytest.approx(math.erfc(math.sqrt(0.5)), rel=1e-10)
    # dof 4: e^{-x/2} (1 + x/2)
    assert chi_square_sf(7.0, 4) == pytest.approx(math.exp(-3.5) * 4.5, rel=1e-12)


def test_chi_square_test_is_calibrated_and_merges_sparse_bins():
    # Under the null the p-value is uniform: about 5% of 400 tests fall below 0.05 (binomial SE 1.1%).
    g = _gen(2)
    edges = torch.linspace(0, 1, 11)
    probs = torch.full((10,), 0.1)
    pvalues = torch.tensor(
        [chi_square_test(torch.rand(500, generator=g), edges, probs).pvalue for _ in range(400)]
    )
    assert abs(float((pvalues < 0.05).double().mean()) - 0.05) < 4 * math.sqrt(0.05 * 0.95 / 400)
    fit = chi_square_test(torch.rand(40, generator=g), edges, probs)  # 4 expected per bin -> merged
    assert float(fit.expected.min()) >= 5 and fit.dof == fit.observed.numel() - 1 < 9
    assert int(fit.observed.sum()) == 40


def test_bin_probabilities_of_exponential():
    edges = torch.tensor([0.0, 0.5, 1.0, 2.0], dtype=torch.float64)
    p = bin_probabilities(edges, lambda u: torch.exp(-u))
    exact = [1 - math.exp(-0.5), math.exp(-0.5) - math.exp(-1), math.exp(-1) - math.exp(-2)]
    exact = torch.tensor(exact, dtype=torch.float64) / (1 - math.exp(-2))
    torch.testing.assert_close(p, exact, rtol=1e-12, atol=0)


def test_stationary_moments_closed_forms():
    mean, var = stationary_moments(container=Box(2.0))
    torch.testing.assert_close(mean, torch.ones(3, dtype=torch.float64))
    torch.testing.assert_close(var, torch.full((3,), 4 / 12, dtype=torch.float64))
    mean, var = stationary_moments(container=Sphere(1.0))  # uniform ball: Var = R²/5 per axis
    torch.testing.assert_close(var, torch.full((3,), 0.2, dtype=torch.float64), rtol=1e-6, atol=0)
    box = Box(1.0)
    _, var = stationary_moments(
        container=box, potential=Potential(trap=400.0, center=box.center), temperature=2.0
    )
    torch.testing.assert_close(
        var, torch.full((3,), 2.0 / 400, dtype=torch.float64), rtol=1e-6, atol=0
    )


def test_observe_adds_independent_noise_of_given_size():
    x = torch.zeros(100_000, 3)
    y = observe(x, noise=0.02, generator=_gen(3))
    assert torch.equal(x, torch.zeros(100_000, 3))
    var = float(y.double().var())
    assert abs(var - 4e-4) < 4 * 4e-4 * math.sqrt(2 / y.numel())
    assert torch.equal(observe(x, noise=0.0, generator=None), x)
    assert log_spaced_steps(1000, 20)[0] == 1 and log_spaced_steps(1000, 20)[-1] == 1000


def test_estimated_diffusion_within_3_percent():
    # N = 4000 for 500 steps: the estimator's relative SE is ~0.5%, so 3% is ~6 SE; also within 4 SE of
    # the truth. The acceptance rate is ~0.9 because of the walls, yet the estimate of the input D holds
    # because only origins far from the walls enter.
    box, d_coef = Box(1.0), 1e-3
    sim = simulate_particles(
        4000, 500, container=box, diffusion=d_coef, dt=1.0, generator=_gen(4), noise=0.002
    )
    result = analyse_simulation(sim)
    assert abs(result.diffusion.diffusion / d_coef - 1) < 0.03
    assert abs(result.diffusion.diffusion / d_coef - 1) < 4 * 0.008 * math.sqrt(
        2000 * 400 / (4000 * 500)
    )
    assert abs(result.diffusion_from_true.diffusion / d_coef - 1) < 0.03
    assert 0.88 < sim.acceptance_rate < 0.91
    # a naive whole-box fit would be biased low by the walls (they stop ~10% of moves)
    all_origins, _ = sim.short_lag_true.msd(0.0)
    assert float(all_origins[0]) / (6 * d_coef) < 0.9


def test_noise_corrected_estimator_is_unbiased_and_naive_is_not():
    # σ = 0.02 against a step of 0.045: the intercept 6σ² is 40% of MSD(1). Over 6 independent runs the
    # corrected mean is within 4 SE of D, while the naive estimate sits at its predicted bias
    # σ²·Σ(n_τ/τ)/Σn_τ (here ~+25%), tens of SE away from D.
    d_coef, sigma, runs = 1e-3, 0.02, 6
    corrected, naive, predicted = [], [], []
    for seed in range(runs):
        sim = simulate_particles(
            2000, 300, container=Box(1.0), diffusion=d_coef, dt=1.0, generator=_gen(10 + seed), noise=sigma,
            record_particles=0,
        )  # fmt: skip
        est = analyse_simulation(sim).diffusion
        corrected.append(est.diffusion)
        naive.append(est.naive_diffusion)
        n, lags = est.origins.double(), est.lag_times
        predicted.append(d_coef + sigma**2 * float((n / lags).sum() / n.sum()))
        assert est.noise_std == pytest.approx(sigma, rel=0.15)
    c, nv = torch.tensor(corrected), torch.tensor(naive)
    se_c, se_n = float(c.std()) / math.sqrt(runs), float(nv.std()) / math.sqrt(runs)
    assert abs(float(c.mean()) - d_coef) < 4 * se_c
    assert abs(float(c.mean()) / d_coef - 1) < 0.03
    assert abs(float(nv.mean()) - sum(predicted) / runs) < 4 * se_n
    assert float(nv.mean()) - d_coef > 20 * se_n and float(nv.mean()) / d_coef - 1 > 0.1


def test_gravity_slows_the_metropolis_step_by_the_predicted_amount():
    # In a uniform force the one-step MSD away from walls is exactly s²·(2·E[a] + E[ξ_z²·a]),
    # a = min(1, e^{-g·s·ξ_z/T}): 6.4% below 6·D·dt for g = 3, s = 0.045. Lag-1 SE here ≈ 0.2%.
    box, d_coef = Box(1.0), 1e-3
    assert metropolis_short_time_diffusion(diffusion=d_coef, dt=1.0) == pytest.approx(
        d_coef, rel=1e-9
    )
    chain_d = metropolis_short_time_diffusion(diffusion=d_coef, dt=1.0, gravity=3.0)
    assert 0.05 < 1 - chain_d / d_coef < 0.08
    pot = Potential(gravity=3.0, center=box.center)
    sim = simulate_particles(
        5000,
        300,
        container=box,
        diffusion=d_coef,
        dt=1.0,
        generator=_gen(40),
        potential=pot,
        record_particles=0,
    )
    est = analyse_simulation(sim).diffusion_from_true
    se = math.sqrt(2 / 3) / math.sqrt(float(est.origins[0]))
    assert abs(float(est.msd[0]) / (6 * chain_d) - 1) < 4 * se
    assert abs(float(est.msd[0]) / (6 * d_coef) - 1) > 10 * se


def test_estimator_refuses_a_box_too_small_for_the_lags():
    table = MSDTable(
        lags=torch.arange(1, 3),
        bin_edges=torch.linspace(0, 0.5, 5, dtype=torch.float64),
        sums=torch.tensor([[1.0, 0.0, 0.0, 0.0], [2.0, 0.0, 0.0, 0.0]], dtype=torch.float64),
        counts=torch.tensor([[10, 0, 0, 0], [10, 0, 0, 0]]),
    )
    with pytest.raises(ValueError, match="far enough"):
        estimate_diffusion(table, dt=1.0)


@pytest.mark.parametrize("gravity", [0.0, 4.0])
def test_msd_plateau_of_a_bounded_box(gravity):
    # L = 0.3 with D = 1e-3: relaxation time L²/(π²D) ≈ 9 steps, so after 400 steps x(t) is independent
    # of x(0). Uniform start and box: plateau L²/2; per-particle |x - x0|² has SD ≈ 0.34·L², SE / sqrt(N).
    box, n = Box(0.3), 6000
    pot = Potential(gravity=gravity, center=box.center) if gravity else None
    sim = simulate_particles(
        n, 400, container=box, diffusion=1e-3, dt=1.0, generator=_gen(30), potential=pot
    )
    theory = msd_plateau_theory(sim.x0, container=box, potential=pot)
    if not gravity:
        assert theory == pytest.approx(0.3**2 / 2, rel=0.02)  # empirical x0 moments
    assert abs(float(sim.msd_true[-1]) - theory) < 4 * 0.4 * 0.3**2 / math.sqrt(n)
    assert density_goodness_of_fit(sim.x, container=box, potential=pot).pvalue > 1e-3
    # this box is too small for short-lag D estimation away from the walls, and says so
    with pytest.raises(ValueError, match="far enough"):
        analyse_simulation(sim)


def test_plateau_theory_uses_the_start_distribution():
    box = Box(1.0)
    x0 = torch.full((10, 3), 0.5)  # all at the centre: E|x - x0|² = 3·Var = 3/12
    assert msd_plateau_theory(x0, container=box) == pytest.approx(0.25, rel=1e-6)
