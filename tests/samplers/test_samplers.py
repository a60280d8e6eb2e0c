from __future__ import annotations

import pytest
import torch

from textdiffusion.samplers import SAMPLERS, get_sampler

MASK = 1


def run(name, model, process, **kwargs):
    return SAMPLERS[name](model, process, (3, 16), kwargs.pop("steps", 8), **kwargs)


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_output_has_no_mask_and_is_reproducible(name, tiny_model, masked_process):
    a = run(name, tiny_model, masked_process, generator=torch.Generator().manual_seed(0))
    b = run(name, tiny_model, masked_process, generator=torch.Generator().manual_seed(0))
    c = run(name, tiny_model, masked_process, generator=torch.Generator().manual_seed(1))
    assert a.shape == (3, 16) and a.dtype == torch.long
    assert not (a == MASK).any()
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_fixed_positions_are_kept_and_callback_sees_each_step(name, tiny_model, masked_process):
    x_init = torch.full((3, 16), MASK)
    x_init[:, :5] = torch.arange(10, 15)
    fixed = torch.zeros(3, 16, dtype=torch.bool)
    fixed[:, :5] = True
    seen = []

    def callback(step, t, xt, logits):
        assert torch.equal(xt[:, :5], x_init[:, :5])
        seen.append((step, t))

    out = run(
        name,
        tiny_model,
        masked_process,
        x_init=x_init,
        fixed=fixed,
        callback=callback,
        generator=torch.Generator().manual_seed(0),
    )
    assert torch.equal(out[:, :5], x_init[:, :5])
    assert not (out == MASK).any()
    assert [s for s, _ in seen] == list(range(8))
    assert seen[-1][1] == 0.0


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_partial_noise_start(name, tiny_model, masked_process):
    x_init = torch.randint(2, 32, (3, 16))
    out = run(
        name,
        tiny_model,
        masked_process,
        x_init=x_init,
        t_start=0.3,
        generator=torch.Generator().manual_seed(0),
    )
    assert not (out == MASK).any()
    kept = (out == x_init).float().mean()
    assert kept > 0.5  # about 70% of the tokens are never noised at t = 0.3


class Counter(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model, self.config, self.calls = model, model.config, 0

    def forward(self, *args, **kwargs):
        self.calls += 1
        return self.model(*args, **kwargs)


def test_cache_skips_calls_when_nothing_changes(tiny_model, masked_process):
    plain, cached = Counter(tiny_model), Counter(tiny_model)
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    a = SAMPLERS["ancestral"](plain, masked_process, (1, 16), 64, generator=g())
    b = SAMPLERS["cached"](cached, masked_process, (1, 16), 64, generator=g())
    assert torch.equal(a, b)  # caching changes the cost, not the result
    assert plain.calls == 64
    assert cached.calls <= 17  # at most one call per step that revealed something (16 tokens) + 1


def test_confidence_by_threshold_stops_early(tiny_model, masked_process):
    counted = Counter(tiny_model)
    out = SAMPLERS["confidence"](
        counted,
        masked_process,
        (2, 16),
        16,
        threshold=0.01,
        generator=torch.Generator().manual_seed(0),
    )
    assert not (out == MASK).any()
    assert counted.calls < 16


def test_confidence_reveals_the_most_confident_first(masked_process):
    class Peaked(torch.nn.Module):
        """Position i predicts token 2 + i with confidence growing with i."""

        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))
            self.config = type("C", (), {"time_conditioning": False})()

        def forward(self, xt, t, **kwargs):
            B, L = xt.shape
            logits = torch.full((B, L, 32), -10.0)
            for i in range(L):
                logits[:, i, 2 + i] = float(i)
            return logits

    order = []
    SAMPLERS["confidence"](
        Peaked(),
        masked_process,
        (1, 8),
        8,
        temperature=1.0,
        callback=lambda s, t, xt, lg: order.append((xt[0] != MASK).nonzero().view(-1).tolist()),
        generator=torch.Generator().manual_seed(0),
    )
    assert order == [list(range(7 - k, 8)) for k in range(8)]  # position 7 (most confident) first


def test_unknown_sampler_names_the_value():
    with pytest.raises(ValueError, match="unknown sampler 'fast'"):
        get_sampler("fast")


