"""Closed containers (a box or a sphere) and external potentials, with the Boltzmann density they imply.

The target density of the particle chain is

    pi(x) ∝ 1[x in container] · exp(-U(x) / T),    U(x) = gravity · z + trap / 2 · |x - center|²,

in reduced units (k_B = 1, energies in units of k_B·T at T = 1). Hard walls act on particle centres.
`boltzmann_marginal` gives the one-axis marginal of this density, which the stationary-density tests
compare against: uniform in the box, the barometric profile exp(-gravity·z/T) under gravity, a
(truncated) Gaussian of variance T/trap in a harmonic trap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

DIM = 3  # space dimension; axis 2 (z) is the gravity axis


@dataclass(frozen=True)
class Box:
    """The cube [0, length]^3 with hard walls.

    Args:
        length: side L > 0.
    """

    length: float = 1.0

    def __post_init__(self) -> None:
        if not self.length > 0:
            raise ValueError(f"Box.length must be > 0, got {self.length}")

    @property
    def center(self) -> tuple[float, float, float]:
        half = self.length / 2
        return (half, half, half)

    @property
    def bounds(self) -> tuple[float, float]:
        """(low, high) of the bounding interval on every axis."""
        return (0.0, self.length)

    @property
    def max_wall_distance(self) -> float:
        """The largest distance from an inside point to the nearest wall (L/2, at the centre)."""
        return self.length / 2

    @property
    def volume(self) -> float:
        return self.length**DIM

    def contains_soa(
        self, x: Tensor, *, scratch: Tensor | None = None, out: Tensor | None = None
    ) -> Tensor:
        """Inside test on structure-of-arrays positions (the chain's hot path, so it can reuse buffers).

        Args:
            x: (3, M) float positions, one row per axis.
            scratch: optional (3, M) float buffer to compute in (overwritten).
            out: optional (M,) bool buffer for the result.

        Returns:
            (M,) bool, True where max_a |x_a - L/2| < L/2. The strict test keeps the rounding of
            x_a - L/2 from admitting a point just outside: whatever it accepts satisfies 0 < x_a < L
            exactly (so `contains` agrees), at the cost of a boundary layer of one rounding error.
        """
        half = self.length / 2
        d = torch.sub(x, half, out=scratch).abs_()  # (3, M)
        if x.shape[1] < 2**16:  # one reduction call: fewer calls matter for small M
            return torch.lt(d.amax(dim=0), half, out=out)
        torch.maximum(d[0], d[1], out=d[0])  # in place: no allocation of M floats per step
        torch.maximum(d[0], d[2], out=d[0])
        return torch.lt(d[0], half, out=out)

    def contains(self, x: Tensor) -> Tensor:
        """(..., 3) float positions -> (...) bool, True inside the closed box."""
        return ((x >= 0) & (x <= self.length)).all(dim=-1)

    def distance_to_wall(self, x: Tensor) -> Tensor:
        """(..., 3) positions -> (...) distance to the nearest wall, min_a min(x_a, L - x_a) (< 0 outside)."""
        return torch.minimum(x, self.length - x).amin(dim=-1)

    def sample_uniform(
        self,
        n: int,
        *,
        generator: torch.Generator,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
    ) -> Tensor:
        """n points uniform in the box: (n, 3) of `dtype`, drawn with `generator`."""
        u = torch.rand(n, DIM, generator=generator, dtype=dtype, device=device)
        return u.mul_(self.length)


@dataclass(frozen=True)
class Sphere:
    """The ball of radius R centred at (R, R, R), i.e. inscribed in the cube [0, 2R]^3, with a hard wall.

    Args:
        radius: R > 0.
    """

    radius: float = 0.5

    def __post_init__(self) -> None:
        if not self.radius > 0:
            raise ValueError(f"Sphere.radius must be > 0, got {self.radius}")

    @property
    def center(self) -> tuple[float, float, float]:
        r = self.radius
        return (r, r, r)

    @property
    def bounds(self) -> tuple[float, float]:
        return (0.0, 2 * self.radius)

    @property
    def max_wall_distance(self) -> float:
        return self.radius

    @property
    def volume(self) -> float:
        return 4 / 3 * math.pi * self.radius**DIM

    def contains_soa(
        self, x: Tensor, *, scratch: Tensor | None = None, out: Tensor | None = None
    ) -> Tensor:
        """(3, M) positions -> (M,) bool, True where |x - c|² <= R² (buffers as in `Box.contains_soa`).

        The squares are summed in the same order as in `contains`, so the two always agree.
        """
        d = torch.sub(x, self.radius, out=scratch)  # (3, M)
        d.mul_(d)
        torch.add(d[0], d[1], out=d[0])
        torch.add(d[0], d[2], out=d[0])
        return torch.le(d[0], self.radius**2, out=out)

    def contains(self, x: Tensor) -> Tensor:
        """(..., 3) positions -> (...) bool, True inside the closed ball."""
        d = x - self.radius
        d = d * d
        return d[..., 0] + d[..., 1] + d[..., 2] <= self.radius**2

    def distance_to_wall(self, x: Tensor) -> Tensor:
        """(..., 3) positions -> (...) distance R - |x - c| to the wall (< 0 outside)."""
        return self.radius - (x - self.radius).norm(dim=-1)

    def sample_uniform(
        self,
        n: int,
        *,
        generator: torch.Generator,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
    ) -> Tensor:
        """n points uniform in the ball: direction from a normalised Gaussian, radius R·U^(1/3)."""
        direction = torch.randn(n, DIM, generator=generator, dtype=dtype, device=device)
        direction = direction / direction.norm(dim=-1, keepdim=True).clamp_min(1e-30)
        radius = torch.rand(n, 1, generator=generator, dtype=dtype, device=device).pow_(1 / 3)
        return direction.mul_(radius).mul_(self.radius).add_(self.radius)


Container = Box | Sphere


def make_container(kind: str, *, size: float) -> Container:
    """Build a container by name.

    Args:
        kind: "box" (side `size`) or "sphere" (diameter `size`, inscribed in [0, size]^3).
        size: side or diameter, > 0.

    Returns:
        A `Box` or a `Sphere`.
    """
    if kind == "box":
        return Box(length=size)
    if kind == "sphere":
        return Sphere(radius=size / 2)
    raise ValueError(f"unknown container {kind!r}; expected 'box' or 'sphere'")


@dataclass(frozen=True)
class Potential:
    """External potential U(x) = gravity · z + trap / 2 · |x - center|² (reduced units, k_B = 1).

    Args:
        gravity: force m·g along -z; the density then falls as exp(-gravity·z / T) (barometric law,
            scale height T / gravity). May be negative (pushes up).
        trap: stiffness k >= 0 of a harmonic trap; alone it gives a Gaussian of variance T / k per axis.
        center: trap centre (3 floats), usually the container's centre.
    """

    gravity: float = 0.0
    trap: float = 0.0
    center: tuple[float, float, float] = (0.5, 0.5, 0.5)

    def __post_init__(self) -> None:
        if self.trap < 0:
            raise ValueError(f"Potential.trap must be >= 0, got {self.trap}")
        if len(self.center) != DIM:
            raise ValueError(f"Potential.center must have {DIM} coordinates, got {self.center}")

    @property
    def is_flat(self) -> bool:
        """True when U is constant, so only the walls can reject a move."""
        return self.gravity == 0 and self.trap == 0

    def energy(self, x: Tensor) -> Tensor:
        """(..., 3) positions -> (...) energies U(x) in the dtype of x."""
        u = torch.zeros(x.shape[:-1], dtype=x.dtype, device=x.device)
        if self.gravity:
            u = u + self.gravity * x[..., 2]
        if self.trap:
            c = torch.tensor(self.center, dtype=x.dtype, device=x.device)
            u = u + 0.5 * self.trap * ((x - c) ** 2).sum(dim=-1)
        return u

    def delta_energy_soa(
        self, x: Tensor, proposal: Tensor, *, scratch: Tensor | None = None
    ) -> Tensor:
        """U(x') - U(x) in the chain's structure-of-arrays layout, from the displacement.

        gravity·(x'_z - x_z) + trap/2 · Σ_a (x'_a - x_a)(x'_a + x_a - 2·c_a): the difference is formed
        directly rather than as a difference of two energies, which is cheaper and more accurate.

        Args:
            x: (3, M) current positions; proposal: (3, M) proposed positions.
            scratch: optional (3, M) buffer (overwritten).

        Returns:
            (M,) energy differences.
        """
        step = torch.sub(proposal, x, out=scratch)  # (3, M) displacement
        delta = step[2] * self.gravity  # (M,)
        if self.trap:
            c = torch.tensor(self.center, dtype=x.dtype, device=x.device).unsqueeze(1)  # (3, 1)
            mid = (proposal + x).sub_(c, alpha=2.0).mul_(step)  # (3, M)
            delta.add_(mid.sum(dim=0), alpha=0.5 * self.trap)
        return delta


def boltzmann_marginal(
    u: Tensor,
    *,
    axis: int,
    container: Container,
    potential: Potential | None = None,
    temperature: float = 1.0,
) -> Tensor:
    """Unnormalised marginal density of pi(x) ∝ 1[x in container]·exp(-U(x)/T) along one axis.

    Box (separable):   p(u) ∝ exp(-(gravity·u·[axis = z] + trap/2·(u - c_axis)²) / T) on [0, L].
    Sphere (centre c, radius R, trap centred at c), with rho² = R² - (u - c)² the squared radius of the
    cross-section at u:
        along z, or with no gravity:  p(u) ∝ exp(-(gravity·u·[axis = z] + trap/2·(u - c)²)/T) · A(u),
            A = 2π T/k · (1 - exp(-k rho² / 2T))  (k = trap > 0),  A = π rho²  (k = 0);
        along x or y with gravity: the cross-section integral over (v, w=z-c) is done with the inner
            v-integral in closed form (erf) and the w-integral by a midpoint rule in w = rho·sin(θ).

    Args:
        u: (G,) float coordinates along `axis`.
        axis: 0, 1 or 2 (z, the gravity axis).
        container: a `Box` or a `Sphere`.
        potential: `Potential` or None (flat).
        temperature: T > 0.

    Returns:
        (G,) float64 unnormalised density, 0 outside the container.
    """
    if axis not in (0, 1, 2):
        raise ValueError(f"axis must be 0, 1 or 2, got {axis}")
    potential = potential or Potential(center=container.center)
    u = u.to(torch.float64)
    g, k, t = float(potential.gravity), float(potential.trap), float(temperature)
    along_gravity = g * u if axis == 2 else torch.zeros_like(u)
    log_w = -(along_gravity + 0.5 * k * (u - potential.center[axis]) ** 2) / t
    if isinstance(container, Box):
        inside = (u >= 0) & (u <= container.length)
        return torch.where(inside, log_w.exp(), torch.zeros_like(u))
    if k and any(abs(a - b) > 1e-12 for a, b in zip(potential.center, container.center)):
        raise ValueError("the sphere marginal needs the trap centred at the sphere's centre")
    c, r = container.center[axis], container.radius
    rho2 = (r**2 - (u - c) ** 2).clamp_min(0.0)
    if axis == 2 or g == 0:
        area = 2 * math.pi * t / k * -torch.expm1(-k * rho2 / (2 * t)) if k else math.pi * rho2
        return torch.where(rho2 > 0, log_w.exp() * area, torch.zeros_like(u))
    # axis x or y under gravity: cross-section (v, w) with w along z, w = rho·sin θ, v in ±rho·cos θ
    n_theta = 512
    theta = (torch.arange(n_theta, dtype=torch.float64) + 0.5) / n_theta * math.pi - math.pi / 2
    rho = rho2.sqrt().unsqueeze(1)  # (G, 1)
    w = rho * theta.sin()  # (G, n_theta)
    half_chord = rho * theta.cos()  # (G, n_theta)
    if k:
        scale = math.sqrt(2 * t / k)
        inner = math.sqrt(math.pi) * scale * torch.erf(half_chord / scale)
    else:
        inner = 2 * half_chord
    integrand = (-(g * (container.center[2] + w) + 0.5 * k * w**2) / t).exp() * inner
    area = (integrand * rho * theta.cos()).sum(dim=1) * (math.pi / n_theta)  # dw = rho cos θ dθ
    return torch.where(rho2 > 0, log_w.exp() * area, torch.zeros_like(u))
