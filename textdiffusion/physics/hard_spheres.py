"""Pairwise hard-sphere exclusion for the particle chain: cell-list overlap search and valid start states.

The chain moves all particles at once. For hard spheres of radius a that is a valid Metropolis–Hastings
kernel when particle i's move x_i -> x'_i is allowed only if both of its positions {x_i, x'_i} are at
distance >= 2a from both positions {x_j, x'_j} of every other particle j (`exclusion_conflicts`). That
rule depends only on the unordered pairs {x_j, x'_j}, so it is the same for the forward move and the
move back; every subset of the allowed moves gives a configuration without overlaps; and swapping
x_i <-> x'_i on the accepted set is an involution with unit Jacobian. Involutive MCMC (Tierney 1998,
"A note on Metropolis–Hastings kernels for general state spaces"; Neklyudov et al. 2020, "Involutive
MCMC: a unifying framework", ICML) then gives detailed balance with respect to the uniform density on
non-overlapping configurations times any external Boltzmann factor, which the per-particle
Metropolis test handles. The price is a few extra rejections at high packing fractions.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from textdiffusion.physics.container import DIM, Container

_CORNERS = torch.tensor(
    [(i, j, k) for i in (0, 1) for j in (0, 1) for k in (0, 1)], dtype=torch.long
)  # (8, 3) which neighbour to take on each axis


def close_pairs(
    queries: Tensor,
    query_owner: Tensor,
    points: Tensor,
    point_owner: Tensor,
    *,
    diameter: float,
    system_size: int,
    bounds: tuple[float, float],
    only_lower: bool = False,
) -> tuple[Tensor, Tensor]:
    """All (query, point) pairs of different particles in the same system closer than `diameter`.

    Cell-list search: each system's bounding cube is cut into G³ cells of side >= 2·diameter (and about
    as many cells as points), points get a dense start/count table per cell, and each query visits
    the 2³ cells nearest to it — its own and, on each axis, the neighbour on the side of the half-cell
    it sits in; a cell at least twice the diameter wide cannot hide a closer point elsewhere. The work
    is O(8·Q + pairs) instead of O(Q·P). Positions outside `bounds` are clamped into the border cells,
    which keeps this argument valid.

    Args:
        queries: (Q, 3) float positions.
        query_owner: (Q,) int64 particle id of each query (0 <= id < systems · system_size).
        points: (P, 3) float positions.
        point_owner: (P,) int64 particle id of each point.
        diameter: exclusion distance 2a > 0; a pair is close when |p - q| < diameter (strict).
        system_size: particles per independent system; ids i and j interact only if
            i // system_size == j // system_size.
        bounds: (low, high) of the region the cells tile on every axis.
        only_lower: keep only points whose owner id is lower than the query's.

    Returns:
        (q_idx, p_idx): int64 indices into `queries` and `points` of every close pair.
    """
    lo, hi = bounds
    extent = hi - lo
    per_system = math.ceil((2 * system_size) ** (1 / 3))
    grid = max(1, min(int(extent / (2 * diameter)), per_system))
    cell = extent / grid
    systems = int(torch.maximum(point_owner.max(), query_owner.max())) // system_size + 1

    def key(system: Tensor, c: Tensor) -> Tensor:
        return ((system * grid + c[..., 0]) * grid + c[..., 1]) * grid + c[..., 2]

    p_cell = ((points - lo) / cell).floor_().long().clamp_(0, grid - 1)  # (P, 3)
    p_key = key(point_owner // system_size, p_cell)  # (P,)
    order = torch.argsort(p_key)
    cell_count = torch.bincount(p_key, minlength=systems * grid**3)  # (cells,)
    cell_start = torch.cumsum(cell_count, 0) - cell_count
    f = (queries - lo) / cell  # (Q, 3) position in cell units
    q_cell = f.floor().long().clamp_(0, grid - 1)
    side = torch.where(f - q_cell >= 0.5, 1, -1)  # (Q, 3) the nearer neighbour on each axis
    near = q_cell.unsqueeze(1) + _CORNERS.to(q_cell.device) * side.unsqueeze(1)  # (Q, 8, 3)
    valid = ((near >= 0) & (near < grid)).all(dim=-1).flatten()  # (Q·8,)
    keys = key((query_owner // system_size).unsqueeze(1), near.clamp(0, grid - 1)).flatten()
    count = cell_count[keys] * valid
    # Ragged (query, cell) ranges -> a flat list of candidate pairs.
    slot = torch.repeat_interleave(torch.arange(keys.numel(), device=keys.device), count)
    first = torch.cumsum(count, 0) - count
    p_idx = order[
        cell_start[keys][slot] + torch.arange(slot.numel(), device=keys.device) - first[slot]
    ]
    q_idx = slot // _CORNERS.shape[0]
    d = queries[q_idx] - points[p_idx]  # (candidates, 3)
    p_owner, q_owner = point_owner[p_idx], query_owner[q_idx]
    other = p_owner < q_owner if only_lower else p_owner != q_owner
    hit = ((d * d).sum(dim=-1) < diameter**2) & other
    return q_idx[hit], p_idx[hit]


def find_conflicts(
    queries: Tensor,
    query_owner: Tensor,
    points: Tensor,
    point_owner: Tensor,
    *,
    diameter: float,
    system_size: int,
    bounds: tuple[float, float],
    only_lower: bool = False,
) -> Tensor:
    """For each query, whether a point of another particle in the same system lies closer than `diameter`.

    Args and search: as `close_pairs`.

    Returns:
        (Q,) bool.
    """
    q_idx, _ = close_pairs(
        queries,
        query_owner,
        points,
        point_owner,
        diameter=diameter,
        system_size=system_size,
        bounds=bounds,
        only_lower=only_lower,
    )
    conflict = torch.zeros(queries.shape[0], dtype=torch.bool, device=queries.device)
    conflict[q_idx] = True
    return conflict


def exclusion_conflicts(
    x: Tensor, proposal: Tensor, *, radius: float, system_size: int, bounds: tuple[float, float]
) -> Tensor:
    """Which moves the simultaneous hard-sphere rule forbids (see the module docstring).

    Only the proposals are queried, against both position sets: a close pair (x'_i, x_j) or
    (x'_i, x'_j) forbids the moves of both i and j, which covers all three kinds of conflict (x_i, x_j
    never conflict in a valid configuration).

    Args:
        x: (3, M) float current positions (structure of arrays), no two closer than 2·radius.
        proposal: (3, M) float proposed positions.
        radius: hard-sphere radius a > 0.
        system_size: particles per independent system (M = systems · system_size).
        bounds: (low, high) of the container's bounding box.

    Returns:
        (M,) bool, True where x_i or x'_i is closer than 2a to x_j or x'_j for some j != i.
    """
    m = x.shape[1]
    ids = torch.arange(m, device=x.device)
    both = torch.cat([x.T, proposal.T])  # (2M, 3)
    q_idx, p_idx = close_pairs(
        proposal.T,
        ids,
        both,
        ids.repeat(2),
        diameter=2 * radius,
        system_size=system_size,
        bounds=bounds,
    )
    conflict = torch.zeros(m, dtype=torch.bool, device=x.device)
    conflict[q_idx] = True
    conflict[p_idx % m] = True
    return conflict


def place_without_overlap(
    n: int,
    *,
    container: Container,
    radius: float,
    generator: torch.Generator,
    systems: int = 1,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
    max_rounds: int = 10_000,
) -> Tensor:
    """Uniform random points in the container, redrawn until no two centres are closer than 2·radius.

    Each round redraws every particle that overlaps a lower-numbered one (vectorised random sequential
    placement). The result is a valid start, not an equilibrium sample: run the chain to equilibrate.

    Args:
        n: particles per system.
        container: where the centres live.
        radius: hard-sphere radius a >= 0 (0 gives plain uniform points).
        generator: the source of every draw.
        systems: independent systems (replicas); particles of different systems never interact.
        dtype, device: of the result.
        max_rounds: give up after this many redraws.

    Returns:
        (systems, n, 3) positions, or (n, 3) when systems == 1.

    Raises:
        ValueError: the packing fraction n·(4/3)πa³ / volume exceeds 0.35, or placement did not finish.
    """
    lo, hi = container.bounds
    packing = n * 4 / 3 * math.pi * radius**3 / container.volume
    if packing > 0.35:
        raise ValueError(
            f"hard-sphere packing fraction {packing:.3f} is above 0.35; use a smaller radius"
        )
    m = systems * n
    x = container.sample_uniform(m, generator=generator, dtype=dtype, device=device)  # (M, 3)
    owner = torch.arange(m, device=x.device)
    for _ in range(max_rounds if radius > 0 else 0):
        # Redraw only particles that overlap a lower-numbered one: the lowest of each cluster stays,
        # so the placed set grows every round (redrawing both partners need not converge).
        bad = find_conflicts(
            x, owner, x, owner, diameter=2 * radius, system_size=n, bounds=(lo, hi), only_lower=True
        )
        n_bad = int(bad.sum())
        if n_bad == 0:
            break
        x[bad] = container.sample_uniform(n_bad, generator=generator, dtype=dtype, device=device)
    else:
        if radius > 0:
            raise ValueError(f"could not place {n} spheres of radius {radius} without overlap")
    return x.view(systems, n, DIM) if systems > 1 else x
