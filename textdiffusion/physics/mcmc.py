"""Brownian motion in a closed container as a Metropolis–Hastings chain, vectorised over particles.

Each step every particle proposes x' = x + sqrt(2·D·dt)·ξ, ξ ~ N(0, I_3) (a symmetric random-walk
proposal), and accepts it with probability

    min(1, pi(x') / pi(x)),   pi(x) ∝ 1[x in container] · exp(-U(x) / T)

(Metropolis et al. 1953, "Equation of state calculations by fast computing machines"; Hastings 1970,
"Monte Carlo sampling methods using Markov chains and their applications", eq. (3) with a symmetric
proposal). A move out of the container is always rejected (hard, reflecting walls); in a flat
potential every move inside is accepted, so far from the walls the chain is exactly a Gaussian random
walk with mean squared displacement 2·d·D·t. The chain satisfies detailed balance with respect to pi,
so it samples the Boltzmann distribution; with a potential it is the Metropolis-adjusted discretisation
of overdamped Langevin dynamics with mobility D / T. Optional hard-sphere exclusion uses the
simultaneous-move rule of `hard_spheres`.

Speed: positions are held as structure of arrays (3, M), the step reuses preallocated buffers, the
update is a `torch.where` (no boolean-index scatter), and the random numbers are drawn in blocks of
steps, optionally in a background thread (`prefetch`) so that drawing the next block overlaps the
arithmetic of this one. On the CPU the speed is bounded by the Mersenne-Twister normal generator
(about 3·10^8 normals/s on one core, i.e. ~10^8 particle-steps/s): the arithmetic is a few passes over
12 bytes per particle.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import torch
from torch import Tensor

from textdiffusion.physics.container import DIM, Container, Potential
from textdiffusion.physics.hard_spheres import exclusion_conflicts, find_conflicts

StepCallback = Callable[[int, Tensor, Tensor], None]
"""callback(step, x, accepted): step in 1..steps, x (..., N, 3) positions after the step (a view, valid
only during the call), accepted (..., N) bool, which particles moved in this step."""

RANDOM_BLOCK_NUMBERS = (
    2**18
)  # random numbers drawn per call: large enough to amortise call overhead


@dataclass
class ChainResult:
    """Output of `run_chain`.

    Attributes:
        x: (..., N, 3) final positions, same shape and dtype as the start.
        accepted: (..., N) int64, accepted moves per particle.
        steps: number of steps run.
    """

    x: Tensor
    accepted: Tensor
    steps: int

    @property
    def acceptance_rate(self) -> float:
        """Accepted moves / proposed moves over all particles and steps."""
        total = self.accepted.numel() * self.steps
        return float(self.accepted.sum().item()) / total if total else float("nan")


def proposal_std(*, diffusion: float, dt: float) -> float:
    """Per-axis standard deviation sqrt(2·D·dt) of a Brownian displacement over dt."""
    return math.sqrt(2.0 * diffusion * dt)


def _random_blocks(
    m: int,
    steps: int,
    *,
    uniform: bool,
    generator: torch.Generator,
    dtype: torch.dtype,
    device: torch.device,
    prefetch: bool,
) -> Iterator[tuple[Tensor, Tensor | None]]:
    """Yield, per step, normals (3, M) and (if `uniform`) uniforms (M,), drawn `block` steps at a time.

    The draws happen in the same order with or without `prefetch`, so the stream (and the trajectory)
    depends only on the generator's state, M, `steps` and the dtype.
    """
    block = max(1, min(steps, RANDOM_BLOCK_NUMBERS // ((DIM + uniform) * m)))
    sizes = [min(block, steps - start) for start in range(0, steps, block)]
    n_buffers = 2 if prefetch and len(sizes) > 1 else 1
    normals = [torch.empty(block, DIM, m, dtype=dtype, device=device) for _ in range(n_buffers)]
    uniforms = [
        torch.empty(block, m, dtype=dtype, device=device) if uniform else None for _ in normals
    ]

    def draw(i: int, size: int) -> int:
        normals[i][:size].normal_(generator=generator)
        if uniforms[i] is not None:
            uniforms[i][:size].uniform_(generator=generator)
        return i

    if n_buffers == 1:
        for size in sizes:
            draw(0, size)
            for j in range(size):
                yield normals[0][j], (uniforms[0][j] if uniform else None)
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="particles-rng") as pool:
        pending = pool.submit(draw, 0, sizes[0])
        for b, size in enumerate(sizes):
            i = pending.result()
            if b + 1 < len(sizes):
                pending = pool.submit(draw, (b + 1) % 2, sizes[b + 1])
            for j in range(size):
                yield normals[i][j], (uniforms[i][j] if uniform else None)


def run_chain(
    x_init: Tensor,
    steps: int,
    *,
    container: Container,
    diffusion: float,
    dt: float,
    generator: torch.Generator,
    potential: Potential | None = None,
    temperature: float = 1.0,
    hard_sphere_radius: float = 0.0,
    callback: StepCallback | None = None,
    prefetch: bool = False,
) -> ChainResult:
    """Run the Metropolis–Hastings particle chain for `steps` steps from `x_init`.

    Per step (all particles at once): x' = x + sqrt(2·D·dt)·ξ; accept where x' is inside the container,
    log(u) <= -(U(x') - U(x)) / T with u ~ U[0, 1) (only when the potential is not flat), and no
    hard-sphere conflict; then x <- where(accept, x', x).

    Args:
        x_init: (..., N, 3) float start positions, all inside the container (and, with hard spheres,
            no two centres closer than 2·radius). Leading dimensions are independent systems.
        steps: number of steps >= 0.
        container: `Box` or `Sphere`.
        diffusion: D > 0, in length² per unit time.
        dt: time per step > 0.
        generator: source of every random number; on the device of `x_init`.
        potential: external `Potential`, or None for a flat one.
        temperature: T > 0.
        hard_sphere_radius: a >= 0; 0 turns exclusion off.
        callback: called after every step, see `StepCallback`.
        prefetch: draw the next block of random numbers in a background thread (CPU only; gives the
            same trajectory). It pays off with `torch.set_num_threads(1)` on small machines, where the
            drawing thread and the arithmetic then get a core each. The callback must not draw from
            `generator` then (it is in use on the other thread).

    Returns:
        `ChainResult` with the final positions and per-particle accepted-move counts.
    """
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    if not (diffusion > 0 and dt > 0 and temperature > 0):
        raise ValueError(
            f"need diffusion, dt, temperature > 0, got {diffusion}, {dt}, {temperature}"
        )
    if hard_sphere_radius < 0:
        raise ValueError(f"hard_sphere_radius must be >= 0, got {hard_sphere_radius}")
    if x_init.shape[-1] != DIM or x_init.dim() < 2 or not x_init.is_floating_point():
        raise ValueError(
            f"x_init must be a float tensor of shape (..., N, 3), got {tuple(x_init.shape)}"
        )
    if not bool(container.contains(x_init).all()):
        raise ValueError(
            "x_init has particles outside the container (the target density is 0 there)"
        )
    shape, n = x_init.shape, x_init.shape[-2]
    xs = x_init.reshape(-1, DIM).T.contiguous()  # (3, M), M = systems · N
    m = xs.shape[1]
    if hard_sphere_radius > 0:
        owner = torch.arange(m, device=xs.device)
        overlap = find_conflicts(
            xs.T,
            owner,
            xs.T,
            owner,
            diameter=2 * hard_sphere_radius,
            system_size=n,
            bounds=container.bounds,
        )
        if bool(overlap.any()):
            raise ValueError(
                "x_init has overlapping hard spheres; start from place_without_overlap"
            )
    potential = None if potential is None or potential.is_flat else potential
    std = proposal_std(diffusion=diffusion, dt=dt)
    prop = torch.empty_like(xs)  # (3, M) proposal
    scratch = torch.empty_like(xs)  # (3, M) work space of the inside test
    accept = torch.empty(m, dtype=torch.bool, device=xs.device)
    accepted = torch.zeros(m, dtype=torch.long, device=xs.device)
    blocks = _random_blocks(
        m,
        steps,
        uniform=potential is not None,
        generator=generator,
        dtype=xs.dtype,
        device=xs.device,
        prefetch=prefetch and xs.device.type == "cpu",
    )
    for step, (xi, u) in enumerate(blocks, start=1):
        torch.add(xs, xi, alpha=std, out=prop)
        container.contains_soa(prop, scratch=scratch, out=accept)
        if potential is not None:
            delta = potential.delta_energy_soa(xs, prop, scratch=scratch)  # (M,) U(x') - U(x)
            # Metropolis test u <= exp(-ΔU/T), in logs: T·log(u) + ΔU <= 0.
            accept &= u.log().mul_(temperature).add_(delta) <= 0
        if hard_sphere_radius > 0:
            accept &= ~exclusion_conflicts(
                xs, prop, radius=hard_sphere_radius, system_size=n, bounds=container.bounds
            )
        torch.where(accept, prop, xs, out=xs)
        accepted += accept
        if callback is not None:
            callback(step, xs.T.view(shape), accept.view(shape[:-1]))
    return ChainResult(
        x=xs.T.reshape(shape).contiguous(), accepted=accepted.view(shape[:-1]), steps=steps
    )
