"""Training losses: the diffusion ELBO of a forward process, or next-token cross-entropy for the AR baseline."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from textdiffusion.processes.base import uniform

SOURCE_SHARE_MAX = 1.25
"""A source-start step shows the source at a share s ~ U(0, 1.25) of the canvas, capped at 1: a fifth of the steps
show the whole source, the state the reverse process starts from."""


def masked_mean(values: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean of (B, L) `values` over positions where `mask` (B, L) is True (all positions when None)."""
    if mask is None:
        return values.mean()
    mask = mask.to(values.dtype)
    return (values * mask).sum() / mask.sum().clamp(min=1.0)


class DiffusionObjective:
    """ELBO per token (nats) of `process`: t ~ sample_t, x_t ~ q(x_t | x_0), loss(model(x_t, t), x_0, x_t, t).

    With `sparse_logits`, a process whose loss reads only some positions (`process.output_mask`: the masked ones of
    masked diffusion, about half) gets logits there only: the output layer and the float32 softmax shrink by that
    share, which matters with a large vocabulary. The trainer uses it on CPUs without `--compile`: the count of
    masked positions changes every step (a compiled graph wants static shapes), and on a GPU selecting the rows costs
    host-device syncs that cost more than the smaller output layer saves.
    """

    name = "diffusion"

    def __init__(self, process, *, sparse_logits: bool = True) -> None:
        self.process = process
        self.sparse_logits = sparse_logits and process.absorbing
        self.terms = process.loss

    def compile(self) -> None:
        """Compile the loss terms (float32 log-softmax, gather, weight) into fused kernels, beside the compiled
        network (1.011x for the ~85M-parameter step on an H200). Needs dense logits: static shapes."""
        self.sparse_logits = False
        self.terms = torch.compile(self.process.loss)

    def __call__(
        self,
        model: torch.nn.Module,
        x0: torch.Tensor,
        *,
        generator: torch.Generator | None = None,
        attention_mask: torch.Tensor | None = None,
        cond=None,
        blanks: torch.Tensor | None = None,
        prior: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """`blanks`: bool (B, L) positions masked whatever t (a language model's blanks, tasks/lm/blanks.py),
        scored by their plain cross-entropy -log p(x_0^i | x_t): the conditional likelihood of a blank given its
        context, not an ELBO term (whose weight w(t) would blow up at small t). `prior`: int64 (B, L), the source
        canvas of a source-start model (data/edits.py): see `bridge`."""
        if prior is not None:
            return self.bridge(
                model, x0, prior, generator=generator, attention_mask=attention_mask, cond=cond
            )
        t = self.process.sample_t(x0.shape[0], device=x0.device, generator=generator)
        xt = self.process.q_sample(x0, t, generator=generator)
        if blanks is not None:
            if not self.process.absorbing:
                raise ValueError("blanks (--blank-rate) need the masked process (--process masked)")
            xt = torch.where(blanks, self.process.mask_id, xt)
        output_mask = self.process.output_mask(xt) if self.sparse_logits else None
        logits = model(xt, t, cond=cond, attention_mask=attention_mask, output_mask=output_mask)
        terms = self.terms(logits, x0, xt, t)
        if blanks is not None:
            terms = torch.where(blanks, self.process.cross_entropy(logits, x0, xt), terms)
        return masked_mean(terms, attention_mask)

    def bridge(
        self,
        model: torch.nn.Module,
        x0: torch.Tensor,
        prior: torch.Tensor,
        *,
        generator: torch.Generator | None = None,
        attention_mask: torch.Tensor | None = None,
        cond=None,
    ) -> torch.Tensor:
        """The source-start loss: x_t mixes the target canvas x0 (B, L), the source canvas `prior` (B, L) and masks.
        Per row, a share s (SOURCE_SHARE_MAX) of positions shows the source token; of the rest, 1 - alpha(t) are
        masked. Every position that shows the source or a mask is scored by -log p(x_0^i | x_t), those where the
        source is already right included: keeping a token is a decision the model learns too. Nats per scored
        position (a cross-entropy, not an ELBO)."""
        if not self.process.absorbing:
            raise ValueError("a source-start model (--edit-gap) needs the masked process (--process masked)")
        B, L = x0.shape
        t = self.process.sample_t(B, device=x0.device, generator=generator)
        share = (uniform((B,), device=x0.device, generator=generator) * SOURCE_SHARE_MAX).clamp(max=1.0)
        show = uniform((B, L), device=x0.device, generator=generator) < share[:, None]
        masked = self.process.q_sample(x0, t, generator=generator)
        xt = torch.where(show, prior, masked)
        scored = show | (xt == self.process.mask_id)
        if attention_mask is not None:
            scored &= attention_mask
        output_mask = scored if self.sparse_logits else None
        logits = model(xt, t, cond=cond, attention_mask=attention_mask, output_mask=output_mask)
        logp = self.process.log_probs(logits)
        if output_mask is not None:  # (n, V) at the scored positions
            nll = -logp.gather(-1, x0[scored].unsqueeze(-1)).squeeze(-1)
            return nll.sum() / scored.sum().clamp(min=1)
        nll = -logp.gather(-1, x0.unsqueeze(-1)).squeeze(-1)  # (B, L)
        return masked_mean(nll, scored)


class AutoregressiveObjective:
    """Next-token cross-entropy (nats per token); the input is x_0 shifted right behind a BOS token."""

    name = "ar"

    def __init__(self, bos_id: int) -> None:
        self.bos_id = bos_id
        self.terms = next_token_nll

    def compile(self) -> None:
        """Compile the loss terms (float32 cross-entropy) into fused kernels, beside the compiled network."""
        self.terms = torch.compile(next_token_nll)

    def shift(self, x0: torch.Tensor) -> torch.Tensor:
        bos = torch.full_like(x0[:, :1], self.bos_id)
        return torch.cat([bos, x0[:, :-1]], dim=1)  # (B, L)

    def __call__(
        self,
        model: torch.nn.Module,
        x0: torch.Tensor,
        *,
        generator: torch.Generator | None = None,
        attention_mask: torch.Tensor | None = None,
        cond=None,
    ) -> torch.Tensor:
        logits = model(self.shift(x0), None, cond=cond, attention_mask=attention_mask)
        return masked_mean(self.terms(logits, x0), attention_mask)


def next_token_nll(logits: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
    """Cross-entropy (B, L) of the clean tokens x0 (B, L) under logits (B, L, V), in float32."""
    return F.cross_entropy(logits.float().transpose(1, 2), x0, reduction="none")


def build_objective(
    name: str, *, process, bos_id: int, sparse_logits: bool = True, block_size: int = 0
):
    """The training loss of `--objective NAME`; `block_size` > 0 (a block diffusion model) makes the diffusion
    objective the per-block one of BD3-LM."""
    if name == "diffusion" and block_size:
        return BlockDiffusionObjective(process, block_size=block_size, sparse_logits=sparse_logits)
    if name == "diffusion":
        return DiffusionObjective(process, sparse_logits=sparse_logits)
    if name == "ar":
        return AutoregressiveObjective(bos_id)
    raise ValueError(f"unknown objective {name!r}; choose diffusion or ar")


class BlockDiffusionObjective(DiffusionObjective):
    """Block diffusion ELBO per token (nats): BD3-LM (Arriola et al. 2025, eq. 6 and Alg. 1).

    The sequence is cut into blocks of `block_size` tokens; every block b gets its own time t_b (the times of all the
    batch's blocks stratified together, as MDLM's antithetic draw) and is masked as q(x_t | x_0) at t_b. One pass of
    the two-stream network `model(x_t, t, x0=x_0)` predicts every block given the clean blocks before it, and the loss
    is MDLM's weighted masked cross-entropy w(t_b) CE within each block:

        -log p(x_0) <= sum_b E_{t_b} [ w(t_b) sum_{i in b: x_t^i = mask} -log p_theta(x_0^i | x_t^b, x_0^{<b}) ].

    With one block of the whole context it is MDLM's loss.
    """

    name = "diffusion"

    def __init__(self, process, *, block_size: int, sparse_logits: bool = True) -> None:
        super().__init__(process, sparse_logits=sparse_logits)
        if block_size <= 0:
            raise ValueError(f"--block-size must be positive, got {block_size}")
        self.block_size = block_size

    def noise(
        self, x0: torch.Tensor, *, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """x_t (B, L) with each block masked at its own time, and those times (B * n_blocks,), block-major."""
        B, L = x0.shape
        if L % self.block_size:
            raise ValueError(
                f"training sequences of {L} tokens do not split into blocks of --block-size "
                f"{self.block_size}; choose a --seq-len that is a multiple of it"
            )
        rows = x0.reshape(-1, self.block_size)  # (B * n_blocks, block_size)
        t = self.process.sample_t(rows.shape[0], device=x0.device, generator=generator)
        xt = self.process.q_sample(rows, t, generator=generator).view(B, L)  # (B, L)
        return xt, t

    def __call__(
        self,
        model: torch.nn.Module,
        x0: torch.Tensor,
        *,
        generator: torch.Generator | None = None,
        attention_mask: torch.Tensor | None = None,
        cond=None,
    ) -> torch.Tensor:
        xt, t = self.noise(x0, generator=generator)
        output_mask = self.process.output_mask(xt) if self.sparse_logits else None
        logits = model(
            xt, None, x0=x0, cond=cond, attention_mask=attention_mask, output_mask=output_mask
        )
        # the loss terms per block: (B * n_blocks, block_size) rows, whose row-major order is that of (B, L), so
        # sparse logits (n, V) at the masked positions line up too
        rows = (-1, self.block_size)
        dense = logits.dim() == 3
        terms = self.terms(
            logits.reshape(-1, self.block_size, logits.shape[-1]) if dense else logits,
            x0.reshape(rows),
            xt.reshape(rows),
            t,
        ).view(x0.shape)  # (B, L)
        return masked_mean(terms, attention_mask)
