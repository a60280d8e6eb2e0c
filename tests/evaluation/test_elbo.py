from __future__ import annotations

import dataclasses
import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from textdiffusion.evaluation import autoregressive_nll, diffusion_nll, discrete_time_nll, windows
from textdiffusion.networks import DiffusionTransformer


def test_windows_pad_the_tail():
    x, valid = windows(list(range(10)), 4, pad_id=0)
    assert x.shape == (3, 4) and valid.sum() == 10 and not valid[2, 2:].any()


def exact_elbo(model, process, x0):
    """sum over every mask pattern of (1/k) / C(n, k) * CE(pattern): the ELBO with nothing left to chance."""
    L = x0.shape[1]
    total = 0.0
    for pattern in itertools.product([0, 1], repeat=L):
        k = sum(pattern)
        if k == 0:
            continue
        mask = torch.tensor([pattern], dtype=torch.bool)
        xt = torch.where(mask, torch.full_like(x0, process.mask_id), x0)
        with torch.no_grad():
            ce = float(process.cross_entropy(model(xt, None), x0, xt).sum())
        total += ce / k / math.comb(L, k)
    return total


def test_count_estimator_is_unbiased_and_stratification_helps(tiny_model, masked_process):
    x0 = torch.randint(2, 32, (1, 8), generator=torch.Generator().manual_seed(0))
    exact = exact_elbo(tiny_model, masked_process, x0)
    valid = torch.ones_like(x0, dtype=torch.bool)
    mean, var = diffusion_nll(
        tiny_model,
        masked_process,
        x0.repeat(64, 1),
        valid.repeat(64, 1),
        samples=16,
        generator=torch.Generator().manual_seed(1),
    )
    estimate = float(mean.mean())
    stderr = math.sqrt(float(mean.var()) / 64)
    assert abs(estimate - exact) < 4 * stderr + 1e-6
    assert float(var.mean()) > 0


def test_two_seeds_agree_within_the_reported_error(tiny_model, masked_process):
    x0 = torch.randint(2, 32, (16, 16), generator=torch.Generator().manual_seed(0))
    valid = torch.ones_like(x0, dtype=torch.bool)
    runs = [
        diffusion_nll(
            tiny_model,
            masked_process,
            x0,
            valid,
            samples=32,
            generator=torch.Generator().manual_seed(s),
        )
        for s in (0, 1)
    ]
    (m0, v0), (m1, v1) = runs
    assert abs(float(m0.sum() - m1.sum())) < 4 * math.sqrt(float(v0.sum() + v1.sum()))


def test_autoregressive_nll_is_exact(tiny_config):
    torch.manual_seed(0)
    model = DiffusionTransformer(dataclasses.replace(tiny_config, causal=True)).eval()
    x0 = torch.randint(2, 32, (2, 6))
    valid = torch.ones_like(x0, dtype=torch.bool)
    got = autoregressive_nll(model, x0, valid, bos_id=0)
    ref = torch.zeros(2, dtype=torch.float64)
    with torch.no_grad():
        for b in range(2):
            for i in range(6):
                inputs = torch.cat([torch.tensor([0]), x0[b, :i]])[None]
                ref[b] += -float(F.log_softmax(model(inputs, None)[0, -1], -1)[x0[b, i]])
    assert torch.allclose(got, ref, atol=1e-4)


def test_conditional_estimator_matches_the_exact_conditional_elbo(tiny_model, masked_process):
    from textdiffusion.networks import Cond

    g = torch.Generator().manual_seed(0)
    x0 = torch.randint(2, 32, (1, 6), generator=g)
    prefix = torch.randint(2, 32, (1, 5), generator=g)
    cond = Cond(prefix=prefix, prefix_mask=torch.ones_like(prefix, dtype=torch.bool))
    conditioned = lambda xt, t, **kw: tiny_model(xt, t, cond=cond)  # noqa: E731
    exact = exact_elbo(conditioned, masked_process, x0)
    assert abs(exact - exact_elbo(tiny_model, masked_process, x0)) > 1e-4  # the prefix matters
    many = Cond(prefix=prefix.repeat(64, 1), prefix_mask=cond.prefix_mask.repeat(64, 1))
    mean, _ = diffusion_nll(
        tiny_model,
        masked_process,
        x0.repeat(64, 1),
        torch.ones(64, 6, dtype=torch.bool),
        samples=8,
        batch_size=48,  # batches cut across rows: each must get its own rows of the condition
        generator=torch.Generator().manual_seed(1),
        cond=many,
    )
    stderr = math.sqrt(float(mean.var()) / 64)
    assert abs(float(mean.mean()) - exact) < 4 * stderr + 1e-6


