"""A Hugging Face `transformers` language model as the denoiser (the `hf` backbone).

The architecture is `transformers`' own (BERT, GPT-2, LLaMA, Qwen2), with its SDPA attention; this module only meets
the network contract around it, `model(xt, t, *, cond=None, attention_mask=None, output_mask=None) -> logits`:

- A BERT masked LM is a masked-diffusion denoiser as it is: its MLM head predicts x0 at the `[MASK]` positions
  (RADD, Ou et al. 2024: masked diffusion needs no time input).
- A causal LM (GPT-2, LLaMA, Qwen2) is adapted as DiffuGPT and Dream do (Gong et al. 2025, "Scaling Diffusion
  Language Models via Adaptation from Autoregressive Models"; Ye et al. 2025, Dream 7B): its attention is made
  bidirectional through an explicit 4D mask, and with `config.logit_shift = 1` the prediction of position i is read
  off the output at position i - 1, where the causal model was trained to predict token i. Its causal mask can be
  annealed to bidirectional over the first `config.attention_anneal_steps` training steps (DiffuGPT's attention-mask
  annealing; here the visible window grows deterministically, query i seeing keys j <= i + r L as the ratio r goes
  from 0 to 1, rather than through random draws).

Conditioning is the project's (networks/transformer.py): a prefix of token ids placed before the target and never
noised, with a learnt segment embedding (zero at start) and, for BERT, token type 0 for the prefix and 1 for the
target; a label embedding (zero at start, null label `n_labels`) added at every position. Positions count real tokens
only; with `config.align_prefix` the target is numbered from 0 like the prefix. Image conditioning is refused.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch import nn

from textdiffusion.config import ModelConfig
from textdiffusion.networks.transformer import Cond, as_cond

logger = logging.getLogger(__name__)

# architecture -> (family, attribute of the output head); the body is `model.base_model`
ARCHITECTURES: dict[str, tuple[str, str]] = {
    "BertForMaskedLM": ("masked", "cls"),
    "GPT2LMHeadModel": ("causal", "lm_head"),
    "LlamaForCausalLM": ("causal", "lm_head"),
    "Qwen2ForCausalLM": ("causal", "lm_head"),
}
# bodies without an output head, given one tied to their word embeddings
HEADLESS: dict[str, str] = {
    "BertModel": "BertForMaskedLM",
    "GPT2Model": "GPT2LMHeadModel",
    "LlamaModel": "LlamaForCausalLM",
    "Qwen2Model": "Qwen2ForCausalLM",
}


class BackboneError(ValueError):
    """A transformers config the bridge cannot build (unsupported architecture, transformers missing)."""


def import_transformers():
    try:
        import transformers
    except ImportError:
        raise BackboneError(
            "the hf backbone needs transformers: pip install 'textdiffusion[hf]'"
        ) from None
    return transformers


def architecture(hf_config: dict[str, Any], *, where: str = "config.json") -> str:
    """The one supported architecture named by `hf_config["architectures"]`, or a BackboneError naming `where`."""
    names = hf_config.get("architectures") or []
    known = sorted(ARCHITECTURES) + sorted(HEADLESS)
    if len(names) != 1 or names[0] not in known:
        raise BackboneError(
            f"{where}: architecture {names or hf_config.get('model_type')!r} is not supported by the Hugging Face "
            f"bridge; expected one of {', '.join(known)}"
        )
    return names[0]


def build_transformers_model(hf_config: dict[str, Any], *, where: str = "config.json") -> nn.Module:
    """A randomly initialised `transformers` model of `hf_config` (float32, SDPA attention); never remote code."""
    transformers = import_transformers()
    arch = architecture(hf_config, where=where)
    arch = HEADLESS.get(arch, arch)
    values = {
        k: v
        for k, v in hf_config.items()
        if k not in ("model_type", "auto_map", "transformers_version", "_name_or_path")
    }
    values["architectures"] = [arch]
    try:
        config = transformers.AutoConfig.for_model(hf_config.get("model_type", ""), **values)
    except (ValueError, TypeError) as exc:
        raise BackboneError(f"{where}: not a transformers config: {exc}") from None
    cls = getattr(transformers, arch)
    return cls._from_config(config, attn_implementation="sdpa", dtype=torch.float32)


class HFDenoiser(nn.Module):
    """A `transformers` model behind the project's network contract (see the module docstring)."""

    def __init__(self, config: ModelConfig, *, hf_model: nn.Module | None = None) -> None:
        super().__init__()
        if config.backbone != "hf" or config.hf_config is None:
            raise ValueError("HFDenoiser needs a ModelConfig with backbone 'hf' and its hf_config")
        self.config = config
        arch = architecture(config.hf_config, where="hf_config")
        self.family, self.head_name = ARCHITECTURES[HEADLESS.get(arch, arch)]
        self.hf = hf_model if hf_model is not None else build_transformers_model(config.hf_config)
        embed = self.hf.get_input_embeddings()
        if embed.num_embeddings != config.vocab_size:
            raise ValueError(
                f"the {arch} embedding has {embed.num_embeddings} rows but vocab_size is {config.vocab_size}"
            )
        dim = embed.embedding_dim
        # own additions, zero at start so that the pretrained function is unchanged
        self.segment = nn.Embedding(2, dim)  # 0: conditioning prefix, 1: target
        nn.init.zeros_(self.segment.weight)
        if config.n_labels > 0:
            self.label_embed = nn.Embedding(config.n_labels + 1, dim)
            nn.init.zeros_(self.label_embed.weight)
        self.token_types = (
            self.family == "masked" and getattr(self.hf.config, "type_vocab_size", 0) >= 2
        )
        self.anneal_ratio = (
            1.0  # share of the way from causal to bidirectional attention (training only)
        )

    def anneal(self, step: int) -> None:
        """Set the attention of training step `step`: causal at 0, bidirectional from `attention_anneal_steps` on."""
        steps = self.config.attention_anneal_steps
        self.anneal_ratio = 1.0 if steps <= 0 else min(1.0, step / steps)

    def encode_image(self, image: torch.Tensor) -> torch.Tensor:
        raise ValueError(
            "a Hugging Face backbone reads no images (captioning needs the transformer backbone)"
        )

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def forward(
        self,
        xt: torch.Tensor,
        t: torch.Tensor | None = None,
        *,
        cond: Cond | torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        output_mask: torch.Tensor | None = None,
        cache: Any = None,
        positions: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Predict clean-token logits.

        Args:
            xt: int64 (B, L) noised token ids.
            t: float (B,) diffusion times (unused: masked diffusion reads the noise level off the masks).
            cond: a `Cond` (prefix, prefix_mask, label), or an int64 (B, Lc) conditioning prefix.
            attention_mask: bool (B, L), True at real target tokens (padding is never attended to).
            output_mask: bool (B, L): compute the output head only where True.

        Returns:
            logits (B, L, V), or (n, V) for the n True positions of `output_mask` in row-major order.
        """
        if cache is not None or positions is not None:
            raise ValueError(
                "a Hugging Face backbone has no KV-cache decoding; sample with a diffusion sampler"
            )
        if xt.is_floating_point():
            raise ValueError("a Hugging Face backbone reads token ids, not continuous inputs")
        cond = as_cond(cond)
        if cond.image is not None or cond.image_features is not None:
            self.encode_image(cond.image)
        config = self.config
        B, L = xt.shape
        embed = self.hf.get_input_embeddings()
        h = embed(xt) + self.segment.weight[1]  # (B, L, D)
        target_valid = (
            attention_mask.bool()
            if attention_mask is not None
            else torch.ones(B, L, dtype=torch.bool, device=xt.device)
        )
        valid, types = target_valid, torch.zeros_like(xt)
        if cond.prefix is not None:
            prefix_valid = (
                cond.prefix_mask.bool()
                if cond.prefix_mask is not None
                else torch.ones_like(cond.prefix, dtype=torch.bool)
            )
            h = torch.cat([embed(cond.prefix) + self.segment.weight[0], h], dim=1)  # (B, T, D)
            valid = torch.cat([prefix_valid, target_valid], dim=1)  # (B, T), T = Lc + L
            types = torch.cat([torch.zeros_like(cond.prefix), torch.ones_like(xt)], dim=1)
        total = h.shape[1]
        if total > config.max_len:
            raise ValueError(
                f"sequence of {total} tokens (prefix included) exceeds the model's max_len {config.max_len}"
            )
        if config.n_labels > 0:
            label = cond.label
            if label is None:  # unconditional: the null label
                label = torch.full((B,), config.n_labels, dtype=torch.long, device=xt.device)
            h = h + self.label_embed(label)[:, None]
        # positions count real tokens only; with align_prefix the target restarts at 0 like the prefix
        target_pos = target_valid.long().cumsum(dim=1) - 1  # (B, L)
        if cond.prefix is None:
            position_ids = target_pos.clamp(min=0)
        else:
            prefix_pos = prefix_valid.long().cumsum(dim=1) - 1  # (B, Lc)
            if not config.align_prefix:
                target_pos = target_pos + prefix_valid.sum(dim=1, keepdim=True)
            position_ids = torch.cat([prefix_pos, target_pos], dim=1).clamp(min=0)  # (B, T)
        # an explicit mask whenever positions restart (aligned prefix): without one, transformers reads restarting
        # position_ids as packed sequences and would cut the prefix off from the target
        mask = self._attention(valid, padded=attention_mask is not None or cond.prefix is not None)
        kwargs: dict[str, Any] = dict(
            inputs_embeds=h, attention_mask=mask, position_ids=position_ids
        )
        if self.token_types:
            kwargs["token_type_ids"] = types
        out = self.hf.base_model(**kwargs).last_hidden_state  # (B, T, D)
        if config.logit_shift:
            out = out.gather(1, self._shifted(valid, L)[..., None].expand(-1, -1, out.shape[-1]))
        else:
            out = out[:, total - L :]  # (B, L, D) target positions only
        if output_mask is not None:
            out = out[output_mask]  # (n, D)
        return getattr(self.hf, self.head_name)(out)

    @staticmethod
    def _shifted(valid: torch.Tensor, L: int) -> torch.Tensor:
        """int64 (B, L) index of the output each target position reads with a logit shift: the position before it,
        as Dream and DiffuGPT read it; the first target position reads the last real prefix token (batch padding
        of the prefix changes nothing), or itself without a prefix (Dream keeps the first position's own)."""
        B, T = valid.shape
        index = torch.arange(T - L - 1, T - 1, device=valid.device).expand(B, L).clone()  # (B, L)
        if T == L:
            index[:, 0] = 0
        else:
            order = torch.arange(T - L, device=valid.device)
            last = (
                torch.where(valid[:, : T - L], order, -1).max(dim=1).values
            )  # (B,) last real prefix token
            index[:, 0] = torch.where(last >= 0, last, T - L)
        return index

    def _attention(self, valid: torch.Tensor, *, padded: bool) -> torch.Tensor | None:
        """bool (B, 1, T, T) attention mask (True: may attend), or None for plain bidirectional attention."""
        B, T = valid.shape
        causal = self.config.causal or (self.training and self.anneal_ratio < 1.0)
        if self.family == "masked" and not padded and not causal:
            return None
        index = torch.arange(T, device=valid.device)
        # keys allowed, and every query its own key: no row is empty, so no NaN reaches a shifted read
        mask = valid[:, None, None, :] | (index[:, None] == index[None, :])  # (B, 1, T, T)
        if causal:
            ratio = 0.0 if self.config.causal else self.anneal_ratio
            window = index[None, :] <= index[:, None] + int(
                ratio * T
            )  # (T, T) query i sees keys <= i + rT
            mask = mask & window
        return mask
