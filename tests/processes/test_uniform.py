"""The uniform-noise process: marginals, the ELBO integrand, the bound itself (exact enumeration), the reverse step."""

from __future__ import annotations

import math

import pytest
import torch

from textdiffusion.processes import UniformProcess, build_schedule

SPECIAL = (0, 1)
V = 6  # regular tokens 2..5: N = 4


def make(schedule: str = "loglinear") -> UniformProcess:
    return UniformProcess(build_schedule(schedule), vocab_size=V, special_ids=SPECIAL)


@pytest.mark.parametrize("t", [0.2, 0.5, 0.9])
def test_q_sample_keeps_a_token_with_probability_alpha_plus_noise_share(t):
    process = make()
    x0 = torch.full((400, 50), 3)
    x0[:, 0] = 0  # a special token (padding) is never noised
    xt = process.q_sample(x0, torch.full((400,), t), generator=torch.Generator().manual_seed(0))
    assert (xt[:, 0] == 0).all()
    assert set(xt[:, 1:].unique().tolist()) <= {2, 3, 4, 5}
    alpha = 1.0 - t
    expected = alpha + (1.0 - alpha) / 4
    kept = (xt[:, 1:] == 3).double().mean().item()
    n = xt[:, 1:].numel()
    assert abs(kept - expected) < 5 * math.sqrt(expected * (1 - expected) / n)


def test_prior_is_uniform_over_regular_tokens():
    ids = make().prior((200, 100), device="cpu", generator=torch.Generator().manual_seed(1))
    counts = torch.bincount(ids.reshape(-1), minlength=V).double() / ids.numel()
    assert counts[list(SPECIAL)].sum() == 0
    assert torch.allclose(counts[2:], torch.full((4,), 0.25, dtype=torch.float64), atol=0.01)


@pytest.mark.parametrize("schedule", ["loglinear", "cosine", "linear"])
def test_loss_is_nonnegative_and_vanishes_for_a_perfect_prediction(schedule):
    process = make(schedule)
    g = torch.Generator().manual_seed(2)
    x0 = torch.randint(2, V, (8, 16), generator=g)
    t = torch.rand(8, generator=g)
    xt = process.q_sample(x0, t, generator=g)
    random_logits = torch.randn(8, 16, V, generator=g)
    assert (process.loss(random_logits, x0, xt, t) >= 0).all()
    perfect = torch.nn.functional.one_hot(x0, V).float() * 60.0
    assert process.loss(perfect, x0, xt, t).abs().max() < 1e-4
    assert process.loss(random_logits, x0, xt, t).mean() > 0.01


def exact_nelbo(process: UniformProcess, predictor, *, points: int = 4000) -> torch.Tensor:
    """-ELBO (nats) of each regular token a as one-token data: int_0^1 sum_k q_t(k | a) loss(k, a, t) dt, by the
    midpoint rule; `predictor(k, t)` gives the logits (V,) at x_t = k."""
    regular = list(range(2, V))
    n = len(regular)
    t = (torch.arange(points, dtype=torch.float64) + 0.5) / points
    out = torch.zeros(len(regular), dtype=torch.float64)
    for ia, a in enumerate(regular):
        for k in regular:
            logits = torch.stack([predictor(k, float(s)) for s in t]).float()[:, None]  # (T, 1, V)
            x0 = torch.full((points, 1), a)
            xt = torch.full((points, 1), k)
            loss = process.loss(logits, x0, xt, t.float()).double()[:, 0]  # (T,)
            alpha = process.alpha(t)
            q = alpha * (k == a) + (1 - alpha) / n
            out[ia] += (q * loss).mean()
    return out


def test_exact_elbo_bounds_the_entropy_of_the_data_and_is_tight_at_the_optimum():
    """E_{a ~ p} -ELBO(a) >= H(p) for any predictor. For one-token data the best x0_hat is the data distribution p
    itself (it gives the true ratios p_t(j) / p_t(k)), and then the bound is tight."""
    process = make()
    p = torch.tensor([0.55, 0.25, 0.15, 0.05], dtype=torch.float64)  # over tokens 2..5
    entropy = -(p * p.log()).sum()

    def logits_of(dist: torch.Tensor) -> torch.Tensor:
        logits = torch.full((V,), -30.0, dtype=torch.float64)
        logits[2:] = dist.log()
        return logits

    def posterior(
        k: int, t: float
    ) -> torch.Tensor:  # p(x_0 | x_t = k): a natural guess, not the optimum
        like = (1.0 - t) * (torch.arange(2, V) == k).double() + t / 4  # q_t(k | a), a = 2..5
        return logits_of(p * like / (p * like).sum())

    def score(predictor) -> float:
        return float((p * exact_nelbo(process, predictor, points=1000)).sum())

    best = score(lambda k, t: logits_of(p))
    assert best == pytest.approx(float(entropy), abs=2e-3)
    for other in (posterior, lambda k, t: logits_of(torch.full((4,), 0.25, dtype=torch.float64))):
        assert score(other) > entropy + 0.05


def test_point_mass_data_with_a_perfect_predictor_costs_nothing():
    process = make()
    perfect = lambda k, t: torch.tensor([-30.0, -30.0, -30.0, 30.0, -30.0, -30.0])  # noqa: E731 always token 3
    assert exact_nelbo(process, perfect, points=500)[1] < 1e-3  # token 3 is index 1 of 2..5


def test_one_reverse_step_with_a_perfect_predictor_lands_on_the_data():
    process = make()
    g = torch.Generator().manual_seed(3)
    x0 = torch.randint(2, V, (4, 32), generator=g)
    xt = process.prior((4, 32), device="cpu", generator=g)
    logits = torch.nn.functional.one_hot(x0, V).float() * 60.0
    xs = process.reverse_step(logits, xt, torch.ones(4), torch.zeros(4), generator=g)
    assert torch.equal(xs, x0)


def test_reverse_step_keeps_special_tokens_and_draws_regular_ones():
    process = make()
    g = torch.Generator().manual_seed(4)
    xt = process.prior((4, 32), device="cpu", generator=g)
    xt[:, -3:] = 0  # padding
    xs = process.reverse_step(
        torch.randn(4, 32, V, generator=g), xt, torch.full((4,), 0.7), torch.full((4,), 0.6)
    )
    assert (xs[:, -3:] == 0).all()
    assert set(xs[:, :-3].unique().tolist()) <= {2, 3, 4, 5}


def test_small_reverse_steps_rarely_jump():
    """From t to s = t - dt a token moves with probability about (1 - beta)(N - 1)/N, beta = alpha_t / alpha_s."""
    process = make()
    g = torch.Generator().manual_seed(5)
    xt = process.prior((64, 256), device="cpu", generator=g)
    flat = torch.zeros(64, 256, V)  # x0_hat uniform over the regular tokens
    t, s = torch.full((64,), 0.5), torch.full((64,), 0.49)
    moved = (process.reverse_step(flat, xt, t, s, generator=g) != xt).double().mean().item()
    beta = 0.5 / 0.51
    assert moved == pytest.approx((1 - beta) * 3 / 4, rel=0.25)
