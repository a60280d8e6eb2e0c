"""Uniform-noise discrete diffusion in continuous time (D3PM-uniform, Austin et al. 2021; UDLM, Schiff et al. 2024),
trained with the score-entropy ELBO of SEDD (Lou et al. 2024, Thm. 3.6).

Forward:  q(x_t | x_0) = alpha(t) [x_t = x_0] + (1 - alpha(t)) / N over the N regular tokens (special tokens never
          appear), independently per position: a CTMC jumping from each token to each other at rate sigma(t) / N,
          sigma = -alpha' / alpha.
Model:    x0_hat = softmax(logits) over the regular tokens; it implies q_t(j | x0_hat) = alpha x0_hat_j + (1 - alpha)/N
          and the reverse-rate ratios s_j = q_t(j | x0_hat) / q_t(x_t | x0_hat).
ELBO:     -log p(x_0) <= int_0^1 E_{x_t} (sigma(t) / N) sum_{j != x_t} [ s_j - r_j log s_j + r_j (log r_j - 1) ] dt,
          r_j = q_t(j | x_0) / q_t(x_t | x_0) the true ratios; each term is >= 0 and vanishes when x0_hat = x_0. The
          prior term KL(q_1 || uniform) is 0 because alpha(1) = 0 for every schedule.
Reverse:  x_s ~ q(x_s | x_t, x0_hat) ∝ [beta [x_s = x_t] + (1 - beta) / N] [alpha_s x0_hat + (1 - alpha_s) / N] with
          beta = alpha_t / alpha_s; as s -> t it jumps to j at the ELBO's rate (sigma / N) s_j. Every position may
          change at every step, unlike masked diffusion.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from textdiffusion.processes.base import (
    TokenNoiseProcess,
    filter_logits,
    sample_categorical,
    uniform,
)

ALPHA_FLOOR = 1e-6  # alpha is kept in [floor, 1 - floor] where it is divided by or logged


class UniformProcess(TokenNoiseProcess):
    """Uniform-noise forward process over token ids; parameter-free and device-agnostic.

    Args:
        schedule: alpha(t).
        vocab_size: V, the model's output size.
        special_ids: ids that are never noise nor output (pad, mask, bos, eos, sep).
        t_min: smallest training time.
        antithetic: stratify a batch's times over [t_min, 1].
    """

    def sigma(self, t: torch.Tensor) -> torch.Tensor:
        """Jump rate -alpha'/alpha = w(t) (1 - alpha) / alpha, with w the masked ELBO weight -alpha'/(1 - alpha)."""
        alpha = self.alpha(t).clamp(ALPHA_FLOOR, 1.0 - ALPHA_FLOOR)
        return self.schedule.weight(t) * (1.0 - alpha) / alpha

    def _random_tokens(
        self, shape: tuple[int, ...], *, device, generator: torch.Generator | None
    ) -> torch.Tensor:
        """Regular token ids drawn uniformly (from float64 uniforms, so the draw does not depend on the device)."""
        u = uniform(shape, device=device, generator=generator, dtype=torch.float64)
        index = (u * self.n).long().clamp_(max=self.n - 1)
        return self.on(device)["regular_ids"][index]

    def q_sample(
        self, x0: torch.Tensor, t: torch.Tensor, *, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Replace each token of `x0` (B, L) by a uniformly drawn regular token with probability 1 - alpha(t)."""
        u = uniform(x0.shape, device=x0.device, generator=generator)
        noise = self._random_tokens(x0.shape, device=x0.device, generator=generator)
        resample = (u < (1.0 - self.alpha(t))[:, None]) & self.on(x0.device)["regular"][x0]
        return torch.where(resample, noise, x0)

    def prior(
        self,
        shape: tuple[int, ...],
        *,
        device: torch.device | str,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """x_1: uniformly random regular tokens."""
        return self._random_tokens(shape, device=device, generator=generator)

    def log_probs(self, logits: torch.Tensor) -> torch.Tensor:
        """log x0_hat (..., V) in float32: the special tokens get probability zero."""
        return F.log_softmax(logits.float() + self.on(logits.device)["bias"], dim=-1)

    def loss(
        self, logits: torch.Tensor, x0: torch.Tensor, xt: torch.Tensor, t: torch.Tensor
    ) -> torch.Tensor:
        """Per-token continuous-time ELBO integrand (B, L) at times `t`, float32, unreduced (nats).

        Written as r_j (expm1(y_j) - y_j), y_j = log s_j - log r_j, which has no cancellation when s ~ r (late
        times, where sigma is large and both ratios are close to 1). Positions holding a special token score 0.
        """
        regular = self.on(logits.device)["regular"]
        alpha = self.alpha(t).clamp(ALPHA_FLOOR, 1.0 - ALPHA_FLOOR)[:, None, None]  # (B, 1, 1)
        log_noise = torch.log((1.0 - alpha) / self.n)  # log((1 - alpha) / N)
        # log q_t(j | x0_hat) and log q_t(j | x0) for every j: (B, L, V)
        log_model = torch.logaddexp(torch.log(alpha) + self.log_probs(logits), log_noise)
        onehot = F.one_hot(x0, logits.shape[-1]).bool()
        log_true = torch.where(onehot, torch.log(alpha + (1.0 - alpha) / self.n), log_noise)
        at_xt = xt.unsqueeze(-1)
        log_s = log_model - log_model.gather(-1, at_xt)
        log_r = log_true - log_true.gather(-1, at_xt)
        y = log_s - log_r
        terms = log_r.exp() * (torch.expm1(y) - y)  # (B, L, V), >= 0
        others = regular & ~F.one_hot(xt, logits.shape[-1]).bool()  # j regular and j != x_t
        terms = torch.where(others, terms, torch.zeros_like(terms))
        per_token = self.sigma(t)[:, None] / self.n * terms.sum(-1)
        return torch.where(regular[xt] & regular[x0], per_token, torch.zeros_like(per_token))

    def probs(
        self, logits: torch.Tensor, *, temperature: float = 1.0, top_p: float = 1.0
    ) -> torch.Tensor:
        """x0_hat after temperature and nucleus filtering (..., V), float32; special tokens get zero."""
        return filter_logits(
            logits.float() + self.on(logits.device)["bias"], temperature=temperature, top_p=top_p
        )

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
        """One ancestral step x_t -> x_s: a draw from q(x_s | x_t, x0_hat) at every position (float64 CDF).

        `t`, `s`: (B,) with s < t; at s = 0 the draw is x0_hat reweighted by the chance of having jumped to x_t.
        Positions holding a special token (e.g. batch padding) are left as they are."""
        alpha_t, alpha_s = self.alpha(t)[:, None, None], self.alpha(s)[:, None, None]
        beta = alpha_t / alpha_s.clamp(min=ALPHA_FLOOR)  # (B, 1, 1)
        x0_hat = self.probs(logits, temperature=temperature, top_p=top_p).double()
        marginal = alpha_s * x0_hat + (1.0 - alpha_s) / self.n * self.on(logits.device)["regular"]
        stay = F.one_hot(xt, logits.shape[-1]).double()
        posterior = marginal * ((1.0 - beta) / self.n + beta * stay)  # (B, L, V) unnormalised
        xs = sample_categorical(posterior, generator=generator)
        return torch.where(self.on(xt.device)["regular"][xt], xs, xt)

    def __repr__(self) -> str:
        return f"UniformProcess(schedule={self.schedule!r}, regular tokens={self.n}, t_min={self.t_min})"
