"""The block sampler: KV cache against the uncached two-stream reference, sliding windows, memory checks, CLI."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from textdiffusion.networks import DiffusionTransformer
from textdiffusion.samplers import SAMPLERS, sample_block, sample_cached
from textdiffusion.samplers.block import SamplingMemoryError, sampling_bytes

MASK = 1


@pytest.fixture()
def block_model(tiny_config):
    torch.manual_seed(0)
    return DiffusionTransformer(dataclasses.replace(tiny_config, block_size=4)).eval()


def draw(model, process, shape, steps=4, *, seed=0, **kwargs):
    return sample_block(
        model, process, shape, steps, generator=torch.Generator().manual_seed(seed), **kwargs
    )


def test_registered():
    assert SAMPLERS["block"] is sample_block


@pytest.mark.parametrize(
    "length", [16, 13, 4, 41]
)  # whole context, a cut block, one block, a sliding window
def test_the_kv_cache_gives_the_uncached_ids(block_model, masked_process, length):
    seen = {True: [], False: []}
    for use_cache in (True, False):
        out = draw(
            block_model,
            masked_process,
            (3, length),
            seed=1,
            use_cache=use_cache,
            callback=lambda step, t, xt, logits, c=use_cache: seen[c].append(logits.clone()),
        )
        seen[use_cache].append(out)
    assert torch.equal(seen[True][-1], seen[False][-1])
    assert seen[True][-1].shape == (3, length) and not (seen[True][-1] == MASK).any()
    for cached, uncached in zip(seen[True][:-1], seen[False][:-1]):
        torch.testing.assert_close(cached, uncached, rtol=0, atol=1e-4)


def test_same_seed_same_ids_and_seeds_differ(block_model, masked_process):
    a = draw(block_model, masked_process, (2, 24), seed=3)
    assert torch.equal(a, draw(block_model, masked_process, (2, 24), seed=3))
    assert not torch.equal(a, draw(block_model, masked_process, (2, 24), seed=4))


def test_a_long_text_slides_the_window_over_the_most_recent_blocks(block_model, masked_process):
    """Beyond the context a block reads only the last max_len - block_size clean tokens: a text whose start
    differs, followed by the same fixed tokens for a whole window, continues with the same ids."""
    length = 40  # 10 blocks of 4 in a 16-token context: a block reads the 12 tokens before it
    x_init = torch.full((2, length), MASK)
    fixed = torch.zeros(2, length, dtype=torch.bool)
    x_init[:, :16] = torch.randint(2, 32, (2, 16), generator=torch.Generator().manual_seed(0))
    fixed[:, :16] = True
    other = x_init.clone()
    other[:, :4] = (x_init[:, :4] + 3 - 2) % 30 + 2  # block 0 differs: out of the window of block 4
    a = draw(block_model, masked_process, (2, length), x_init=x_init, fixed=fixed, seed=5)
    b = draw(block_model, masked_process, (2, length), x_init=other, fixed=fixed, seed=5)
    assert torch.equal(a[:, :16], x_init[:, :16]) and torch.equal(b[:, :16], other[:, :16])
    assert torch.equal(a[:, 16:], b[:, 16:])
    # block 1 is inside the window of block 4: changing it changes what follows (the test can fail)
    third = x_init.clone()
    third[:, 4:8] = (x_init[:, 4:8] + 3 - 2) % 30 + 2
    c = draw(block_model, masked_process, (2, length), x_init=third, fixed=fixed, seed=5)
    assert not torch.equal(a[:, 16:], c[:, 16:])


def test_fixed_positions_are_kept_and_fixed_blocks_cost_no_call(block_model, masked_process):
    calls = []

    class Counting(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model, self.config = model, model.config

        def forward(self, *args, **kwargs):
            calls.append(args[0].shape[1])
            return self.model(*args, **kwargs)

    x_init = torch.full((1, 12), MASK)
    x_init[:, :9] = torch.arange(2, 11)
    fixed = x_init != MASK
    out = draw(Counting(block_model), masked_process, (1, 12), steps=8, x_init=x_init, fixed=fixed)
    assert torch.equal(out[:, :9], x_init[:, :9]) and not (out == MASK).any()
    # blocks 0 and 1 are the prompt: no call; block 2 first reads them and itself (12 tokens), then itself, once
    # after each step that revealed a token and while tokens are left (3 masked tokens: at most 3 calls)
    assert calls[0] == 12 and all(n == 4 for n in calls[1:]) and 1 <= len(calls) <= 3


def test_a_sample_beyond_memory_fails_before_allocating(block_model, masked_process):
    with pytest.raises(SamplingMemoryError, match="--length 1000000000000 with --n 2"):
        draw(block_model, masked_process, (2, 10**12))
    config = block_model.config
    assert sampling_bytes(config, (2, 8000)) > sampling_bytes(config, (2, 4000))


def test_one_block_of_the_whole_context_samples_as_the_cached_sampler(tiny_model, masked_process):
    """Block size = context is today's masked model: the same ids as `cached`, for a model without blocks and for
    a block model with one block (same weights)."""
    whole = DiffusionTransformer(dataclasses.replace(tiny_model.config, block_size=16)).eval()
    whole.load_state_dict(tiny_model.state_dict())
    for steps in (4, 32):
        reference = sample_cached(
            tiny_model, masked_process, (3, 16), steps, generator=torch.Generator().manual_seed(2)
        )
        assert torch.equal(draw(tiny_model, masked_process, (3, 16), steps, seed=2), reference)
        assert torch.equal(draw(whole, masked_process, (3, 16), steps, seed=2), reference)


def test_wrong_models_and_options_fail_clearly(tiny_model, block_model, masked_process):
    with pytest.raises(ValueError, match="cannot sample 20 tokens.*--block-size"):
        draw(tiny_model, masked_process, (1, 20))
    with pytest.raises(ValueError, match="--sampler block"):
        sample_cached(block_model, masked_process, (1, 8), 4)
    with pytest.raises(ValueError, match="padding"):
        draw(
            block_model, masked_process, (1, 8), attention_mask=torch.zeros(1, 8, dtype=torch.bool)
        )


def test_train_block_size_4_then_generate_beyond_the_context_and_eval(
    tmp_path, corpus_file, capsys
):
    from textdiffusion.cli import main

    out = tmp_path / "model"
    main(
        [
            "train", "--out", str(out), "--data", str(corpus_file), "--preset", "tiny",
            "--max-len", "32", "--block-size", "4", "--steps", "3", "--batch-size", "4",
            "--warmup-steps", "1", "--device", "cpu", "--quiet",
        ]
    )  # fmt: skip
    saved = json.loads((out / "config.json").read_text())
    assert saved["model"]["block_size"] == 4 and saved["sample"]["sampler"] == "block"
    capsys.readouterr()
    main(["generate", "--model", str(out), "--n", "2", "--length", "70", "--steps", "4", "--json"])
    texts = json.loads(capsys.readouterr().out)["texts"]
    assert len(texts) == 2 and all(len(t) == 70 for t in texts)
    main(["eval", "--model", str(out), "--data", str(corpus_file), "--samples", "2", "--max-windows",
          "2", "--steps", "4", "--json"])  # fmt: skip
    report = json.loads(capsys.readouterr().out)
    assert report["n_tokens"] == 64 and report["bits_per_char"] > 0
    assert report["by_steps"][0]["sampler"] == "block"
    with pytest.raises(SystemExit):
        main(["generate", "--model", str(out), "--length", str(10**13)])
    assert "--length 10000000000000" in capsys.readouterr().err