def exact_discrete_elbo(model, process, x0, steps):
    """The T-step ELBO of the ancestral sampler with every mask pattern enumerated: sum over steps i of
    (alpha_{i-1} - alpha_i) / (1 - alpha_i) * E_{pattern ~ q(x_{t_i} | x_0)} [CE(pattern)]."""
    L = x0.shape[1]
    patterns = torch.tensor(list(itertools.product([0, 1], repeat=L)), dtype=torch.bool)  # (2^L, L)
    xt = torch.where(patterns, torch.full_like(x0, process.mask_id), x0)
    with torch.no_grad():
        ce = process.cross_entropy(model(xt, None), x0.expand_as(xt), xt).double().sum(dim=1)
    k = patterns.sum(dim=1).double()
    total = 0.0
    for i in range(1, steps + 1):
        t, s = torch.tensor(i / steps), torch.tensor((i - 1) / steps)
        a_t, a_s = float(process.alpha(t)), float(process.alpha(s))
        prob = (1 - a_t) ** k * a_t ** (L - k)  # (2^L,) chance of each pattern at t
        total += (a_s - a_t) / (1 - a_t) * float((prob * ce).sum())
    return total


@pytest.mark.parametrize("schedule", ["loglinear", "cosine"])
def test_discrete_time_estimator_matches_the_enumerated_bound(tiny_model, schedule):
    from textdiffusion.processes import MaskedProcess, build_schedule

    process = MaskedProcess(build_schedule(schedule), mask_id=1)
    x0 = torch.randint(2, 32, (1, 6), generator=torch.Generator().manual_seed(0))
    exact = {T: exact_discrete_elbo(tiny_model, process, x0, T) for T in (1, 5, 64, 1024)}
    gap = {T: abs(value - exact_elbo(tiny_model, process, x0)) for T, value in exact.items()}
    # more steps, closer to the continuous-time bound (from below here: an untrained model's guesses are no better
    # with more tokens revealed; for a trained model the bound falls with T, see test_cli)
    assert gap[1] > gap[5] > gap[64] > gap[1024] and gap[1024] < 1e-3
    valid = torch.ones(64, 6, dtype=torch.bool)
    for steps in (1, 5):
        mean, var = discrete_time_nll(
            tiny_model,
            process,
            x0.repeat(64, 1),
            valid,
            steps=steps,
            samples=8,
            batch_size=48,
            generator=torch.Generator().manual_seed(1),
        )
        if steps == 1:  # every token masked at once: nothing left to chance
            assert torch.allclose(mean, torch.full_like(mean, exact[1]), atol=1e-4)
            assert float(var.max()) == 0.0
        else:
            stderr = math.sqrt(float(mean.var()) / 64)
            assert abs(float(mean.mean()) - exact[steps]) < 4 * stderr + 1e-6


def test_discrete_time_bound_ignores_padding_and_refuses_other_processes(
    tiny_model, masked_process
):
    from textdiffusion.processes import UniformProcess, build_schedule

    x0 = torch.randint(2, 32, (4, 6), generator=torch.Generator().manual_seed(0))
    padded = torch.cat([x0, torch.zeros(4, 3, dtype=torch.long)], dim=1)
    valid = torch.arange(9)[None].expand(4, 9) < 6
    # one step masks everything: padding is masked too, but hidden from attention and left out of the sum
    plain, _ = discrete_time_nll(
        tiny_model, masked_process, x0, torch.ones_like(x0, dtype=torch.bool), steps=1
    )
    with_padding, _ = discrete_time_nll(tiny_model, masked_process, padded, valid, steps=1)
    assert torch.allclose(plain, with_padding, atol=1e-4)
    uniform = UniformProcess(build_schedule("loglinear"), vocab_size=32)
    with pytest.raises(ValueError, match="masked diffusion only"):
        discrete_time_nll(tiny_model, uniform, x0, torch.ones_like(x0, dtype=torch.bool), steps=4)
