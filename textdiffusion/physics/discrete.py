"""Metropolis–Hastings on a finite state space, and detailed-balance checks.

For a target pi over S states and a proposal matrix Q (row i is q(· | i)), Hastings (1970, eq. (3)-(4))
accepts a proposed move i -> j with probability

    a(i, j) = min(1, pi_j · Q_ji / (pi_i · Q_ij)),

so the transition matrix is P_ij = Q_ij · a(i, j) for j != i and P_ii = 1 - sum_{j != i} P_ij. It
satisfies detailed balance, pi_i · P_ij = pi_j · P_ji, hence pi is stationary. The same rule drives
the particle chain in `mcmc`; this small version makes the property checkable exactly (on the matrix)
and statistically (on sampled transitions).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


def metropolis_hastings_kernel(target: Tensor, proposal: Tensor) -> Tensor:
    """Transition matrix of the Metropolis–Hastings chain.

    Args:
        target: (S,) float, positive target weights (normalised or not).
        proposal: (S, S) float row-stochastic proposal matrix; Q_ij > 0 must imply Q_ji > 0.

    Returns:
        (S, S) float64 row-stochastic matrix P (see the module docstring).
    """
    pi = target.to(torch.float64)
    q = proposal.to(torch.float64)
    if pi.dim() != 1 or q.shape != (pi.numel(), pi.numel()):
        raise ValueError(
            f"need target (S,) and proposal (S, S), got {tuple(pi.shape)}, {tuple(q.shape)}"
        )
    if bool((pi <= 0).any()):
        raise ValueError("target weights must be > 0")
    if bool(((q > 0) != (q.T > 0)).any()):
        raise ValueError("proposal must have Q_ij > 0 exactly where Q_ji > 0")
    flow = pi.unsqueeze(1) * q  # (S, S) pi_i Q_ij
    ratio = torch.where(flow > 0, flow.T / flow.where(flow > 0, torch.ones_like(flow)), 0.0)
    p = q * ratio.clamp(max=1.0)  # (S, S) off-diagonal P_ij = Q_ij · min(1, ratio)
    p.fill_diagonal_(0.0)
    p += torch.diag(1.0 - p.sum(dim=1))
    return p


def detailed_balance_violation(kernel: Tensor, target: Tensor) -> float:
    """max_ij |pi_i P_ij - pi_j P_ji| with pi = target / sum(target); 0 for a reversible chain.

    Args:
        kernel: (S, S) row-stochastic matrix.
        target: (S,) positive weights.

    Returns:
        The largest violation of detailed balance, a float.
    """
    pi = target.to(torch.float64) / target.to(torch.float64).sum()
    flow = pi.unsqueeze(1) * kernel.to(torch.float64)  # (S, S) probability flow i -> j
    return float((flow - flow.T).abs().max())


def stationary_distribution(kernel: Tensor) -> Tensor:
    """The stationary distribution pi P = pi, sum(pi) = 1, solved as a least-squares linear system.

    Args:
        kernel: (S, S) row-stochastic matrix of an irreducible chain.

    Returns:
        (S,) float64.
    """
    p = kernel.to(torch.float64)
    s = p.shape[0]
    a = torch.cat(
        [(p - torch.eye(s, dtype=p.dtype)).T, torch.ones(1, s, dtype=p.dtype)]
    )  # (S+1, S)
    b = torch.zeros(s + 1, dtype=p.dtype)
    b[-1] = 1.0
    return torch.linalg.lstsq(a, b.unsqueeze(1)).solution.squeeze(1)


@dataclass
class DiscreteChain:
    """Output of `sample_discrete_chain`.

    Attributes:
        states: (steps + 1, C) int64, the state of each of C chains at every step (row 0 = start).
        acceptance_rate: accepted proposals / proposals (a proposal of the current state counts as
            accepted).
    """

    states: Tensor
    acceptance_rate: float


def sample_discrete_chain(
    target: Tensor,
    proposal: Tensor,
    steps: int,
    *,
    x_init: Tensor,
    generator: torch.Generator,
) -> DiscreteChain:
    """Run C independent Metropolis–Hastings chains on S states, vectorised over chains.

    Per step: j ~ Q[i] by inverse-CDF sampling in float64, then accept if u < pi_j Q_ji / (pi_i Q_ij).

    Args:
        target: (S,) positive weights.
        proposal: (S, S) row-stochastic proposal matrix.
        steps: number of steps.
        x_init: (C,) int64 start states.
        generator: source of every draw.

    Returns:
        `DiscreteChain` with all visited states.
    """
    pi = target.to(torch.float64)
    q = proposal.to(torch.float64)
    cdf = q.cumsum(dim=1)  # (S, S)
    cdf[:, -1] = 1.0  # guard against round-off: searchsorted must land inside the row
    states = torch.empty(steps + 1, x_init.numel(), dtype=torch.long)
    states[0] = x_init
    x = x_init.clone()
    accepted = 0
    for step in range(1, steps + 1):
        u = torch.rand(2, x.numel(), generator=generator, dtype=torch.float64)
        j = torch.searchsorted(cdf[x], u[0].unsqueeze(1), right=True).squeeze(1)  # (C,)
        j = j.clamp_(max=pi.numel() - 1)
        ratio = (pi[j] * q[j, x]) / (pi[x] * q[x, j])
        move = u[1] < ratio
        accepted += int(move.sum())
        x = torch.where(move, j, x)
        states[step] = x
    total = steps * x.numel()
    return DiscreteChain(states=states, acceptance_rate=accepted / total if total else float("nan"))


def transition_counts(states: Tensor, n_states: int) -> Tensor:
    """Count transitions i -> j over time and chains.

    Args:
        states: (T, C) int64 states.
        n_states: S.

    Returns:
        (S, S) int64, entry (i, j) = number of steps from i to j.
    """
    pairs = states[:-1] * n_states + states[1:]  # (T-1, C) flat index of (from, to)
    return torch.bincount(pairs.flatten(), minlength=n_states**2).view(n_states, n_states)
