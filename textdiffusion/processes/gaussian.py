"""Continuous Gaussian diffusion of token embeddings: each token is the fixed code of its id's bits in {-1, +1}^K,
K = ceil(log2 V) ("analog bits", Chen et al. 2022), diffused with the variance-preserving process and trained with
the continuous-time ELBO of VDM (Kingma et al. 2021). The codes need no parameters, so the process stays
parameter-free and the network reads x_t through a linear input layer (`ModelConfig.input_dim` = K).

Schedule: log-SNR linear in t, lambda(t) = lambda_max - (lambda_max - lambda_min) t, a(t) = sigmoid(lambda(t)) the
          signal variance (VDM's fixed schedule). In continuous time the bound does not depend on the schedule
          between its end points; uniform t is then uniform log-SNR, the low-variance choice, so the masked
          processes' `--schedule` does not apply here.
Forward:  z_t = sqrt(a) c(x_0) + sqrt(1 - a) eps, eps ~ N(0, I) (B, L, K).
Model:    x0_hat = softmax(logits) over the regular tokens; c_hat = sum_v x0_hat_v c(v), the expected code.
ELBO:     -log p(x_0) <= E[-log p(x_0 | z_0)] + int_0^1 (1/2) (-SNR'(t)) |c(x_0) - c_hat|^2 dt + KL(q(z_1|x_0)||N(0,I))
          with -SNR'(t) = (lambda_max - lambda_min) SNR(t); the decoder p(x | z_0) is the Bayes posterior over the
          regular codes, and the prior term is K/2 (-log(1 - a(1))), about 5e-4 nats per token.
Reverse:  z_s ~ q(z_s | z_t, c_hat), the Gaussian posterior of the forward process with c(x_0) replaced by c_hat
          (DDPM); the last step lands on the mean and `decode` takes the nearest regular code.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
import torch.nn.functional as F

from textdiffusion.processes.base import TokenNoiseProcess, filter_logits, normal
from textdiffusion.processes.schedules import Schedule

LOG_SNR_MAX, LOG_SNR_MIN = 9.0, -9.0  # sigma(0) ~ 0.011 on codes 2 apart; a(1) ~ 1.2e-4
# KL(N(sqrt(a) c, (1 - a)) || N(0, 1)) per code dimension at t = 1, with c^2 = 1: -log(1 - a(1)) / 2
PRIOR_KL_PER_DIM = -0.5 * math.log1p(-1.0 / (1.0 + math.exp(-LOG_SNR_MIN)))


def analog_bits(vocab_size: int) -> int:
    """K: the number of bits of the largest id."""
    return max(1, math.ceil(math.log2(vocab_size)))


class GaussianProcess(TokenNoiseProcess):
    """Gaussian diffusion of the analog-bit codes of token ids; parameter-free and device-agnostic.

    Args:
        schedule: unused (the log-SNR schedule above); taken for the common interface.
        vocab_size: V, the model's output size.
        special_ids: ids that are never decoded nor predicted (pad, mask, bos, eos, sep).
        t_min: smallest training time.
        antithetic: stratify a batch's times over [t_min, 1].
    """

    continuous = True

    def __init__(
        self,
        schedule: Schedule,
        *,
        vocab_size: int,
        special_ids: Iterable[int] = (),
        t_min: float = 1e-3,
        antithetic: bool = True,
    ) -> None:
        super().__init__(
            schedule,
            vocab_size=vocab_size,
            special_ids=special_ids,
            t_min=t_min,
            antithetic=antithetic,
        )
        self.dim = analog_bits(vocab_size)
        ids = torch.arange(vocab_size)
        self.codes = ((ids[:, None] >> torch.arange(self.dim)) & 1).float() * 2 - 1  # (V, K)

    def tables(self) -> dict[str, torch.Tensor]:
        return {**super().tables(), "codes": self.codes}

    def log_snr(self, t: torch.Tensor) -> torch.Tensor:
        return LOG_SNR_MAX - (LOG_SNR_MAX - LOG_SNR_MIN) * t

    def alpha(self, t: torch.Tensor) -> torch.Tensor:
        """Signal variance a(t) = sigmoid(log-SNR)."""
        return torch.sigmoid(self.log_snr(t))

    def encode(self, ids: torch.Tensor) -> torch.Tensor:
        """The codes (..., K) of token ids (...)."""
        return self.on(ids.device)["codes"][ids]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The regular token whose code is nearest to each z (..., K): ids (...)."""
        tables = self.on(z.device)
        codes, bias = tables["codes"], tables["bias"]
        # |c|^2 = K for every code: the nearest is the one with the largest dot product
        return (z.float() @ codes.T + bias).argmax(-1)

    def q_sample(
        self, x0: torch.Tensor, t: torch.Tensor, *, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """z_t (B, L, K) for token ids `x0` (B, L) at times `t` (B,)."""
        a = self.alpha(t)[:, None, None]
        eps = normal(x0.shape + (self.dim,), device=x0.device, generator=generator)
        return a.sqrt() * self.encode(x0) + (1.0 - a).sqrt() * eps

    def prior(
        self,
        shape: tuple[int, ...],
        *,
        device: torch.device | str,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """z_1 ~ N(0, I), (*shape, K)."""
        return normal(tuple(shape) + (self.dim,), device=device, generator=generator)

    def predict(self, logits: torch.Tensor, *, temperature: float = 1.0, top_p: float = 1.0):
        """c_hat (..., K) float32: the code expected under x0_hat."""
        tables = self.on(logits.device)
        codes, bias = tables["codes"], tables["bias"]
        probs = filter_logits(logits.float() + bias, temperature=temperature, top_p=top_p)
        return probs @ codes

    def loss(
        self, logits: torch.Tensor, x0: torch.Tensor, xt: torch.Tensor, t: torch.Tensor
    ) -> torch.Tensor:
        """Per-token ELBO integrand (1/2)(-SNR'(t)) |c(x_0) - c_hat|^2 (B, L), float32 nats."""
        minus_dsnr = (LOG_SNR_MAX - LOG_SNR_MIN) * self.log_snr(t).exp()  # (B,)
        error = (self.encode(x0) - self.predict(logits)).pow(2).sum(-1)  # (B, L)
        return 0.5 * minus_dsnr[:, None] * error

    def endpoint_nll(
        self, x0: torch.Tensor, *, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """The two end terms of the ELBO per token (B, L): the decoder's -log p(x_0 | z_0), z_0 drawn from q (the Bayes
        posterior over the regular codes; 0 at special tokens such as padding), plus the prior's
        KL(q(z_1 | x_0) || N(0, I))."""
        t = torch.zeros(x0.shape[0], device=x0.device)
        z = self.q_sample(x0, t, generator=generator)
        a = self.alpha(t)[:, None, None]
        tables = self.on(x0.device)
        codes, bias = tables["codes"], tables["bias"]
        # log N(z; sqrt(a) c_v, (1 - a) I) up to a constant shared by all v: sqrt(a) z.c_v / (1 - a)
        scores = a.sqrt() * (z @ codes.T) / (1.0 - a) + bias
        decoder = -F.log_softmax(scores, dim=-1).gather(-1, x0.unsqueeze(-1)).squeeze(-1)
        decoder = torch.where(tables["regular"][x0], decoder, torch.zeros_like(decoder))
        return decoder + self.dim * PRIOR_KL_PER_DIM

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
        """z_t -> z_s ~ q(z_s | z_t, c_hat) (B, L, K); at s = 0 the mean c_hat itself (the last step goes to the
        noiseless end, one step past a(0) < 1)."""
        a_t = self.alpha(t)[:, None, None]
        a_s = torch.where(s > 0, self.alpha(s), torch.ones_like(s))  # s = 0: the clean end
        a_s = a_s[:, None, None]
        var_t, var_s = 1.0 - a_t, 1.0 - a_s
        ratio = a_t / a_s  # alpha_{t|s}^2
        var_ts = var_t - ratio * var_s  # sigma_{t|s}^2
        c_hat = self.predict(logits, temperature=temperature, top_p=top_p)
        mean = (ratio.sqrt() * var_s / var_t) * xt.float() + (a_s.sqrt() * var_ts / var_t) * c_hat
        std = (var_ts * var_s / var_t).clamp(min=0.0).sqrt()
        return mean + std * normal(xt.shape, device=xt.device, generator=generator)

    def __repr__(self) -> str:
        return f"GaussianProcess(log-SNR {LOG_SNR_MAX:g} to {LOG_SNR_MIN:g}, bits={self.dim}, t_min={self.t_min})"
