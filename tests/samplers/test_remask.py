from __future__ import annotations

import pytest
import torch

from textdiffusion.samplers import SAMPLERS
from textdiffusion.samplers.remask import (
    loop_alphas,
    remask_sigma,
    sample_remask,
    sigma_max,
)

MASK = 1


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("schedule", ["cap", "rescale", "loop"])
def test_keeps_fixed_leaves_no_mask_reproducible_and_calls_back_each_step(
    schedule, tiny_model, masked_process
):
    x_init = torch.full((3, 16), MASK)
    x_init[:, :5] = torch.arange(10, 15)
    fixed = torch.zeros(3, 16, dtype=torch.bool)
    fixed[:, :5] = True
    seen = []

    def callback(step, t, xt, logits):
        assert torch.equal(xt[:, :5], x_init[:, :5])
        seen.append(step)

    kwargs = dict(x_init=x_init, fixed=fixed, remask_schedule=schedule, eta=0.3)
    a = sample_remask(
        tiny_model, masked_process, (3, 16), 12, generator=gen(), callback=callback, **kwargs
    )
    b = sample_remask(tiny_model, masked_process, (3, 16), 12, generator=gen(), **kwargs)
    c = sample_remask(tiny_model, masked_process, (3, 16), 12, generator=gen(1), **kwargs)
    assert seen == list(range(12))
    assert torch.equal(a[:, :5], x_init[:, :5])
    assert not (a == MASK).any()
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize("schedule", ["cap", "rescale", "loop"])
def test_revealed_tokens_are_remasked_but_never_fixed_ones(schedule, tiny_model, masked_process):
    x_init = torch.full((4, 16), MASK)
    x_init[:, :4] = 7
    fixed = torch.zeros(4, 16, dtype=torch.bool)
    fixed[:, :4] = True
    remasked = {"free": 0, "fixed": 0}
    previous = []

    def callback(step, t, xt, logits):
        if previous:
            went_back = (previous[-1] != MASK) & (xt == MASK)  # (B, L) revealed before, masked now
            remasked["free"] += int(went_back[:, 4:].sum())
            remasked["fixed"] += int(went_back[:, :4].sum())
        previous.append(xt.clone())

    out = sample_remask(
        tiny_model,
        masked_process,
        (4, 16),
        32,
        x_init=x_init,
        fixed=fixed,
        remask_schedule=schedule,
        eta=0.5 if schedule != "loop" else 0.1,
        generator=gen(),
        callback=callback,
    )
    assert remasked["free"] > 0
    assert remasked["fixed"] == 0
    assert not (out == MASK).any()


def test_eta_zero_is_ancestral_sampling(tiny_model, masked_process):
    # with sigma = 0 the reveal probability is MDLM's (alpha_s - alpha_t) / (1 - alpha_t) at every step
    revealed = {"remask": [], "ancestral": []}
    for name, fn, kw in [
        ("remask", sample_remask, dict(eta=0.0)),
        ("ancestral", SAMPLERS["ancestral"], {}),
    ]:
        for seed in range(20):
            fn(
                tiny_model,
                masked_process,
                (4, 16),
                8,
                generator=gen(seed),
                callback=lambda s, t, xt, lg, n=name: revealed[n].append((xt != MASK).sum().item()),
                **kw,
            )
    # the same expected revealed counts step by step (binomial noise: 20 x 4 x 16 tokens)
    for step in range(8):
        a = sum(revealed["remask"][step::8]) / 20
        b = sum(revealed["ancestral"][step::8]) / 20
        assert abs(a - b) < 8, (step, a, b)