def test_time_conditioned_model_refuses_cache(tiny_config, masked_process):
    import dataclasses

    from textdiffusion.networks import DiffusionTransformer

    model = DiffusionTransformer(dataclasses.replace(tiny_config, time_conditioning=True))
    with pytest.raises(ValueError, match="not time-conditioned"):
        SAMPLERS["cached"](model, masked_process, (1, 16), 4)


class TwoLevels(torch.nn.Module):
    """Position 0 spreads its prediction over 2 tokens (confidence 1/2 whatever is drawn), position 1 over 4 (1/4)."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))
        self.config = type("C", (), {"time_conditioning": False})()

    def forward(self, xt, t, **kwargs):
        B, L = xt.shape
        logits = torch.full((B, L, 32), -torch.inf)
        logits[:, 0, 2:4] = 0.0
        logits[:, 1, 4:8] = 0.0
        return logits


@pytest.mark.parametrize("tau", [0.5, 1.0, 3.0])
def test_sampled_order_draws_positions_by_tempered_confidence(tau, masked_process):
    first = []
    SAMPLERS["confidence"](
        TwoLevels(),
        masked_process,
        (4000, 2),
        2,
        order_temperature=tau,
        callback=lambda s, t, xt, lg: first.append(xt[:, 0] != MASK) if s == 0 else None,
        generator=torch.Generator().manual_seed(0),
    )
    # Gumbel-top-1 over log c / tau picks position 0 with probability c0^(1/tau) / (c0^(1/tau) + c1^(1/tau))
    expected = 0.5 ** (1 / tau) / (0.5 ** (1 / tau) + 0.25 ** (1 / tau))
    assert abs(first[0].float().mean().item() - expected) < 0.03  # 4000 rows: sd < 0.008


def test_sampled_order_is_reproducible_and_refuses_threshold(tiny_model, masked_process):
    kw = dict(order_temperature=1.0)
    a = run(
        "confidence", tiny_model, masked_process, generator=torch.Generator().manual_seed(0), **kw
    )
    b = run(
        "confidence", tiny_model, masked_process, generator=torch.Generator().manual_seed(0), **kw
    )
    assert torch.equal(a, b) and not (a == MASK).any()
    with pytest.raises(ValueError, match="cannot go with threshold"):
        run("confidence", tiny_model, masked_process, threshold=0.5, **kw)
    with pytest.raises(ValueError, match="order_temperature must be >= 0"):
        run("confidence", tiny_model, masked_process, order_temperature=-1.0)


class _Scripted(torch.nn.Module):
    """A denoiser that predicts token 7 with certainty at the first masked position of x0's run, and the
    terminator (0) once the run holds `word` tokens."""

    def __init__(self, word: int) -> None:
        super().__init__()
        self.config = type("C", (), {"vocab_size": 32})()
        self.word, self.weight = word, torch.nn.Parameter(torch.zeros(1))

    def forward(self, xt, t=None, **kwargs):
        B, L = xt.shape
        logits = torch.full((B, L, 32), -30.0)
        written = (xt == 7).sum(dim=1)  # (B,)
        logits[..., 7] = 0.0
        logits[written >= self.word, :, 7] = -30.0
        logits[written >= self.word, :, 0] = 0.0
        return logits


def test_left_order_writes_each_run_left_to_right_and_a_terminator_ends_it(masked_process):
    x_init = torch.tensor([[5, MASK, MASK, MASK, MASK, MASK, MASK, 6]])
    seen = []
    out = get_sampler("confidence")(
        _Scripted(word=3),
        masked_process,
        x_init.shape,
        6,
        x_init=x_init,
        fixed=x_init != MASK,
        order="left",
        terminator=0,
        callback=lambda s, t, xt, lg: seen.append(xt.clone()),
    )
    assert out.tolist() == [[5, 7, 7, 7, 0, 0, 0, 6]]
    # one position per step from the left; the drawn terminator ended the run: 4 calls, not 6
    assert [int((x == MASK).sum()) for x in seen] == [5, 4, 3, 0]
    with pytest.raises(ValueError, match="cannot go with threshold"):
        get_sampler("confidence")(
            _Scripted(1), masked_process, (1, 8), 4, order="left", threshold=0.5
        )
