from __future__ import annotations

import itertools
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from textdiffusion.processes import MaskedProcess, build_schedule
from textdiffusion.processes.schedules import SCHEDULES

MASK = 1


def process(schedule="loglinear", **kwargs):
    return MaskedProcess(build_schedule(schedule), mask_id=MASK, **kwargs)


def x0_batch(B=8, L=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(2, 30, (B, L), generator=g)


@pytest.mark.parametrize("schedule", sorted(SCHEDULES))
def test_schedule_endpoints_and_weight(schedule):
    s = build_schedule(schedule)
    t = torch.linspace(0.01, 0.99, 99, dtype=torch.float64)
    assert float(s.alpha(torch.tensor(0.0))) == pytest.approx(1.0)
    assert float(s.alpha(torch.tensor(1.0))) == 0.0
    alpha = s.alpha(t)
    assert torch.all(alpha[1:] < alpha[:-1])  # strictly decreasing
    # w(t) = -alpha'(t) / (1 - alpha(t)), checked against a central difference
    h = 1e-6
    derivative = (s.alpha(t + h) - s.alpha(t - h)) / (2 * h)
    assert torch.allclose(s.weight(t), -derivative / (1 - alpha), rtol=1e-4)


@settings(max_examples=30, deadline=None)
@given(st.sampled_from(sorted(SCHEDULES)), st.floats(1e-4, 1.0))
def test_loss_weight_finite_and_positive(schedule, t):
    w = build_schedule(schedule).weight(torch.tensor([t]))
    assert torch.isfinite(w).all() and (w > 0).all()


@settings(max_examples=25, deadline=None)
@given(st.sampled_from(sorted(SCHEDULES)), st.integers(0, 1000))
def test_q_sample_identity_at_0_prior_at_1(schedule, seed):
    p = process(schedule)
    x0 = x0_batch(seed=seed)
    g = torch.Generator().manual_seed(seed)
    assert torch.equal(p.q_sample(x0, torch.zeros(8), generator=g), x0)
    assert torch.equal(p.q_sample(x0, torch.ones(8), generator=g), p.prior(x0.shape, device="cpu"))


@settings(max_examples=25, deadline=None)
@given(st.sampled_from(sorted(SCHEDULES)), st.floats(0.05, 0.95), st.integers(0, 1000))
def test_masked_fraction_matches_alpha(schedule, t, seed):
    p = process(schedule)
    x0 = x0_batch(B=16, L=256, seed=seed)
    xt = p.q_sample(x0, torch.full((16,), t), generator=torch.Generator().manual_seed(seed))
    n = x0.numel()
    q = 1 - float(p.alpha(torch.tensor(t)))
    frac = float((xt == MASK).float().mean())
    assert abs(frac - q) < 5 * math.sqrt(q * (1 - q) / n) + 1e-9  # binomial tolerance
    assert torch.equal(xt[xt != MASK], x0[xt != MASK])  # unmasked tokens are untouched


def test_antithetic_times_are_stratified():
    p = process(t_min=0.0)
    t = p.sample_t(10, device="cpu", generator=torch.Generator().manual_seed(0))
    bins = torch.sort((t * 10).floor()).values
    assert torch.equal(bins, torch.arange(10.0))  # one time in each tenth of [0, 1]
    t2 = process(t_min=0.2).sample_t(100, device="cpu", generator=torch.Generator().manual_seed(1))
    assert t2.min() >= 0.2 and t2.max() <= 1.0


def test_loss_matches_loop_reference():
    p = process("cosine")
    g = torch.Generator().manual_seed(0)
    x0 = x0_batch(B=4, L=10)
    t = torch.tensor([0.1, 0.4, 0.7, 0.95])
    xt = p.q_sample(x0, t, generator=g)
    logits = torch.randn(4, 10, 32, generator=g)
    loss = p.loss(logits, x0, xt, t)
    ref = torch.zeros(4, 10)
    for b in range(4):
        w = float(p.schedule.weight(t[b : b + 1]))
        for i in range(10):
            if xt[b, i] == MASK:
                row = logits[b, i].clone()
                row[MASK] = -float("inf")  # SUBS: the mask token has zero probability
                ref[b, i] = w * -torch.log_softmax(row, -1)[x0[b, i]]
    assert torch.allclose(loss, ref, atol=1e-5)


def test_reverse_step_reveals_at_the_right_rate_and_finishes_at_zero():
    p = process()
    B, L = 64, 128
    xt = torch.full((B, L), MASK)
    logits = torch.randn(B, L, 32)
    g = torch.Generator().manual_seed(0)
    t, s = torch.full((B,), 0.8), torch.full((B,), 0.6)
    xs = p.reverse_step(logits, xt, t, s, generator=g)
    rate = (0.4 - 0.2) / (1 - 0.2)  # (alpha_s - alpha_t) / (1 - alpha_t)
    frac = float((xs != MASK).float().mean())
    assert abs(frac - rate) < 5 * math.sqrt(rate * (1 - rate) / (B * L))
    done = p.reverse_step(logits, xs, s, torch.zeros(B), generator=g)
    assert not (done == MASK).any()
    assert torch.equal(done[xs != MASK], xs[xs != MASK])  # revealed tokens never change


def test_q_sample_count_masks_exactly_k_valid_positions():
    p = process()
    x0 = x0_batch(B=5, L=12)
    valid = torch.ones(5, 12, dtype=torch.bool)
    valid[:, 9:] = False
    k = torch.tensor([1, 3, 5, 9, 0])
    xt = p.q_sample_count(x0, k, valid=valid, generator=torch.Generator().manual_seed(0))
    assert ((xt == MASK).sum(1) == k).all()
    assert not (xt[:, 9:] == MASK).any()


def test_count_estimator_equals_time_integral():
    """sum_k (1/k) E[CE | k masked] (the count form) equals the t-integral of the ELBO, computed exactly."""
    torch.manual_seed(0)
    L, V = 4, 6
    x0 = torch.tensor([[2, 3, 4, 5]])
    table = torch.randn(2**L, L, V)  # a fixed "network": logits depend on the mask pattern

    def ce_of_pattern(pattern):
        index = sum(1 << i for i in range(L) if pattern[i])
        logp = torch.log_softmax(table[index], -1)
        return sum(-float(logp[i, x0[0, i]]) for i in range(L) if pattern[i])

    patterns = [p for p in itertools.product([0, 1], repeat=L) if any(p)]
    by_count = sum(
        ce_of_pattern(p) / sum(p) / math.comb(L, sum(p)) for p in patterns
    )  # sum_k (1/k) * mean over patterns with k masks
    # time integral with alpha = 1 - t: int_0^1 (1/t) sum_patterns t^k (1-t)^(L-k) CE(pattern) dt
    ts = torch.linspace(0, 1, 200001, dtype=torch.float64)[1:]
    integrand = torch.zeros_like(ts)
    for p in patterns:
        k = sum(p)
        integrand += ts ** (k - 1) * (1 - ts) ** (L - k) * ce_of_pattern(p)
    by_time = float(torch.trapezoid(integrand, ts))
    assert by_count == pytest.approx(by_time, rel=1e-3)


def test_categorical_draws_follow_the_probabilities():
    from textdiffusion.processes import sample_categorical

    probs = torch.tensor([0.7, 0.2, 0.1, 0.0]).expand(200000, 4)
    draws = sample_categorical(probs, generator=torch.Generator().manual_seed(0))
    freq = torch.bincount(draws, minlength=4).double() / len(draws)
    assert torch.allclose(freq, torch.tensor([0.7, 0.2, 0.1, 0.0], dtype=torch.float64), atol=0.005)
    assert freq[3] == 0


def test_top_p_keeps_the_nucleus():
    from textdiffusion.processes import filter_logits

    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    probs = filter_logits(logits, top_p=0.7)
    assert torch.allclose(
        probs, torch.tensor([[0.5, 0.3, 0.0, 0.0]])
    )  # renormalised by the sampler's CDF