def test_schedules_match_the_paper_and_stay_in_range():
    alpha_t = torch.tensor([0.0, 0.3, 0.5, 0.9, 0.99], dtype=torch.float64)
    alpha_s = torch.tensor([0.1, 0.4, 0.6, 0.95, 1.0], dtype=torch.float64)
    bound = sigma_max(alpha_t, alpha_s)
    # min(1, (1 - alpha_s) / alpha_t); 1 where nothing is revealed yet (alpha_t = 0)
    expected = torch.tensor([1.0, 1.0, 0.8, 0.05 / 0.9, 0.0], dtype=torch.float64)
    assert torch.allclose(bound, expected)
    cap = remask_sigma("cap", alpha_t, alpha_s, eta=0.1)
    assert torch.allclose(cap, torch.tensor([0.1, 0.1, 0.1, 0.05 / 0.9, 0.0], dtype=torch.float64))
    rescale = remask_sigma("rescale", alpha_t, alpha_s, eta=0.5)
    assert torch.allclose(rescale, 0.5 * expected)
    for eta in (0.0, 0.3, 1.0):
        for name in ("cap", "rescale"):
            sigma = remask_sigma(name, alpha_t, alpha_s, eta=eta)
            assert ((sigma >= 0) & (sigma <= 1)).all()
            # the reveal probability (alpha_s - (1 - sigma) alpha_t) / (1 - alpha_t) is a probability too
            reveal = (alpha_s - (1 - sigma) * alpha_t) / (1 - alpha_t)
            assert ((reveal >= -1e-12) & (reveal <= 1 + 1e-12)).all()
    with pytest.raises(ValueError, match="unknown remask schedule 'sometimes'"):
        remask_sigma("sometimes", alpha_t, alpha_s, eta=0.1)


def test_loop_phases():
    grid = torch.linspace(1.0, 0.0, 21)  # steps of 0.05
    alphas, looping = loop_alphas(grid, 1.0, 0.0, t_on=0.55, t_off=0.05, alpha_on=0.9)
    assert alphas[0] == 0.0 and alphas[-1] == 1.0
    assert torch.allclose(alphas[9], torch.tensor(0.9, dtype=torch.float64))  # t = 0.55
    assert torch.allclose(
        alphas[4], torch.tensor(0.9 * 0.2 / 0.45, dtype=torch.float64)
    )  # t = 0.8, rising
    assert torch.allclose(alphas[9:20], torch.full((11,), 0.9, dtype=torch.float64))  # the plateau
    assert looping.tolist() == [False] * 9 + [True] * 10 + [False]
    assert (alphas[1:] >= alphas[:-1]).all()


def test_bad_knobs_name_the_value(tiny_model, masked_process):
    with pytest.raises(ValueError, match="eta must be in"):
        sample_remask(tiny_model, masked_process, (1, 16), 4, eta=1.5)
    with pytest.raises(ValueError, match="t_off < t_on"):
        sample_remask(
            tiny_model, masked_process, (1, 16), 4, remask_schedule="loop", t_on=0.1, t_off=0.2
        )
    with pytest.raises(ValueError, match="unknown remask schedule"):
        sample_remask(tiny_model, masked_process, (1, 16), 4, remask_schedule="often")


def test_loop_with_a_time_conditioned_model_sees_the_noise_level(tiny_config, masked_process):
    import dataclasses

    from textdiffusion.networks import DiffusionTransformer

    torch.manual_seed(0)
    model = DiffusionTransformer(dataclasses.replace(tiny_config, time_conditioning=True)).eval()
    times = []

    class Spy(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model, self.config = model, model.config

        def forward(self, xt, t, **kwargs):
            times.append(float(t[0]))
            return self.model(xt, t, **kwargs)

    sample_remask(Spy(), masked_process, (2, 16), 20, remask_schedule="loop", generator=gen())
    # loglinear alpha = 1 - t: on the loop's plateau (alpha 0.9) the denoiser is told t = 0.1
    assert times[10] == pytest.approx(0.1, abs=1e-6)
    assert times[0] == pytest.approx(1.0, abs=1e-6)


def test_pipeline_passes_the_sampler_options(trained_dir):
    from textdiffusion.config import ConfigError, SampleConfig
    from textdiffusion.pipelines import DiffusionPipeline, InputError

    pipe = DiffusionPipeline.from_pretrained(trained_dir)
    mask = pipe.tokenizer.mask_id

    def remasks(**options):
        states = []
        pipe.sample(
            (2, 32),
            steps=16,
            sampler="remask",
            generator=gen(),
            callback=lambda s, t, xt, lg: states.append(xt.clone()),
            **options,
        )
        return sum(int(((a != mask) & (b == mask)).sum()) for a, b in zip(states, states[1:]))

    assert remasks(eta=0.0) == 0
    assert remasks(eta=0.5, remask_schedule="rescale") > 0
    with pytest.raises(InputError, match="unknown sampling option 'etta'"):
        pipe.sample((1, 8), sampler="remask", etta=0.1)
    with pytest.raises(ConfigError, match="--eta must be in"):
        SampleConfig(eta=2.0)
    with pytest.raises(ConfigError, match="cannot go with --threshold"):
        SampleConfig(order_temperature=1.0, threshold=0.9)
