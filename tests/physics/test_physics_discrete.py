"""Detailed balance of Metropolis–Hastings on a small discrete chain: exactly on the matrix, and sampled."""

from __future__ import annotations

import math

import pytest
import torch

from textdiffusion.physics.discrete import (
    detailed_balance_violation,
    metropolis_hastings_kernel,
    sample_discrete_chain,
    stationary_distribution,
    transition_counts,
)
from textdiffusion.physics.stationary import chi_square_test

TARGET = torch.tensor([0.2, 0.5, 0.3], dtype=torch.float64)
# An asymmetric proposal, so the Hastings ratio Q_ji / Q_ij matters.
PROPOSAL = torch.tensor([[0.1, 0.6, 0.3], [0.2, 0.2, 0.6], [0.5, 0.4, 0.1]], dtype=torch.float64)


def test_kernel_is_stochastic_and_reversible():
    p = metropolis_hastings_kernel(TARGET, PROPOSAL)
    torch.testing.assert_close(p.sum(dim=1), torch.ones(3, dtype=torch.float64))
    assert bool((p >= 0).all())
    assert detailed_balance_violation(p, TARGET) < 1e-15
    torch.testing.assert_close(stationary_distribution(p), TARGET)
    # hand-computed entry: P_01 = Q_01 · min(1, pi_1 Q_10 / (pi_0 Q_01)) = 0.6 · min(1, 0.1/0.12)
    assert p[0, 1].item() == pytest.approx(0.6 * (0.5 * 0.2) / (0.2 * 0.6))


def test_the_check_catches_a_chain_without_the_correction():
    # The bare proposal (or Metropolis' ratio without Q_ji / Q_ij) is not reversible w.r.t. the target.
    assert detailed_balance_violation(PROPOSAL, TARGET) > 0.01
    ratio = (TARGET.unsqueeze(0) / TARGET.unsqueeze(1)).clamp(max=1.0)  # min(1, pi_j / pi_i)
    metropolis_only = PROPOSAL * ratio
    metropolis_only.fill_diagonal_(0.0)
    metropolis_only += torch.diag(1 - metropolis_only.sum(dim=1))
    assert detailed_balance_violation(metropolis_only, TARGET) > 0.01
    assert (stationary_distribution(metropolis_only) - TARGET).abs().max() > 0.01


def test_kernel_validates_inputs():
    with pytest.raises(ValueError, match="> 0"):
        metropolis_hastings_kernel(torch.tensor([0.0, 1.0]), torch.full((2, 2), 0.5))
    one_way = torch.tensor([[0.5, 0.5], [0.0, 1.0]])
    with pytest.raises(ValueError, match="Q_ji"):
        metropolis_hastings_kernel(torch.tensor([0.5, 0.5]), one_way)


def test_sampled_flows_balance_and_states_follow_the_target():
    chains, steps = 4000, 60
    g = torch.Generator().manual_seed(0)
    x_init = torch.multinomial(TARGET, chains, replacement=True, generator=g)  # stationary start
    run = sample_discrete_chain(TARGET, PROPOSAL, steps, x_init=x_init, generator=g)
    counts = transition_counts(run.states, 3).double()  # (3, 3)
    # In a stationary reversible chain the flow i -> j has the same mean as j -> i. Given their sum n,
    # each direction is close to Binomial(n, 1/2): |n_ij - n_ji| < 4·sqrt(n), with room for the
    # correlation between successive steps of one chain (a factor of 2 in the variance).
    for i in range(3):
        for j in range(i + 1, 3):
            n = counts[i, j] + counts[j, i]
            assert abs(counts[i, j] - counts[j, i]) < 4 * math.sqrt(2 * n)
    # and they match the kernel: expected flow pi_i P_ij per step per chain
    kernel = metropolis_hastings_kernel(TARGET, PROPOSAL)
    expected = TARGET.unsqueeze(1) * kernel * chains * steps
    assert ((counts - expected).abs() / expected.sqrt()).max() < 4 * math.sqrt(2)
    # the last states of independent chains are a multinomial sample of the target
    final = run.states[-1].double()
    fit = chi_square_test(final, torch.tensor([-0.5, 0.5, 1.5, 2.5]), TARGET)
    assert fit.pvalue > 1e-3
    expected_acceptance = float(
        (TARGET.unsqueeze(1) * (kernel * (1 - torch.eye(3)))).sum()
    ) + float((TARGET * PROPOSAL.diagonal()).sum())
    assert run.acceptance_rate == pytest.approx(
        expected_acceptance, abs=4 * 0.5 / math.sqrt(chains * steps)
    )


def test_sampled_chain_converges_from_one_state():
    g = torch.Generator().manual_seed(1)
    run = sample_discrete_chain(
        TARGET, PROPOSAL, 40, x_init=torch.zeros(5000, dtype=torch.long), generator=g
    )
    fit = chi_square_test(run.states[-1].double(), torch.tensor([-0.5, 0.5, 1.5, 2.5]), TARGET)
    assert fit.pvalue > 1e-3
    start = chi_square_test(run.states[0].double(), torch.tensor([-0.5, 0.5, 1.5, 2.5]), TARGET)
    assert start.pvalue < 1e-6
