"""Containers, potentials and the Boltzmann marginals, checked against brute-force quadrature."""

from __future__ import annotations

import math

import pytest
import torch

from textdiffusion.physics.container import (
    Box,
    Potential,
    Sphere,
    boltzmann_marginal,
    make_container,
)
from textdiffusion.physics.stationary import chi_square_test


def test_make_container_names_unknown_kind():
    assert make_container("box", size=2.0) == Box(2.0)
    assert make_container("sphere", size=2.0) == Sphere(1.0)
    with pytest.raises(ValueError, match="'cube'"):
        make_container("cube", size=1.0)
    with pytest.raises(ValueError, match="length"):
        Box(0.0)


@pytest.mark.parametrize("n", [5000, 70_000])  # both code paths of Box.contains_soa
@pytest.mark.parametrize("container", [Box(1.5), Sphere(0.7)])
def test_inside_tests_agree(container, n):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(n, 3, generator=g) * 2.0 - 0.25  # (n, 3), about half inside
    inside = container.contains(x)
    assert 0.1 < inside.float().mean() < 0.9
    soa = x.T.contiguous()  # (3, n)
    assert torch.equal(container.contains_soa(soa), inside)
    assert torch.equal(
        container.contains_soa(
            soa, scratch=torch.empty_like(soa), out=torch.empty(n, dtype=torch.bool)
        ),
        inside,
    )
    assert torch.equal(container.distance_to_wall(x) >= 0, inside)
    assert torch.equal(soa, x.T)  # the test did not write into its input
    # points within a rounding error of the wall: whatever the chain's test admits, `contains` admits
    lo, hi = container.bounds
    edge = torch.tensor(
        [[lo - 1e-9, 0.5, 0.5], [hi + 1e-7, 0.5, 0.5], [lo, lo, lo], [0.5, hi, 0.5]]
    )
    edge = torch.cat([edge, edge.roll(1, dims=1)])  # (8, 3)
    assert not bool((container.contains_soa(edge.T.contiguous()) & ~container.contains(edge)).any())
    assert not bool(container.contains(edge[:2]).any())


def test_sphere_uniform_sample_has_r_cubed_law():
    # uniform in a ball: P(|x - c| <= r) = (r / R)^3, so (r / R)^3 is uniform on [0, 1]
    sphere = Sphere(0.5)
    x = sphere.sample_uniform(20_000, generator=torch.Generator().manual_seed(1))
    assert bool(sphere.contains(x).all())
    u = ((x - 0.5).norm(dim=-1) / 0.5) ** 3
    fit = chi_square_test(u, torch.linspace(0, 1, 21), torch.full((20,), 0.05))
    assert fit.pvalue > 1e-3


def test_potential_energy_layouts_agree():
    pot = Potential(gravity=2.0, trap=3.0, center=(0.5, 0.4, 0.3))
    x = torch.rand(100, 3, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    expected = 2.0 * x[:, 2] + 1.5 * (
        (x - torch.tensor([0.5, 0.4, 0.3], dtype=torch.float64)) ** 2
    ).sum(-1)
    torch.testing.assert_close(pot.energy(x), expected)
    x2 = torch.rand(100, 3, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    delta = pot.delta_energy_soa(x.T.contiguous(), x2.T.contiguous())
    torch.testing.assert_close(delta, pot.energy(x2) - expected)
    assert Potential().is_flat and not pot.is_flat


def _normalised(u, p):
    return p / torch.trapezoid(p, u)


def test_box_marginals_closed_form():
    u = torch.linspace(0, 2, 401, dtype=torch.float64)
    box = Box(2.0)
    flat = boltzmann_marginal(u, axis=0, container=box)
    torch.testing.assert_close(flat, torch.ones_like(u))
    pot = Potential(gravity=3.0, trap=0.0, center=box.center)
    baro = _normalised(
        u, boltzmann_marginal(u, axis=2, container=box, potential=pot, temperature=1.5)
    )
    expected = (
        2.0 * torch.exp(-2.0 * u) / (1 - math.exp(-4.0))
    )  # g/T e^{-gz/T} / (1 - e^{-gL/T}), g/T = 2
    torch.testing.assert_close(baro, expected, rtol=1e-4, atol=0)
    # gravity acts on z only
    torch.testing.assert_close(
        boltzmann_marginal(u, axis=1, container=box, potential=pot), torch.ones_like(u)
    )
    outside = boltzmann_marginal(torch.tensor([-0.1, 2.1]), axis=2, container=box, potential=pot)
    assert outside.tolist() == [0.0, 0.0]


def _sphere_marginal_bruteforce(u, *, axis, sphere, pot, temperature, n=801):
    """Integrate exp(-U/T) over the cross-section disc at each u on a fine grid (midpoint rule)."""
    c, r = sphere.center, sphere.radius
    s = (torch.arange(n, dtype=torch.float64) + 0.5) / n * 2 * r - r  # (n,) offsets in the plane
    a, b = torch.meshgrid(s, s, indexing="ij")  # (n, n)
    out = []
    for value in u.tolist():
        x = torch.empty(n, n, 3, dtype=torch.float64)
        others = [i for i in range(3) if i != axis]
        x[..., axis] = value
        x[..., others[0]] = c[others[0]] + a
        x[..., others[1]] = c[others[1]] + b
        w = torch.exp(-pot.energy(x) / temperature) * sphere.contains(x)
        out.append(float(w.sum()) * (2 * r / n) ** 2)
    return torch.tensor(out, dtype=torch.float64)


@pytest.mark.parametrize(
    ("axis", "gravity", "trap"),
    [(2, 0.0, 0.0), (2, 2.0, 5.0), (0, 0.0, 5.0), (0, 2.0, 5.0), (1, 3.0, 0.0)],
)
def test_sphere_marginal_matches_bruteforce(axis, gravity, trap):
    sphere = Sphere(0.5)
    pot = Potential(gravity=gravity, trap=trap, center=sphere.center)
    u = torch.tensor([0.05, 0.2, 0.45, 0.6, 0.93], dtype=torch.float64)
    got = boltzmann_marginal(u, axis=axis, container=sphere, potential=pot, temperature=0.8)
    ref = _sphere_marginal_bruteforce(u, axis=axis, sphere=sphere, pot=pot, temperature=0.8)
    # the grid sees the disc edge to O(h / R) ~ 0.3%: that bounds the comparison, not the formula
    torch.testing.assert_close(got, ref, rtol=5e-3, atol=0)


def test_sphere_marginal_needs_centred_trap():
    with pytest.raises(ValueError, match="centred"):
        boltzmann_marginal(
            torch.zeros(3),
            axis=2,
            container=Sphere(0.5),
            potential=Potential(trap=1.0, center=(0.0, 0.0, 0.0)),
        )
