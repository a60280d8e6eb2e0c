from __future__ import annotations

import torch

from textdiffusion.networks import Cond
from textdiffusion.training.objectives import DiffusionObjective


def _loss_and_grads(model, objective, x0, **kwargs):
    model.zero_grad()
    loss = objective(model, x0, generator=torch.Generator().manual_seed(3), **kwargs)
    loss.backward()
    return loss.detach(), {
        n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None
    }


def test_sparse_logits_give_the_dense_loss_and_gradients(tiny_model, masked_process):
    """The output layer run on the masked positions only is the same ELBO, with the same gradients, padding and a
    conditioning prefix included."""
    generator = torch.Generator().manual_seed(0)
    x0 = torch.randint(2, 32, (4, 10), generator=generator)
    attention_mask = torch.ones_like(x0, dtype=torch.bool)
    attention_mask[1, 7:] = False
    cond = Cond(prefix=torch.randint(2, 32, (4, 5), generator=generator))
    kwargs = dict(attention_mask=attention_mask, cond=cond)
    dense_loss, dense = _loss_and_grads(
        tiny_model, DiffusionObjective(masked_process, sparse_logits=False), x0, **kwargs
    )
    sparse_loss, sparse = _loss_and_grads(
        tiny_model, DiffusionObjective(masked_process, sparse_logits=True), x0, **kwargs
    )
    assert torch.isfinite(dense_loss) and float(dense_loss) > 0
    torch.testing.assert_close(sparse_loss, dense_loss)
    assert sparse.keys() == dense.keys() and "head.weight" in sparse
    for name in dense:
        torch.testing.assert_close(sparse[name], dense[name], msg=name)


def test_output_mask_selects_rows_of_the_dense_logits(tiny_model):
    x = torch.randint(0, 32, (3, 10), generator=torch.Generator().manual_seed(1))
    t = torch.rand(3)
    output_mask = x % 3 == 0
    with torch.no_grad():
        dense = tiny_model(x, t)
        sparse = tiny_model(x, t, output_mask=output_mask)
    assert sparse.shape == (int(output_mask.sum()), dense.shape[-1])
    torch.testing.assert_close(sparse, dense[output_mask])


def test_compiled_loss_terms_give_the_eager_loss_and_gradients(tiny_model, masked_process):
    """`compile()` (what the Trainer does with --compile) fuses the loss terms without changing them."""
    from textdiffusion.training.objectives import AutoregressiveObjective

    x0 = torch.randint(2, 32, (3, 10), generator=torch.Generator().manual_seed(0))
    for make in (
        lambda: DiffusionObjective(masked_process, sparse_logits=False),
        lambda: AutoregressiveObjective(bos_id=0),
    ):
        eager_loss, eager = _loss_and_grads(tiny_model, make(), x0)
        objective = make()
        objective.compile()
        compiled_loss, compiled = _loss_and_grads(tiny_model, objective, x0)
        torch.testing.assert_close(compiled_loss, eager_loss)
        for name in eager:
            torch.testing.assert_close(compiled[name], eager[name], msg=name)
