from __future__ import annotations

import dataclasses

import pytest
import torch

from textdiffusion.config import ConfigError, ModelConfig
from textdiffusion.networks import Cond, DiffusionTransformer
from textdiffusion.samplers.autoregressive import new_cache


def test_shapes(tiny_model, tiny_config):
    x = torch.randint(0, 32, (3, 16))
    assert tiny_model(x, torch.rand(3)).shape == (3, 16, 32)
    assert tiny_model(x[:, :5], None, cond=x[:, :7]).shape == (
        3,
        5,
        32,
    )  # prefix is not in the output


def test_bidirectional_padding_is_ignored(tiny_model):
    x = torch.randint(0, 32, (1, 10))
    short = tiny_model(x, None)
    padded = torch.cat([x, torch.zeros(1, 6, dtype=torch.long)], 1)
    mask = torch.zeros(1, 16, dtype=torch.bool)
    mask[:, :10] = True
    long = tiny_model(padded, None, attention_mask=mask)
    assert torch.allclose(short, long[:, :10], atol=1e-5)


def test_prefix_padding_is_ignored(tiny_model):
    prefix = torch.randint(0, 32, (1, 4))
    x = torch.randint(0, 32, (1, 6))
    plain = tiny_model(x, None, cond=Cond(prefix=prefix))
    padded_prefix = torch.cat([prefix, torch.zeros(1, 3, dtype=torch.long)], 1)
    mask = torch.tensor([[True] * 4 + [False] * 3])
    padded = tiny_model(x, None, cond=Cond(prefix=padded_prefix, prefix_mask=mask))
    assert torch.allclose(plain, padded, atol=1e-5)


def test_the_prefix_conditions_the_output(tiny_model):
    x = torch.randint(0, 32, (1, 6))
    a = tiny_model(x, None, cond=torch.randint(0, 32, (1, 4)))
    b = tiny_model(x, None, cond=torch.randint(0, 32, (1, 4)))
    assert not torch.allclose(a, b)


def test_causal_model_does_not_look_ahead(tiny_config):
    torch.manual_seed(0)
    model = DiffusionTransformer(dataclasses.replace(tiny_config, causal=True)).eval()
    x = torch.randint(0, 32, (2, 12))
    y = x.clone()
    y[:, 8:] = torch.randint(0, 32, (2, 4))
    assert torch.allclose(model(x, None)[:, :8], model(y, None)[:, :8], atol=1e-5)
    assert not torch.allclose(model(x, None)[:, 8:], model(y, None)[:, 8:])


def test_kv_cache_matches_full_forward(tiny_config):
    torch.manual_seed(0)
    model = DiffusionTransformer(dataclasses.replace(tiny_config, causal=True)).eval()
    x = torch.randint(0, 32, (2, 12))
    cache = new_cache(model, 2, 16)
    steps = [model(x[:, :5], None, cache=cache, positions=torch.arange(5))]
    for p in range(5, 12):
        steps.append(model(x[:, p : p + 1], None, cache=cache, positions=torch.tensor([p])))
    assert torch.allclose(torch.cat(steps, 1), model(x, None), atol=1e-5)
    with pytest.raises(ValueError, match="causal"):
        DiffusionTransformer(tiny_config)(x, None, cache=cache, positions=torch.arange(12))


def test_time_and_label_conditioning(tiny_config):
    torch.manual_seed(0)
    model = DiffusionTransformer(
        dataclasses.replace(tiny_config, time_conditioning=True, n_labels=3)
    )
    for p in model.parameters():  # zero-initialised layers would hide the dependence
        torch.nn.init.normal_(p, std=0.2)
    x = torch.randint(0, 32, (2, 8))
    assert not torch.allclose(
        model(x, torch.tensor([0.1, 0.1])), model(x, torch.tensor([0.9, 0.9]))
    )
    lab = model(x, torch.rand(2), cond=Cond(label=torch.tensor([0, 1])))
    null = model(x, torch.rand(2))
    assert lab.shape == null.shape == (2, 8, 32)
    with pytest.raises(ValueError, match="time-conditioned"):
        model(x, None)


def test_too_long_input_is_an_error(tiny_model):
    with pytest.raises(ValueError, match="exceeds the model's max_len 16"):
        tiny_model(
            torch.zeros(1, 10, dtype=torch.long), None, cond=torch.zeros(1, 7, dtype=torch.long)
        )


def test_config_validation_names_the_flag():
    with pytest.raises(ConfigError, match="--dim"):
        ModelConfig(vocab_size=10, dim=30, n_heads=4)
    with pytest.raises(ConfigError, match="--n-layers"):
        ModelConfig(vocab_size=10, n_layers=0)


@pytest.mark.parametrize("align", [True, False])
def test_target_positions_restart_after_an_aligned_prefix(tiny_config, monkeypatch, align):
    seen = []
    model = DiffusionTransformer(dataclasses.replace(tiny_config, align_prefix=align))
    original = model.rotary

    def spy(positions):
        seen.append(positions.clone())
        return original(positions)

    monkeypatch.setattr(model, "rotary", spy)
    prefix_mask = torch.tensor([[True, True, True, False]])  # one padded prefix slot
    model(
        torch.zeros(1, 5, dtype=torch.long),
        None,
        cond=Cond(prefix=torch.zeros(1, 4, dtype=torch.long), prefix_mask=prefix_mask),
    )
    target = [0, 1, 2, 3, 4] if align else [3, 4, 5, 6, 7]
    assert seen[0].tolist() == [[0, 1, 2, 2] + target]


def test_rotary_lookup_matches_the_formula_and_stays_float32(tiny_config):
    from textdiffusion.networks.layers import rotary_tables

    model = DiffusionTransformer(tiny_config)
    head_dim = tiny_config.dim // tiny_config.n_heads
    positions = torch.randint(0, tiny_config.max_len, (3, 7))
    for pos in (positions, positions[0]):
        for got, want in zip(model.rotary(pos), rotary_tables(pos, head_dim)):
            assert got.shape == want.shape
            assert torch.equal(got, want)
    assert "rope_cos" not in model.state_dict()  # derived from the config, never saved
    half = model.to(torch.bfloat16)
    assert half.rope_cos.dtype == torch.float32 and half.embed.weight.dtype == torch.bfloat16
    assert torch.equal(half.rotary(positions)[1], rotary_tables(positions, head_dim)[1])


def test_autoregressive_sampling_beyond_max_len_is_refused(tiny_config):
    from textdiffusion.samplers.autoregressive import sample_autoregressive

    model = DiffusionTransformer(dataclasses.replace(tiny_config, causal=True)).eval()
    with pytest.raises(ValueError, match="max_len"):
        sample_autoregressive(model, (1, tiny_config.max_len + 1), bos_id=2)


@pytest.mark.parametrize("fp32_residual", [False, True])
def test_the_residual_stream_takes_the_autocast_dtype(tiny_config, fp32_residual):
    model = DiffusionTransformer(dataclasses.replace(tiny_config, fp32_residual=fp32_residual))
    seen = []
    model.blocks[1].register_forward_pre_hook(lambda block, args: seen.append(args[0].dtype))
    x = torch.randint(0, tiny_config.vocab_size, (1, 8))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(x, None)
    model(x, None)  # without autocast the stream stays float32
    assert seen == [torch.float32 if fp32_residual else torch.bfloat16, torch.float32]
    assert torch.isfinite(logits.float()).all()
