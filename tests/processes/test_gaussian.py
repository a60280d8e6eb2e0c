"""Gaussian diffusion of analog-bit codes: codes, marginals, the ELBO integrand, the bound with the optimal
denoiser (Monte Carlo against the exact entropy), the reverse step."""

from __future__ import annotations

import math

import pytest
import torch

from textdiffusion.processes import GaussianProcess, analog_bits, build_schedule

SPECIAL = (0, 1)
V = 6  # regular tokens 2..5, codes of 3 bits


def make() -> GaussianProcess:
    return GaussianProcess(build_schedule("loglinear"), vocab_size=V, special_ids=SPECIAL)


def test_codes_round_trip_and_decode_to_the_nearest_regular_token():
    process = make()
    assert process.dim == analog_bits(V) == 3
    ids = torch.tensor([[2, 3, 4, 5]])
    assert torch.equal(process.decode(process.encode(ids)), ids)
    assert set(process.encode(ids).unique().tolist()) == {-1.0, 1.0}
    noisy = process.encode(ids) + 0.3 * torch.randn(
        1, 4, 3, generator=torch.Generator().manual_seed(0)
    )
    assert torch.equal(process.decode(noisy), ids)
    assert (
        process.decode(process.encode(torch.tensor([0, 1]))).ge(2).all()
    )  # specials are never decoded


@pytest.mark.parametrize("t", [0.1, 0.5, 0.9])
def test_q_sample_has_the_variance_preserving_marginal(t):
    process = make()
    x0 = torch.full((2000, 8), 5)
    z = process.q_sample(x0, torch.full((2000,), t), generator=torch.Generator().manual_seed(1))
    a = float(process.alpha(torch.tensor(t)))
    assert z.shape == (2000, 8, 3)
    assert torch.allclose(
        z.mean(dim=(0, 1)), math.sqrt(a) * process.encode(torch.tensor(5)), atol=0.03
    )
    assert z.var(dim=(0, 1)).sub(1 - a).abs().max() < 0.03


def test_loss_is_nonnegative_and_vanishes_for_a_perfect_prediction():
    process = make()
    g = torch.Generator().manual_seed(2)
    x0 = torch.randint(2, V, (8, 16), generator=g)
    t = torch.rand(8, generator=g)
    z = process.q_sample(x0, t, generator=g)
    assert (process.loss(torch.randn(8, 16, V, generator=g), x0, z, t) >= 0).all()
    perfect = torch.nn.functional.one_hot(x0, V).float() * 60.0
    assert process.loss(perfect, x0, z, t).abs().max() < 1e-6


def test_elbo_with_the_optimal_denoiser_matches_the_entropy_of_the_data():
    """For one-token data the optimal c_hat(z_t) = E[c(x_0) | z_t] is computable; the continuous-time bound with it
    is tight up to the end terms, so its Monte Carlo estimate must sit at H(p), and a worse denoiser above."""
    process = make()
    p = torch.tensor([0.55, 0.25, 0.15, 0.05], dtype=torch.float64)  # over tokens 2..5
    entropy = float(-(p * p.log()).sum())
    codes = process.encode(torch.arange(2, V)).double()  # (4, K)
    g = torch.Generator().manual_seed(3)
    n = 40000
    x0 = 2 + torch.multinomial(p, n, replacement=True, generator=g)[:, None]  # (n, 1)
    t = ((torch.arange(n) + torch.rand(n, generator=g)) / n)[
        torch.randperm(n, generator=g)
    ]  # stratified
    z = process.q_sample(x0, t, generator=g).double()  # (n, 1, K)
    a = process.alpha(t).double()[:, None, None]
    log_post = p.log() + (a.sqrt() * z @ codes.T) / (1 - a)  # (n, 1, 4), Bayes over the 4 codes
    optimal = torch.full((n, 1, V), -1e4, dtype=torch.float64)
    optimal[..., 2:] = log_post.log_softmax(-1)
    marginal_only = torch.full((n, 1, V), -1e4, dtype=torch.float64)
    marginal_only[..., 2:] = p.log()  # ignores z_t

    def nelbo(logits):
        terms = process.loss(logits.float(), x0, z.float(), t).double()
        return float((terms + process.endpoint_nll(x0, generator=g).double()).mean())

    best, worse = nelbo(optimal), nelbo(marginal_only)
    assert best == pytest.approx(entropy, abs=0.05)
    assert worse > entropy + 0.3


def test_one_reverse_step_with_a_perfect_predictor_lands_on_the_data():
    process = make()
    g = torch.Generator().manual_seed(4)
    x0 = torch.randint(2, V, (4, 32), generator=g)
    z = process.prior((4, 32), device="cpu", generator=g)
    perfect = torch.nn.functional.one_hot(x0, V).float() * 60.0
    zs = process.reverse_step(perfect, z, torch.ones(4), torch.zeros(4), generator=g)
    assert torch.allclose(zs, process.encode(x0), atol=1e-5)
    mid = process.reverse_step(perfect, z, torch.ones(4), torch.full((4,), 0.5), generator=g)
    assert mid.shape == (4, 32, 3) and not torch.allclose(mid, process.encode(x0))


def test_the_elbo_of_a_padded_window_is_finite():
    """Padding (a special token) has no code to decode: it must drop out of the sum, not turn it into NaN."""
    from textdiffusion.config import ModelConfig
    from textdiffusion.evaluation.elbo import diffusion_nll
    from textdiffusion.networks import DiffusionTransformer

    torch.manual_seed(0)
    config = ModelConfig(
        vocab_size=V, input_dim=3, time_conditioning=True, n_layers=1, n_heads=2, dim=16, max_len=16
    )
    x0 = torch.tensor([[2, 3, 4, 5, 0, 0]])
    valid = x0 != 0
    nll, _ = diffusion_nll(
        DiffusionTransformer(config).eval(),
        make(),
        x0,
        valid,
        samples=4,
        generator=torch.Generator().manual_seed(0),
    )
    assert torch.isfinite(nll).all() and (nll > 0).all()
