"""What every task pipeline shares: loading and saving, sampler defaults, and one call into a sampler.

A pipeline only decides x_init, the fixed positions, t_start and cond; the sampler does the rest.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from textdiffusion.checkpoint import CheckpointConfig, Pretrained, load_pretrained, save_pretrained
from textdiffusion.data.seq2seq import pad_pairs
from textdiffusion.data.textform import TextForm, read_form
from textdiffusion.data.tokenizers import Tokenizer
from textdiffusion.networks import Cond
from textdiffusion.samplers import SAMPLER_OPTIONS, get_sampler


class InputError(ValueError):
    """The text given to a pipeline cannot be processed (empty, too long, ...); the message says why."""


class SuppressTokens(nn.Module):
    """Wraps a denoiser so that some token ids (special tokens) are never predicted; the network is untouched."""

    def __init__(self, model: nn.Module, token_ids: list[int]) -> None:
        super().__init__()
        self.model = model
        self.config = model.config
        bias = torch.zeros(model.config.vocab_size, device=next(model.parameters()).device)
        bias[token_ids] = float("-inf")
        self.register_buffer(
            "bias", bias, persistent=False
        )  # on the model's device: no copy per call

    def forward(self, xt, t=None, **kwargs):
        return self.model(xt, t, **kwargs) + self.bias


class SuppressAt(nn.Module):
    """Wraps a denoiser so that one token id is never predicted where `where` (B, L) is True (PAD at the first
    position of a blank, at the source tokens of a canvas that may not lose them)."""

    def __init__(self, model: nn.Module, where: torch.Tensor, token_id: int) -> None:
        super().__init__()
        self.model, self.config = model, model.config
        self.where, self.token_id = where, token_id

    def forward(self, xt, t=None, **kwargs):
        logits = self.model(xt, t, **kwargs).clone()  # (B, L, V)
        logits[..., self.token_id] = logits[..., self.token_id].masked_fill(
            self.where, float("-inf")
        )
        return logits


class ClassifierFreeGuidance(nn.Module):
    """Wraps a label-conditioned denoiser: log p(x | y) pushed away from the unlabelled log p(x),
    u + scale * (c - u) on log-probabilities (Ho & Salimans 2022). scale 1 is the conditional model; above 1 the
    label weighs more. Both predictions come from one call on a doubled batch (the null label is `n_labels`)."""

    def __init__(self, model: nn.Module, scale: float) -> None:
        super().__init__()
        self.model, self.config, self.scale = model, model.config, scale

    def forward(self, xt, t=None, *, cond=None, **kwargs):
        if cond is None or cond.label is None or self.scale == 1.0:
            return self.model(xt, t, cond=cond, **kwargs)
        B = xt.shape[0]
        rows = torch.arange(B, device=xt.device).repeat(2)
        doubled = cond.index(rows)
        doubled.label = torch.cat([cond.label, torch.full_like(cond.label, self.config.n_labels)])
        kwargs = {k: None if v is None else v[rows] for k, v in kwargs.items()}
        logits = self.model(
            xt[rows], None if t is None else t[rows], cond=doubled, **kwargs
        ).float()
        c, u = logits.log_softmax(dim=-1).chunk(2)
        return u + self.scale * (c - u)


@dataclasses.dataclass
class SampleOutput:
    ids: torch.Tensor
    """int64 (B, L) generated ids."""
    seconds: float
    network_calls: int


class DiffusionPipeline:
    """Tokenizer + model + process + sampler defaults. Subclasses implement `__call__` for one task."""

    task = "generate"

    def __init__(self, pretrained: Pretrained) -> None:
        self.pretrained = pretrained
        self.model, self.tokenizer, self.process = (
            pretrained.model,
            pretrained.tokenizer,
            pretrained.process,
        )
        self.config: CheckpointConfig = pretrained.config
        if self.config.objective != "diffusion":
            raise InputError(
                f"{pretrained.path} is an autoregressive ({self.config.objective}) model; diffusion pipelines "
                "need a diffusion model"
            )
        # special tokens, and the byte tokens a character tokenizer never trained on, are never generated
        never = (self.tokenizer.special_ids - self._allowed_specials()) | set(
            self.tokenizer.byte_fallback_ids()
        )
        self.suppressed = sorted(never)
        self.denoiser = SuppressTokens(self.model, self.suppressed)
        # how the training text was written (lower-cased, tokenised); None: text goes in and out as typed
        self.text_form: TextForm | None = read_form(
            self.config.to_dict(), where=f"{pretrained.path}/config.json"
        )

    def _allowed_specials(self) -> set[int]:
        return set()

    @classmethod
    def from_pretrained(
        cls, name_or_path: str | os.PathLike, *, device: str = "cpu"
    ) -> DiffusionPipeline:
        """Load by shipped name (e.g. "shakespeare-char"), local folder, or Hugging Face hub id."""
        return cls(load_pretrained(name_or_path, device=device))

    def save_pretrained(
        self, directory: str | os.PathLike, *, dtype: torch.dtype | None = None
    ) -> Path:
        return save_pretrained(
            self.model, self.tokenizer, directory, config=self.config, dtype=dtype
        )

    def push_to_hub(self, repo_id: str, *, private: bool = False, token: str | None = None) -> str:
        """Upload the model (the `save_pretrained` files) to the Hugging Face hub repo `repo_id`, creating it if
        needed; returns the commit URL. Needs the network and a hub token; raises `textdiffusion.hub.HubError`."""
        import tempfile

        from textdiffusion.hub import push_folder

        with tempfile.TemporaryDirectory() as tmp:
            folder = self.save_pretrained(Path(tmp) / "model")
            return push_folder(folder, repo_id, private=private, token=token)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def max_len(self) -> int:
        return self.model.config.max_len

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text)

    def decode(self, ids: torch.Tensor) -> list[str]:
        return [self.tokenizer.decode(row.tolist()) for row in ids]

    def generator(self, seed: int | None) -> torch.Generator | None:
        return None if seed is None else torch.Generator().manual_seed(seed)

    def sample(
        self,
        shape: tuple[int, int],
        *,
        steps: int | None = None,
        sampler: str | None = None,
        temperature: float | None = None,
        top_p: float | None = None,
        threshold: float | None = None,
        generator: torch.Generator | None = None,
        x_init: torch.Tensor | None = None,
        fixed: torch.Tensor | None = None,
        t_start: float = 1.0,
        cond: Any = None,
        attention_mask: torch.Tensor | None = None,
        callback: Callable | None = None,
        guidance: float | None = None,
        terminator: int | None = None,
        **options: Any,
    ) -> SampleOutput:
        """Run the sampler with the model's saved defaults for every argument left as None. `guidance`: the
        classifier-free guidance scale of a label-conditioned model (`cond.label`; None or 1: none). `terminator`:
        the token that ends a run of masks (PAD of a variable-length blank), for the confidence sampler.
        `options`: other `SampleConfig` fields (a sampler's knobs, `SAMPLER_OPTIONS`), e.g. eta=0.05."""
        unknown = sorted(set(options) - {f.name for f in dataclasses.fields(self.config.sample)})
        if unknown:
            raise InputError(f"unknown sampling option {unknown[0]!r}")
        given = dict(
            sampler=sampler,
            steps=steps,
            temperature=temperature,
            top_p=top_p,
            threshold=threshold,
            **options,
        )
        # SampleConfig checks the values (0 steps, a negative temperature) with the messages of a saved config
        settings = dataclasses.replace(
            self.config.sample, **{k: v for k, v in given.items() if v is not None}
        )
        fn = get_sampler(settings.sampler)
        kwargs: dict[str, Any] = dict(
            generator=generator,
            x_init=x_init,
            fixed=fixed,
            t_start=t_start,
            cond=cond,
            temperature=settings.temperature,
            top_p=settings.top_p,
            attention_mask=attention_mask,
            callback=callback,
        )
        for name in SAMPLER_OPTIONS.get(settings.sampler, ()):
            kwargs[name] = getattr(settings, name)
        if terminator is not None and settings.sampler == "confidence":
            kwargs["terminator"] = terminator
        denoiser = self.denoiser
        if guidance is not None and guidance != 1.0:
            if not self.model.config.n_labels:
                raise InputError("guidance needs a model trained with labels (--labels)")
            denoiser = SuppressTokens(ClassifierFreeGuidance(self.model, guidance), self.suppressed)
        counter = _CallCounter(denoiser)
        start = time.perf_counter()
        ids = fn(counter, self.process, shape, settings.steps, **kwargs)
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        return SampleOutput(
            ids=ids, seconds=time.perf_counter() - start, network_calls=counter.calls
        )

    @torch.no_grad()
    def refine(
        self,
        x: torch.Tensor,
        editable: torch.Tensor,
        *,
        detect: Callable[[torch.Tensor], tuple[torch.Tensor, int]],
        rounds: int = 1,
        cond: Any = None,
        attention_mask: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        callback: Callable | None = None,
        no_pad: torch.Tensor | None = None,
        **sampling: Any,
    ) -> SampleOutput:
        """The reverse process that starts from the source (style and attribute transfer): x (B, L) holds the
        source, on a source-start model's canvas (data/edits.py) or as the text itself. Each round `detect(x)`
        returns the positions to rewrite (bool (B, L)) and the network calls it made; those of `editable` are masked
        and filled by the sampler, every other position kept. A round that picks nothing ends the process, so a
        source with nothing to change comes back as it went in. `no_pad`: bool (B, L) positions that may not
        become PAD (a canvas's source tokens, when the rewrite may replace and insert but not delete), for the
        detector and the sampler alike. `sampling`: as `sample`."""
        denoiser, calls, start = self.denoiser, 0, time.perf_counter()
        if no_pad is not None:
            self.denoiser = SuppressAt(denoiser, no_pad, self.tokenizer.pad_id)
        try:
            for _ in range(rounds):
                picked, spent = detect(x)
                calls += spent
                hide = picked & editable
                if not hide.any():
                    break
                out = self.sample(
                    tuple(x.shape),
                    generator=generator,
                    x_init=torch.where(hide, self.tokenizer.mask_id, x),
                    fixed=~hide,
                    cond=cond,
                    attention_mask=attention_mask,
                    callback=callback,
                    **sampling,
                )
                x, calls = out.ids, calls + out.network_calls
        finally:
            self.denoiser = denoiser
        return SampleOutput(ids=x, seconds=time.perf_counter() - start, network_calls=calls)

    def keep_detector(
        self,
        strength: float,
        *,
        cond: Any = None,
        attention_mask: torch.Tensor | None = None,
    ) -> Callable[[torch.Tensor], tuple[torch.Tensor, int]]:
        """`detect` of a source-start model: the positions where the model, reading the whole canvas, prefers
        another token to the current one with probability above 1 - `strength` (0: none, so the output is the
        source; 1: wherever it prefers another)."""

        def detect(x: torch.Tensor) -> tuple[torch.Tensor, int]:
            logits = self.denoiser(x, None, cond=cond, attention_mask=attention_mask)
            logp = self.process.log_probs(logits)  # (B, L, V)
            best, choice = logp.max(dim=-1)  # (B, L)
            picked = (choice != x) & (best.exp() > 1.0 - strength)
            return picked, 1

        return detect

    @torch.no_grad()
    def generate_targets(
        self,
        sources: Sequence[Sequence[int]],
        length: Callable[[int], int],
        *,
        batch_size: int = 64,
        seed: int | None = 0,
        callback: Callable | None = None,
        progress: Callable[[int, int], None] | None = None,
        **sampling,
    ) -> tuple[list[list[int]], int]:
        """Sequence to sequence: each source's ids are the conditioning prefix (never noised), and its target is
        generated from `length(len(source))` masked positions; PADs end it. Sources are batched by length (little
        padding). Returns the target ids, PADs removed, in the order of `sources`, and the network calls made.
        `sampling`: steps, sampler, temperature, threshold (None: the model's defaults)."""
        for row in sources:
            if len(row) + length(len(row)) > self.max_len:
                raise InputError(
                    f"a text of {len(row)} tokens does not fit the model's context of {self.max_len} tokens "
                    "with its output"
                )
        order = sorted(range(len(sources)), key=lambda i: len(sources[i]))
        targets: list[list[int]] = [[] for _ in sources]
        calls = 0
        generator = self.generator(seed)
        pad = self.tokenizer.pad_id
        for start in range(0, len(order), batch_size):
            index = order[start : start + batch_size]
            batch = pad_pairs(
                [sources[i] for i in index], [[] for _ in index], pad_id=pad, length=length
            )
            cond = Cond(
                prefix=torch.from_numpy(batch["prefix"]).to(self.device),
                prefix_mask=torch.from_numpy(batch["prefix_mask"]).to(self.device),
            )
            mask = torch.from_numpy(batch["target_mask"]).to(self.device)  # positions to generate
            out = self.sample(
                tuple(mask.shape),
                generator=generator,
                x_init=torch.where(mask, self.tokenizer.mask_id, pad),  # batch padding stays PAD
                fixed=~mask,
                cond=cond,
                attention_mask=mask,
                callback=callback,
                **sampling,
            )
            calls += out.network_calls
            if progress is not None:
                progress(min(start + batch_size, len(order)), len(order))
            for row, i in enumerate(index):
                tokens = out.ids[row][mask[row]].tolist()
                targets[i] = tokens[: tokens.index(pad)] if pad in tokens else tokens
        return targets, calls


class _CallCounter(nn.Module):
    """Counts network calls (the cost measure of a sampler)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model, self.config, self.calls = model, model.config, 0

    def forward(self, *args, **kwargs):
        self.calls += 1
        return self.model(*args, **kwargs)


def check_text(text: str, *, what: str = "text") -> str:
    if not isinstance(text, str):
        raise InputError(f"{what} must be a string, got {type(text).__name__}")
    if not text.strip():
        raise InputError(f"{what} is empty")
    return text


def tokenizer_coverage(tokenizer: Tokenizer, text: str) -> list[str]:
    """Characters of `text` the tokenizer only spells as bytes (never seen in training)."""
    if tokenizer.kind != "char":
        return []
    vocab = tokenizer.backend.get_vocab()
    return sorted({c for c in text if c not in vocab})
