"""Masked (absorbing-state) diffusion: MDLM (Sahoo et al. 2024), equivalently MD4 (Shi et al. 2024).

Forward:  q(x_t | x_0) = alpha(t) [x_t = x_0] + (1 - alpha(t)) [x_t = mask], independently per position.
ELBO:     -log p(x_0) <= E_t [ w(t) sum_{i: x_t^i = mask} -log p_theta(x_0^i | x_t) ],  w(t) = -alpha'(t) / (1 - alpha(t))
          (MDLM eq. 10, with the SUBS parameterisation: the mask token gets zero probability and unmasked tokens
          are carried over).
Reverse:  from t to s < t a masked token is revealed with probability (alpha(s) - alpha(t)) / (1 - alpha(t)) and
          then drawn from p_theta(x_0 | x_t) (MDLM eq. 7); unmasked tokens never change.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from textdiffusion.processes.base import (
    ContinuousTimeProcess,
    categorical_from_uniform,
    filter_logits,
    uniform,
)
from textdiffusion.processes.schedules import Schedule


class MaskedProcess(ContinuousTimeProcess):
    """Absorbing-state forward process over token ids; parameter-free and device-agnostic.

    Args:
        schedule: alpha(t).
        mask_id: the absorbing token.
        t_min: smallest training time (the weight w(t) ~ 1/t diverges at 0).
        antithetic: stratify a batch's times over [t_min, 1].
    """

    absorbing = True

    def __init__(
        self, schedule: Schedule, *, mask_id: int, t_min: float = 1e-3, antithetic: bool = True
    ):
        super().__init__(schedule, t_min=t_min, antithetic=antithetic)
        self.mask_id = mask_id

    def q_sample(
        self, x0: torch.Tensor, t: torch.Tensor, *, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Mask each token of `x0` (B, L) independently with probability 1 - alpha(t) (t: (B,))."""
        u = uniform(x0.shape, device=x0.device, generator=generator)
        masked = u < (1.0 - self.alpha(t))[:, None]
        return torch.where(masked, torch.full_like(x0, self.mask_id), x0)

    def q_sample_count(
        self,
        x0: torch.Tensor,
        count: torch.Tensor,
        *,
        valid: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        scores: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Mask exactly `count[b]` uniformly chosen valid positions of each row of `x0` (B, L): the `count[b]` lowest
        of U[0, 1) `scores` (B, L), drawn from `generator` unless given.

        Used by evaluation: integrating the ELBO over t exactly leaves E_{k ~ U{1..n}} [ n/k sum_masked CE ] over the
        number k of masked tokens among n (Ou et al. 2024, "Your absorbing discrete diffusion secretly models the
        conditional distributions of clean data", Prop. 3.3), whose variance is far lower than sampling t.
        """
        if scores is None:
            scores = uniform(x0.shape, device=x0.device, generator=generator)
        if valid is not None:
            scores = scores.masked_fill(~valid, 2.0)  # invalid positions sort last, never masked
        ranks = scores.argsort(dim=-1).argsort(dim=-1)  # (B, L) rank of each position
        masked = ranks < count[:, None]
        return torch.where(masked, torch.full_like(x0, self.mask_id), x0)

    def prior(
        self,
        shape: tuple[int, ...],
        *,
        device: torch.device | str,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """x_1: every token masked."""
        return torch.full(shape, self.mask_id, dtype=torch.long, device=device)

    def log_probs(self, logits: torch.Tensor) -> torch.Tensor:
        """SUBS log p_theta(x_0 | x_t) (..., V) in float32: the mask token gets probability zero."""
        # `+ bias` rather than writing -inf into a copy: the in-place write would cost a (..., V) copy of the
        # gradient in the backward pass (tried and timed: no gain).
        logits = logits.float()
        bias = torch.zeros(logits.shape[-1], device=logits.device)
        bias[self.mask_id] = float("-inf")
        return F.log_softmax(logits + bias, dim=-1)

    def _subs_logits(self, logits: torch.Tensor) -> torch.Tensor:
        """float32 logits with the mask token at -inf, in one (..., V) copy (for sampling, without gradients).

        The float32 cast of bf16 logits is already a fresh tensor, so the mask slot is written into it in place;
        float32 logits are copied once, never modified.
        """
        subs = logits.float()
        if subs is logits:
            subs = subs.clone()
        subs[..., self.mask_id] = float("-inf")
        return subs

    def output_mask(self, xt: torch.Tensor) -> torch.Tensor:
        """The positions whose logits `loss` and `cross_entropy` read: the masked ones (bool (B, L)). The network
        can compute its output layer there only (`model(..., output_mask=...)`)."""
        return xt == self.mask_id

    def cross_entropy(
        self, logits: torch.Tensor, x0: torch.Tensor, xt: torch.Tensor
    ) -> torch.Tensor:
        """-log p_theta(x_0^i | x_t) at masked positions, 0 elsewhere: float32 (B, L).

        `logits` are (B, L, V), or (n, V) at the masked positions only, in row-major order (`output_mask`).
        """
        masked = self.output_mask(xt)
        if logits.dim() == 2:
            nll = -self.log_probs(logits).gather(-1, x0[masked].unsqueeze(-1)).squeeze(-1)  # (n,)
            return torch.zeros(xt.shape, device=nll.device).masked_scatter(masked, nll)
        logp = self.log_probs(logits)
        nll = -logp.gather(-1, x0.unsqueeze(-1)).squeeze(-1)  # (B, L)
        return torch.where(masked, nll, torch.zeros_like(nll))

    def loss(
        self, logits: torch.Tensor, x0: torch.Tensor, xt: torch.Tensor, t: torch.Tensor
    ) -> torch.Tensor:
        """Per-token continuous-time ELBO terms w(t) * CE at masked positions (B, L), float32, unreduced.

        Summed over a sequence and averaged over t ~ U[0, 1], this is an upper bound on -log p(x_0) in nats.
        `logits` may cover the masked positions only, as in `cross_entropy`.
        """
        return self.schedule.weight(t)[:, None] * self.cross_entropy(logits, x0, xt)

    def probs(
        self, logits: torch.Tensor, *, temperature: float = 1.0, top_p: float = 1.0
    ) -> torch.Tensor:
        """Sampling distribution over clean tokens (..., V): SUBS, temperature and nucleus filtering."""
        return filter_logits(self._subs_logits(logits), temperature=temperature, top_p=top_p)

    def reverse_step(
        self,
        logits: torch.Tensor,
        xt: torch.Tensor,
        t: torch.Tensor,
        s: torch.Tensor,
        *,
        generator: torch.Generator | None = None,
        temperature: float = 1.0,
        top_p: float = 1.0,
    ) -> torch.Tensor:
        """One ancestral step x_t -> x_s of MDLM (eq. 7). `t`, `s`: (B,) with s < t; at s = 0 nothing stays masked.

        Tokens are drawn only where a mask is revealed (about 1 / steps of them per step), not at all B * L positions:
        the float64 inverse CDF over (B, L, V) used to cost more than the network itself for small models, long
        sequences or large vocabularies. The uniforms are still drawn for every position, in the same order, so the
        result is the same for a given generator. Finding the revealed positions costs one host-device sync.
        """
        masked = xt == self.mask_id
        alpha_t, alpha_s = self.alpha(t)[:, None], self.alpha(s)[:, None]
        reveal_prob = ((alpha_s - alpha_t) / (1.0 - alpha_t).clamp(min=1e-12)).clamp(0.0, 1.0)
        u = uniform(xt.shape, device=xt.device, generator=generator, dtype=torch.float64)
        reveal = masked & (u < reveal_prob.double())
        u_token = uniform(
            xt.shape + (1,), device=xt.device, generator=generator, dtype=torch.float64
        )
        rows = reveal.nonzero(
            as_tuple=True
        )  # (n,) batch and position indices of the revealed tokens
        xs = xt.clone()
        if rows[0].numel() == 0:
            return xs
        probs = self.probs(logits[rows], temperature=temperature, top_p=top_p)  # (n, V)
        xs[rows] = categorical_from_uniform(probs, u_token[rows])
        return xs

    def __repr__(self) -> str:
        return (
            f"MaskedProcess(schedule={self.schedule!r}, mask_id={self.mask_id}, t_min={self.t_min})"
        )
