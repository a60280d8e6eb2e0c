"""Block diffusion (BD3-LM): the two-stream mask, the network on [x_t ; x_0], its objective and its ELBO."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from textdiffusion.config import ConfigError, ModelConfig
from textdiffusion.networks import DiffusionTransformer
from textdiffusion.networks.layers import block_diffusion_mask
from textdiffusion.training.objectives import (
    BlockDiffusionObjective,
    DiffusionObjective,
    build_objective,
)

MASK = 1


def block_model(tiny_config, block_size: int, *, seed: int = 0) -> DiffusionTransformer:
    torch.manual_seed(seed)
    return DiffusionTransformer(dataclasses.replace(tiny_config, block_size=block_size)).eval()


def same_weights(model: DiffusionTransformer, **changes) -> DiffusionTransformer:
    other = DiffusionTransformer(dataclasses.replace(model.config, **changes)).eval()
    other.load_state_dict(model.state_dict())
    return other


def noised(x0: torch.Tensor, seed: int, rate: float = 0.5) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.where(torch.rand(x0.shape, generator=g) < rate, MASK, x0)


def reference_mask(length: int, block_size: int) -> torch.Tensor:
    """The BD3-LM mask written out one query and key at a time, from the rules of the paper."""
    mask = torch.zeros(2 * length, 2 * length, dtype=torch.bool)
    for q in range(2 * length):
        for k in range(2 * length):
            q_clean, k_clean = q >= length, k >= length
            qb, kb = (q % length) // block_size, (k % length) // block_size
            if not q_clean and not k_clean:  # x_t reads its own block
                mask[q, k] = qb == kb
            elif not q_clean and k_clean:  # x_t reads the clean blocks before its own
                mask[q, k] = kb < qb
            elif q_clean and k_clean:  # x_0 is block-causal
                mask[q, k] = kb <= qb
    return mask


@pytest.mark.parametrize("length, block_size", [(8, 2), (12, 4), (10, 4), (6, 6), (5, 1)])
def test_mask_matches_the_slow_reference(length, block_size):
    assert torch.equal(block_diffusion_mask(length, block_size), reference_mask(length, block_size))


def test_block_size_must_divide_the_context_and_is_checked_at_construction():
    with pytest.raises(ConfigError, match="--block-size \\(5\\) must divide the context --max-len"):
        ModelConfig(max_len=16, block_size=5)
    with pytest.raises(ConfigError, match="--block-size"):
        ModelConfig(max_len=16, block_size=4, causal=True)
    with pytest.raises(ConfigError, match="--block-size"):
        ModelConfig(max_len=16, block_size=-1)


def test_cli_refuses_a_bad_block_size_before_building_anything():
    from textdiffusion.cli.common import CLIError
    from textdiffusion.cli.train import TrainArgs, run_settings

    with pytest.raises(CLIError, match="--block-size \\(6\\) must divide"):
        run_settings(TrainArgs(out="unused", preset="tiny", max_len=32, block_size=6))
    with pytest.raises(CLIError, match="--block-size"):
        run_settings(TrainArgs(out="unused", preset="tiny", block_size=4, process="uniform"))
    settings = run_settings(TrainArgs(out="unused", preset="tiny", max_len=32, block_size=4))
    assert settings["model"].block_size == 4 and settings["sample"].sampler == "block"


@pytest.mark.parametrize("padded", [False, True])
def test_one_block_of_the_whole_context_is_the_plain_model(tiny_config, padded):
    model = block_model(tiny_config, tiny_config.max_len)
    plain = same_weights(model, block_size=0)
    x0 = torch.randint(2, 32, (3, 16), generator=torch.Generator().manual_seed(0))
    xt = noised(x0, 1)
    valid = None
    if padded:
        valid = torch.ones(3, 16, dtype=torch.bool)
        valid[1, 11:] = False
    out = xt == MASK
    torch.testing.assert_close(
        model(xt, None, x0=x0, attention_mask=valid), plain(xt, None, attention_mask=valid)
    )
    torch.testing.assert_close(
        model(xt, None, x0=x0, output_mask=out), plain(xt, None, output_mask=out)
    )


def test_one_block_of_the_whole_context_has_the_masked_diffusion_loss(tiny_config, masked_process):
    model = block_model(tiny_config, tiny_config.max_len)
    plain = same_weights(model, block_size=0)
    x0 = torch.randint(2, 32, (4, 16), generator=torch.Generator().manual_seed(0))
    for sparse in (False, True):
        block = BlockDiffusionObjective(masked_process, block_size=16, sparse_logits=sparse)
        mdlm = DiffusionObjective(masked_process, sparse_logits=sparse)
        a = block(model, x0, generator=torch.Generator().manual_seed(3))
        b = mdlm(plain, x0, generator=torch.Generator().manual_seed(3))
        torch.testing.assert_close(a, b)


def test_the_objective_noises_each_block_at_its_own_time(masked_process):
    objective = build_objective("diffusion", process=masked_process, bos_id=0, block_size=4)
    assert isinstance(objective, BlockDiffusionObjective)
    x0 = torch.randint(2, 32, (64, 16), generator=torch.Generator().manual_seed(0))
    xt, t = objective.noise(x0, generator=torch.Generator().manual_seed(1))
    assert t.shape == (64 * 4,)
    # the masked share of each block follows its own time: 1 - alpha(t_b) = t_b (loglinear)
    share = (xt == MASK).float().view(-1, 4).mean(dim=1)  # (B * n_blocks,)
    assert torch.corrcoef(torch.stack([share, t]))[0, 1] > 0.8
    assert (xt != MASK).eq(xt == x0).all()  # unmasked tokens are clean


def test_the_objective_names_the_flags_for_a_ragged_sequence(tiny_config, masked_process):
    objective = BlockDiffusionObjective(masked_process, block_size=4)
    with pytest.raises(ValueError, match="--block-size 4; choose a --seq-len"):
        objective(block_model(tiny_config, 4), torch.randint(2, 32, (2, 14)))


def test_block_b_reads_no_later_token_and_not_its_own_clean_copy(tiny_config):
    model = block_model(tiny_config, 4)
    g = torch.Generator().manual_seed(0)
    x0 = torch.randint(2, 32, (2, 16), generator=g)
    xt = noised(x0, 1)
    logits = model(xt, None, x0=x0)
    for b in range(4):
        later = slice(4 * (b + 1), None)
        x0_p, xt_p = x0.clone(), xt.clone()
        x0_p[:, later] = torch.randint(2, 32, x0_p[:, later].shape, generator=g)
        xt_p[:, later] = torch.randint(1, 32, xt_p[:, later].shape, generator=g)
        # the clean copy of block b itself: x_t block b must not see it (that would leak the answer)
        x0_p[:, 4 * b : 4 * (b + 1)] = torch.randint(2, 32, (2, 4), generator=g)
        block = slice(4 * b, 4 * (b + 1))
        torch.testing.assert_close(
            model(xt_p, None, x0=x0_p)[:, block], logits[:, block], rtol=0, atol=1e-5
        )
    # ... and does read the clean blocks before it (the test could fail)
    x0_p = x0.clone()
    x0_p[:, :4] = (x0[:, :4] + 1 - 2) % 30 + 2
    assert not torch.allclose(model(xt, None, x0=x0_p)[:, 4:], logits[:, 4:], atol=1e-4)


def test_cached_blocks_give_the_two_stream_logits(tiny_config):
    from textdiffusion.samplers.autoregressive import new_cache

    model = block_model(tiny_config, 4)
    x0 = torch.randint(2, 32, (2, 16), generator=torch.Generator().manual_seed(0))
    xt = noised(x0, 1, rate=0.7)
    reference = model(xt, None, x0=x0)
    cache = new_cache(model, 2, 16)
    positions = torch.arange(16)
    # blocks 0 and 1 clean plus the noisy block 2, in one call; then block 2 clean and the noisy block 3
    first = model(
        torch.cat([x0[:, :8], xt[:, 8:12]], dim=1), None, cache=cache, positions=positions[:12]
    )
    torch.testing.assert_close(first[:, 8:], reference[:, 8:12], rtol=0, atol=1e-5)
    second = model(
        torch.cat([x0[:, 8:12], xt[:, 12:]], dim=1), None, cache=cache, positions=positions[8:]
    )
    torch.testing.assert_close(second[:, 4:], reference[:, 12:], rtol=0, atol=1e-5)


def test_a_block_model_needs_its_clean_stream(tiny_config):
    model = block_model(tiny_config, 4)
    xt = torch.full((1, 16), MASK)
    with pytest.raises(ValueError, match="--sampler block"):
        model(xt, None)
    with pytest.raises(ValueError, match="x0"):
        same_weights(model, block_size=0)(xt, None, x0=xt)


def test_block_elbo_of_one_block_is_the_masked_diffusion_elbo(tiny_config, masked_process):
    from textdiffusion.evaluation.elbo import block_diffusion_nll, diffusion_nll, discrete_time_nll

    model = block_model(tiny_config, 16)
    plain = same_weights(model, block_size=0)
    x0 = torch.randint(2, 32, (3, 16), generator=torch.Generator().manual_seed(0))
    valid = torch.ones_like(x0, dtype=torch.bool)
    valid[2, 9:] = False
    for steps, bound in ((None, diffusion_nll), (8, discrete_time_nll)):
        kwargs = {} if steps is None else {"steps": steps}
        a = block_diffusion_nll(
            model,
            masked_process,
            x0,
            valid,
            samples=6,
            generator=torch.Generator().manual_seed(2),
            **kwargs,
        )
        b = bound(
            plain,
            masked_process,
            x0,
            valid,
            samples=6,
            generator=torch.Generator().manual_seed(2),
            **kwargs,
        )
        torch.testing.assert_close(a, b)
    # diffusion_nll hands a block model to block_diffusion_nll
    c = diffusion_nll(
        model, masked_process, x0, valid, samples=6, generator=torch.Generator().manual_seed(2)
    )
    torch.testing.assert_close(
        c,
        block_diffusion_nll(
            model, masked_process, x0, valid, samples=6, generator=torch.Generator().manual_seed(2)
        ),
    )


def test_one_step_block_bound_is_the_exact_nll_of_drawing_each_block_at_once(
    tiny_config, masked_process
):
    from textdiffusion.evaluation.elbo import block_diffusion_nll

    model = block_model(tiny_config, 4)
    x0 = torch.randint(2, 32, (2, 16), generator=torch.Generator().manual_seed(0))
    valid = torch.ones_like(x0, dtype=torch.bool)
    mean, var = block_diffusion_nll(model, masked_process, x0, valid, samples=4, steps=1)
    # every block fully masked, read against the clean blocks before it: sum of -log p(x_i | x^{<b})
    logp = masked_process.log_probs(model(torch.full_like(x0, MASK), None, x0=x0))
    exact = -logp.gather(-1, x0[..., None]).squeeze(-1).double().sum(dim=1)
    torch.testing.assert_close(mean, exact)
    assert var.abs().max() < 1e-9


def test_block_elbo_is_near_the_continuous_bound_and_decreases_with_steps(
    tiny_config, masked_process
):
    """A block model trained a little: the T-step bounds fall towards the continuous one as T grows."""
    from textdiffusion.evaluation.elbo import block_diffusion_nll

    model = block_model(tiny_config, 4).train()
    objective = BlockDiffusionObjective(masked_process, block_size=4)
    # an easy language: every row counts up from a random start
    start = torch.randint(2, 16, (64, 1), generator=torch.Generator().manual_seed(0))
    x0 = start + torch.arange(16) % 14
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    g = torch.Generator().manual_seed(1)
    first = None
    for _ in range(40):
        loss = objective(model, x0, generator=g)
        first = first if first is not None else loss.item()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    assert loss.item() < 0.5 * first
    valid = torch.ones(8, 16, dtype=torch.bool)

    def bound(steps):
        return float(
            block_diffusion_nll(
                model,
                masked_process,
                x0[:8],
                valid,
                samples=16,
                steps=steps,
                generator=torch.Generator().manual_seed(5),
            )[0].mean()
        )

    one, many, continuous = bound(1), bound(64), bound(None)
    assert one > many and abs(many - continuous) < 0.1 * (one - continuous)
