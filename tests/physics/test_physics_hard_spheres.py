"""Hard-sphere exclusion: the cell-list search against brute force, and the sampled pair distribution."""

from __future__ import annotations

import pytest
import torch

from textdiffusion.physics.container import Box, Sphere
from textdiffusion.physics.hard_spheres import find_conflicts, place_without_overlap
from textdiffusion.physics.mcmc import run_chain
from textdiffusion.physics.stationary import chi_square_test


def _conflicts_bruteforce(
    queries, q_owner, points, p_owner, *, diameter, system_size, only_lower=False
):
    d2 = ((queries[:, None, :] - points[None, :, :]) ** 2).sum(-1)  # (Q, P)
    same_system = (q_owner[:, None] // system_size) == (p_owner[None, :] // system_size)
    other = (
        (p_owner[None, :] < q_owner[:, None])
        if only_lower
        else (q_owner[:, None] != p_owner[None, :])
    )
    return ((d2 < diameter**2) & same_system & other).any(dim=1)


@pytest.mark.parametrize(("diameter", "system_size"), [(0.08, 300), (0.3, 50), (2.0, 600)])
def test_cell_list_matches_bruteforce(diameter, system_size):
    g = torch.Generator().manual_seed(0)
    points = torch.rand(600, 3, generator=g) * 1.2 - 0.1  # some outside the bounds [0, 1]
    owner = torch.arange(600)
    queries = torch.rand(400, 3, generator=g) * 1.4 - 0.2
    q_owner = torch.randint(600, (400,), generator=g)
    kw = dict(diameter=diameter, system_size=system_size)
    got = find_conflicts(queries, q_owner, points, owner, bounds=(0.0, 1.0), **kw)
    ref = _conflicts_bruteforce(queries, q_owner, points, owner, **kw)
    assert torch.equal(got, ref)
    assert bool(ref.any())
    lower = find_conflicts(
        queries, q_owner, points, owner, bounds=(0.0, 1.0), only_lower=True, **kw
    )
    assert torch.equal(
        lower, _conflicts_bruteforce(queries, q_owner, points, owner, only_lower=True, **kw)
    )


def test_placement_has_no_overlap_and_refuses_dense_packing():
    box = Box(1.0)
    x = place_without_overlap(
        400, container=box, radius=0.04, generator=torch.Generator().manual_seed(1)
    )
    owner = torch.arange(400)
    assert not bool(_conflicts_bruteforce(x, owner, x, owner, diameter=0.08, system_size=400).any())
    assert bool(box.contains(x).all())
    with pytest.raises(ValueError, match="packing fraction"):
        place_without_overlap(
            1000, container=box, radius=0.1, generator=torch.Generator().manual_seed(1)
        )


def test_chain_never_overlaps_and_rejects_overlapping_start():
    sphere, n, radius = Sphere(0.5), 80, 0.05
    g = torch.Generator().manual_seed(2)
    x0 = place_without_overlap(n, container=sphere, radius=radius, generator=g)
    owner = torch.arange(n)
    overlaps = []

    def check(step, x, accepted):
        overlaps.append(
            bool(
                _conflicts_bruteforce(x, owner, x, owner, diameter=2 * radius, system_size=n).any()
            )
        )

    res = run_chain(
        x0,
        200,
        container=sphere,
        diffusion=2e-3,
        dt=1.0,
        generator=g,
        hard_sphere_radius=radius,
        callback=check,
    )
    assert not any(overlaps)
    assert 0.2 < res.acceptance_rate < 0.95
    bad = x0.clone()
    bad[1] = bad[0] + 0.01
    with pytest.raises(ValueError, match="overlapping"):
        run_chain(
            bad, 1, container=sphere, diffusion=1e-3, dt=1.0, generator=g, hard_sphere_radius=radius
        )


def test_two_sphere_distance_law_matches_rejection_sampling():
    # The target is uniform over non-overlapping pairs in the box. Reference: 400 000 uniform pairs kept
    # when |x1 - x2| >= 2a (exact rejection sampling). The chain runs 3000 independent 2-particle
    # systems from opposite corners (far from the target: every distance is 1.39) for 300 steps of size
    # 0.15; their final distances must follow the reference law (chi-square against the reference bin
    # frequencies, whose own sampling error is ~1% of the chain's).
    box, radius, systems = Box(1.0), 0.2, 3000
    x0 = torch.tensor([[0.1, 0.1, 0.1], [0.9, 0.9, 0.9]]).expand(systems, 2, 3)  # (S, 2, 3)
    g = torch.Generator().manual_seed(3)
    res = run_chain(
        x0, 300, container=box, diffusion=0.0112, dt=1.0, generator=g, hard_sphere_radius=radius
    )
    dist = (res.x[:, 0] - res.x[:, 1]).norm(dim=-1)
    assert bool((dist >= 2 * radius).all())
    pairs = torch.rand(400_000, 2, 3, generator=torch.Generator().manual_seed(4))
    ref = (pairs[:, 0] - pairs[:, 1]).norm(dim=-1)
    ref = ref[ref >= 2 * radius]
    edges = torch.linspace(2 * radius, 3**0.5, 14)
    probs = torch.histc(ref, bins=13, min=float(edges[0]), max=float(edges[-1])).double()
    assert chi_square_test(dist, edges, probs / probs.sum()).pvalue > 1e-3
    start = (x0[:, 0] - x0[:, 1]).norm(dim=-1)
    assert chi_square_test(start, edges, probs / probs.sum()).pvalue < 1e-6  # the test has power
