"""What every forward process provides, and the random draws they share."""

from __future__ import annotations

from typing import Protocol

import torch


class Process(Protocol):
    """The forward-process contract of docs/architecture.md: the math of q(x_t | x_0), its ELBO and one reverse step.

    Optional capabilities are declared, not probed:
    - `absorbing`: tokens only ever turn into the mask token (masked diffusion). Such a process also provides
      `q_sample_count(x0, count, *, valid, generator, scores)` (mask exactly `count` tokens: the count-stratified
      ELBO), `output_mask(xt)` (the positions whose logits the loss reads) and `cross_entropy(logits, x0, xt)`;
      samplers may unmask once and keep, and blanks can be scored by leaving them masked.
    - `continuous`: x_t are vectors, not ids (Gaussian diffusion). Such a process also provides `encode(ids)`,
      `decode(z)` and `endpoint_nll(x0, *, generator)` (the decoder and prior terms of its ELBO).
    """

    absorbing: bool
    continuous: bool

    def sample_t(
        self,
        batch_size: int,
        *,
        device: torch.device | str,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor: ...

    def q_sample(
        self, x0: torch.Tensor, t: torch.Tensor, *, generator: torch.Generator | None = None
    ) -> torch.Tensor: ...

    def prior(
        self,
        shape: tuple[int, ...],
        *,
        device: torch.device | str,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor: ...

    def loss(
        self, logits: torch.Tensor, x0: torch.Tensor, xt: torch.Tensor, t: torch.Tensor
    ) -> torch.Tensor: ...

    def reverse_step(
        self,
        logits: torch.Tensor,
        xt: torch.Tensor,
        t: torch.Tensor,
        s: torch.Tensor,
        *,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor: ...


def uniform(
    shape: tuple[int, ...],
    *,
    device: torch.device | str,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """U[0, 1) draws from `generator`, on `device` even when the generator lives elsewhere (same seed, same draws)."""
    gen_device = generator.device if generator is not None else torch.device(device)
    u = torch.rand(shape, generator=generator, device=gen_device, dtype=dtype)
    return u.to(device)


def normal(
    shape: tuple[int, ...],
    *,
    device: torch.device | str,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """N(0, 1) float32 draws from `generator`, on `device` even when the generator lives elsewhere."""
    gen_device = generator.device if generator is not None else torch.device(device)
    return torch.randn(shape, generator=generator, device=gen_device).to(device)


class ContinuousTimeProcess:
    """What the forward processes over t in [0, 1] share: the schedule alpha(t) and the training times.

    Args:
        schedule: alpha(t), the probability that a token is still clean at time t.
        t_min: smallest training time.
        antithetic: stratify a batch's times over [t_min, 1] (one shared uniform shift, MDLM's low-discrepancy
            sampler), which lowers the variance of the ELBO gradient.
    """

    absorbing = False
    """See `Process`: tokens only turn into the mask (q_sample_count, output_mask, cross_entropy)."""
    continuous = False
    """See `Process`: x_t are vectors (encode, decode, endpoint_nll)."""

    def __init__(self, schedule, *, t_min: float = 1e-3, antithetic: bool = True) -> None:
        self.schedule = schedule
        self.t_min = t_min
        self.antithetic = antithetic

    def alpha(self, t: torch.Tensor) -> torch.Tensor:
        return self.schedule.alpha(t)

    def sample_t(
        self,
        batch_size: int,
        *,
        device: torch.device | str,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Training times (B,) in [t_min, 1]."""
        if self.antithetic:
            shift = uniform((1,), device=device, generator=generator)
            u = (shift + torch.arange(batch_size, device=device) / batch_size) % 1.0
        else:
            u = uniform((batch_size,), device=device, generator=generator)
        return self.t_min + (1.0 - self.t_min) * u


def sample_categorical(
    probs: torch.Tensor, *, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Draw one index per row of `probs` (..., V) by inverting the CDF in float64.

    Float64 matters: with float32 Gumbel noise the rare tokens are under-drawn, which silently lowers diversity
    (Zheng et al. 2024, "Masked diffusion models are secretly time-agnostic masked models ...").

    Returns:
        int64 tensor (...,).
    """
    u = uniform(
        probs.shape[:-1] + (1,), device=probs.device, generator=generator, dtype=torch.float64
    )
    return categorical_from_uniform(probs, u)


def categorical_from_uniform(probs: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """The inverse-CDF draw of `sample_categorical` with its uniforms given.

    A sampler that needs tokens at only some rows draws `u` for every row (so the random stream does not depend on
    which rows are needed) and then inverts the CDF of the selected rows alone.

    Args:
        probs: (..., V) unnormalised probabilities (any float dtype).
        u: float64 (..., 1) U[0, 1) draws.

    Returns:
        int64 tensor (...,).
    """
    cdf = probs.cumsum(
        -1, dtype=torch.float64
    )  # (..., V), without a separate float64 copy of probs
    u = u * cdf[..., -1:]  # unnormalised rows stay exact
    index = torch.searchsorted(cdf, u, right=True).squeeze(-1)
    return index.clamp_(max=probs.shape[-1] - 1)


def filter_logits(
    logits: torch.Tensor, *, temperature: float = 1.0, top_p: float = 1.0
) -> torch.Tensor:
    """Temperature and nucleus (top-p, Holtzman et al. 2020) filtering; returns float32 probabilities (..., V)."""
    logits = logits.float()
    if temperature != 1.0:  # dividing by 1 would only cost a copy of (..., V)
        logits = logits / temperature
    probs = torch.softmax(logits, dim=-1)
    if top_p >= 1.0:
        return probs
    sorted_probs, order = probs.sort(dim=-1, descending=True)
    before = sorted_probs.cumsum(-1) - sorted_probs  # mass strictly above each token
    sorted_probs = sorted_probs.masked_fill(before >= top_p, 0.0)  # the top token always survives
    return torch.zeros_like(probs).scatter_(-1, order, sorted_probs)


class TokenNoiseProcess(ContinuousTimeProcess):
    """A process whose noise lives on the regular tokens, all ids but the special ones (uniform, Gaussian).

    `on(device)` holds the tables the process computes with, copied to each device once (no host-device copy per
    step): `regular` (V,) bool, `regular_ids` (N,), `bias` (V,) logits offset, -inf at special ids, plus a
    subclass's own from `tables()`.
    """

    def __init__(
        self,
        schedule,
        *,
        vocab_size: int,
        special_ids=(),
        t_min: float = 1e-3,
        antithetic: bool = True,
    ) -> None:
        super().__init__(schedule, t_min=t_min, antithetic=antithetic)
        self.vocab_size = vocab_size
        self.regular = torch.ones(vocab_size, dtype=torch.bool)
        self.regular[sorted({int(i) for i in special_ids})] = False
        self.regular_ids = self.regular.nonzero().squeeze(1)  # (N,)
        self.n = int(self.regular_ids.numel())
        if self.n < 2:
            raise ValueError(f"{type(self).__name__} needs at least 2 regular tokens, got {self.n}")
        self._on_device: dict[torch.device, dict[str, torch.Tensor]] = {}

    def tables(self) -> dict[str, torch.Tensor]:
        bias = torch.zeros(self.vocab_size).masked_fill(~self.regular, float("-inf"))
        return {"regular": self.regular, "regular_ids": self.regular_ids, "bias": bias}

    def on(self, device) -> dict[str, torch.Tensor]:
        device = torch.device(device)
        if device not in self._on_device:
            self._on_device[device] = {k: v.to(device) for k, v in self.tables().items()}
        return self._on_device[device]
