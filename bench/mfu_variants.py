"""MFU variants: candidate changes to the compiled training step, timed against the package's step in one process.

Each variant is a change to the Trainer's parts (`build_parts`) before the Trainer is made, or to the model's
ModelConfig, so that none lands in the package before it is measured on a GPU (bench/README.md, "MFU variants", has
the results; the package took the winners after commit dcc456f):

- `heads-128`: 6 heads of 128 dimensions instead of 12 of 64 (the same parameters and model FLOPs; flash attention
  runs closer to the matmul rate at head size 128). A change of the model, not of the step: reported beside it
  (bench/common.py size `base-h128`). Measured 1.041x.
- `fp32-residual`, `loss-eager`: the step as it was before the winners landed (a float32 residual stream under
  autocast; the loss terms not compiled): the landed changes measured 1.056x and 1.011x.
- `cudagraphs`: the network compiled with `mode="reduce-overhead"` (CUDA graphs: no launch gaps). Measured 0.997x.
- `qkv-split`: q, k and v sliced from the projection with `split` rather than unbound from a permuted view (the same
  numbers; the backward joins their gradients with a `cat`). Measured 0.974x.
- (`pinned-batches`, batches copied from pinned host memory, measured 0.992x in `mfu-variants-cuda-rerun.json` and
  was dropped: it needed the Trainer's batch function replaced.)
- `coordinate-descent`: Inductor's coordinate-descent tuning of its generated kernels (slow to compile: run last).
- `A+B+...`: the named variants together.
- `winners`: every variant run before it in the same call that was at least 1% faster than the baseline without
  raising `loss after` by more than 0.02, all together.

Each runs the project's Trainer as `speed.py`'s training cases do (per-step median and steady state, MFU against the
measured bf16 matmul rate), then trains --train-more steps on and reports the mean loss of the last 20 (same seed,
same data: a variant that changes numerics must not cost training quality; between runs of the same numerics it
moves by about 0.2 after 200 steps, so this only rules out a blow-up).

    python -m bench.mfu_variants --device cuda --json bench/results/mfu-variants-cuda.json
    python -m bench.mfu_variants --quick                                                    # CPU wiring check
"""

from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn.functional as F

from bench.common import DEFAULT_DATA, SIZES, record_matmul_rate
from bench.harness import (
    BenchArgs,
    Benchmark,
    Results,
    log,
    markdown_table,
    ok,
    parse_args,
    run,
    run_case,
)
from bench.speed import time_training
from textdiffusion.networks.layers import Attention, apply_rotary
from textdiffusion.training.objectives import DiffusionObjective


# -- the changes: each takes the Trainer's parts (training/builder.py) before the Trainer is made -----------------
class EagerLossObjective(DiffusionObjective):
    """The diffusion objective whose loss terms stay eager under `--compile` (the step before the compiled loss
    landed); the logits are dense, as with the compiled loss."""

    def compile(self) -> None:
        self.sparse_logits = False


def eager_loss(parts) -> None:
    if type(parts.objective) is not DiffusionObjective:
        raise ValueError("the loss-eager variant times the (non-block) diffusion objective only")
    objective = parts.objective
    parts.objective = EagerLossObjective(objective.process, sparse_logits=objective.sparse_logits)


class SplitAttention(Attention):
    """`Attention` (training only: no KV cache) with q, k and v sliced from the projection by `split` instead of
    unbound from a permuted view: the same numbers; the backward joins their gradients with a `cat`."""

    @classmethod
    def sharing(cls, attn: Attention) -> SplitAttention:
        """A SplitAttention over `attn`'s own projections (the same parameters, not copies)."""
        with torch.device("meta"):
            new = cls(attn.qkv.in_features, attn.n_heads, dropout=attn.dropout)
        new.qkv, new.proj = attn.qkv, attn.proj
        return new.train(attn.training)

    def forward(self, x, rotary, *, mask=None, causal=False, cache=None, cache_positions=None):
        if cache is not None:
            raise ValueError("the qkv-split variant times training only (no KV cache)")
        B, L, D = x.shape
        q, k, v = (
            t.view(B, L, self.n_heads, D // self.n_heads).transpose(1, 2)
            for t in self.qkv(x).split(D, dim=-1)
        )  # (B, H, L, head_dim) each, the same columns as the package's view(B, L, 3, H, head_dim)
        q, k = apply_rotary(q, *rotary), apply_rotary(k, *rotary)
        y = F.scaled_dot_product_attention(
            q,
            k,
            v,
            attn_mask=mask,
            dropout_p=self.dropout if self.training else 0.0,
            is_causal=causal and mask is None,
        )  # (B, H, L, head_dim)
        return self.proj(y.transpose(1, 2).reshape(B, L, D))  # (B, L, D)


def qkv_split(parts) -> None:
    for block in parts.net.blocks:
        block.attn = SplitAttention.sharing(block.attn)


class GraphedNetwork(torch.nn.Module):
    """The network compiled with `mode="reduce-overhead"` (CUDA graphs: no launch gaps between kernels); each call
    starts a new graph step, since the last step's outputs are no longer read."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net, self.config = net, net.config
        # the compiled forward is a function, not a second module holding the same parameters
        self.graphed = torch.compile(net.forward, mode="reduce-overhead")

    def forward(self, *args, **kwargs):
        torch.compiler.cudagraph_mark_step_begin()
        return self.graphed(*args, **kwargs)


def cuda_graphs(parts) -> None:
    parts.net = GraphedNetwork(parts.net)


@dataclasses.dataclass(frozen=True)
class Variant:
    compiled: bool = True
    """The Trainer compiles the network itself (cuda_graphs compiles it with its own mode instead)."""
    changes: tuple = ()
    """Functions of the Trainer's parts, applied before the Trainer is made."""
    options: dict = dataclasses.field(default_factory=dict)
    """Inductor options."""
    model: dict = dataclasses.field(default_factory=dict)
    """ModelConfig fields that differ from the size's; `head_dim` sets n_heads to dim // head_dim."""


def combine(variants: list[Variant]) -> Variant:
    """All of `variants` at once; the changes in the order of CHANGE_ORDER (CUDA graphs wrap the model last)."""
    changes = {change for v in variants for change in v.changes}
    return Variant(
        compiled=all(v.compiled for v in variants),
        changes=tuple(c for c in CHANGE_ORDER if c in changes),
        options={k: val for v in variants for k, val in v.options.items()},
        model={k: val for v in variants for k, val in v.model.items()},
    )


CHANGE_ORDER = (qkv_split, eager_loss, cuda_graphs)
VARIANTS = {
    "baseline": Variant(),
    "heads-128": Variant(model={"head_dim": 128}),
    "cudagraphs": Variant(compiled=False, changes=(cuda_graphs,)),
    "fp32-residual": Variant(model={"fp32_residual": True}),
    "loss-eager": Variant(changes=(eager_loss,)),
    "qkv-split": Variant(changes=(qkv_split,)),
    "winners": None,  # made in the run from the variants before it (see `winners`)
    "coordinate-descent": Variant(options={"coordinate_descent_tuning": True}),
}
WIN_SPEEDUP = 1.01
"""A variant joins `winners` when its steady step is at least this much faster than the baseline's..."""
WIN_LOSS = 0.02
"""...and its `loss after` at most this much above the baseline's (nats per token, same seed and data)."""


def winners(records: list[dict]) -> list[str]:
    """The variants measured so far that beat the baseline by WIN_SPEEDUP without costing more than WIN_LOSS."""
    base = next((r for r in records if r["case"] == "baseline" and "error" not in r), None)
    if base is None:
        return []
    return [
        r["case"]
        for r in records
        if r["case"] in VARIANTS
        and VARIANTS[r["case"]] is not None
        and r["case"] != "baseline"
        and "error" not in r
        and base["steady_step_seconds"] / r["steady_step_seconds"] >= WIN_SPEEDUP
        and r.get("loss_after", math.inf) <= base.get("loss_after", math.inf) + WIN_LOSS
    ]


@dataclasses.dataclass
class VariantArgs(BenchArgs):
    size: str = "base"
    """Model size (bench/common.py SIZES)."""
    length: int = 1024
    batch: int = 32
    variants: tuple[str, ...] = tuple(VARIANTS)
    """Variants to run, in order (baseline first: the ratios are against it)."""
    train_steps: int = 10
    """Timed steps (after 3 warm-up steps, 1 on the CPU), per step and again back to back."""
    train_more: int = 200
    """Steps trained after the timing; `loss after` is the mean loss of the last 20."""
    data_dir: str = str(DEFAULT_DATA)
    """Folder with train.txt (tinyshakespeare); a random-word corpus is made when it is missing."""
    seed: int = 0
    eager: bool = False
    """Wiring check (CPU): the Trainer does not compile the network in any variant."""


QUICK = dict(
    quick=True,
    size="tiny",
    length=64,
    batch=4,
    variants=("baseline", "heads-128", "fp32-residual+loss-eager", "qkv-split", "winners"),
    train_steps=2,
    train_more=20,
    eager=True,
)


def parse(argv: list[str] | None = None) -> VariantArgs:
    return parse_args(VariantArgs, QUICK, argv)


def run_variant(
    variant: Variant, args: VariantArgs, device: torch.device, peak: float | None
) -> dict:
    from torch._inductor import config as inductor_config

    torch._dynamo.reset()  # every variant compiles afresh
    model = dict(variant.model)
    if "head_dim" in model:
        model["n_heads"] = max(1, SIZES[args.size]["dim"] // model.pop("head_dim"))

    def prepare(parts) -> None:
        for change in variant.changes:
            change(parts)

    with inductor_config.patch(variant.options):  # Inductor's own scoped options
        return time_training(
            args.size,
            args.length,
            args.batch,
            compile=variant.compiled and not args.eager,
            device=device,
            steps=args.train_steps,
            data_dir=args.data_dir,
            peak=peak,
            seed=args.seed,
            prepare=prepare,
            train_more=args.train_more,
            model_overrides=model,
        )


def render(data: dict) -> str:
    args = data["args"]
    peak = data.get("matmul_flops_per_s")
    rate = (
        f" against the measured bf16 matmul rate, {peak['value'] / 1e12:.1f} TFLOP/s"
        if peak
        else ""
    )
    return (
        f"Training step of the {args['size']} model, L={args['length']}, B={args['batch']}, on "
        f"{data['machine']['device']}: per-step median of {args['train_steps']} steps and steady state{rate}; "
        f"`loss after` = mean loss of the last 20 of {args['train_more']} more steps (same seed and data).\n\n"
        + markdown_table(variant_rows(data), COLUMNS)
    )


def variant_rows(data: dict) -> list[dict]:
    rows = [dict(r) for r in data.get("variants", [])]
    base = next(iter(ok(r for r in rows if r["case"] == "baseline")), None)
    for r in rows:
        if r.get("of"):
            r["case"] = f"{r['case']}: {' + '.join(r['of'])}"
        if "error" in r:
            r["case"] = f"{r['case']} (failed: {r['error'][:60]})"
        elif base is not None:
            r["speedup"] = base["steady_step_seconds"] / r["steady_step_seconds"]
        for key in ("step_seconds", "steady_step_seconds"):
            if key in r:
                r[key.replace("seconds", "ms")] = 1000 * r[key]
    return rows


COLUMNS = [
    ("case", "variant", ""),
    ("step_ms", "ms/step", ".1f"),
    ("steady_step_ms", "steady ms/step", ".1f"),
    ("speedup", "steady speedup", ".3f"),
    ("mfu", "MFU", ".1%"),
    ("steady_mfu", "steady MFU", ".1%"),
    ("loss_after", "loss after", ".4f"),
    ("max_memory_gib", "memory GiB", ".1f"),
]


def summary(data: dict) -> str:
    keep = ("case", "steady_step_ms", "speedup", "steady_mfu", "loss_after")
    return markdown_table(variant_rows(data), [c for c in COLUMNS if c[0] in keep])


BENCH = Benchmark("mfu-variants", "MFU variants", render=render, summary=summary)


def main(args: VariantArgs) -> dict:
    unknown = sorted({part for name in args.variants for part in name.split("+")} - set(VARIANTS))
    if unknown and not args.render:
        raise SystemExit(f"--variants: unknown {unknown}; choose from {', '.join(VARIANTS)}")

    def measure(results: Results, device: torch.device) -> None:
        peak = record_matmul_rate(device, results)
        for name in args.variants:
            fields = {}
            if "+" in name:
                fields["of"] = name.split("+")
                variant = combine([VARIANTS[n] for n in fields["of"]])
                name = "combined"
            else:
                variant = VARIANTS[name]
            if variant is None:  # winners
                fields["of"] = winners(results.data.get("variants", []))
                log(f"winners: {', '.join(fields['of']) or 'none (nothing to run)'}")
                if not fields["of"]:
                    continue
                variant = combine([VARIANTS[n] for n in fields["of"]])
            record = run_case(
                results,
                "variants",
                name,
                lambda v=variant: run_variant(v, args, device, peak),
                **fields,
            )
            if "error" not in record:
                mfu = f", steady MFU {record['steady_mfu']:.1%}" if "steady_mfu" in record else ""
                log(
                    f"{name}: {1000 * record['step_seconds']:.1f} ms/step, steady "
                    f"{1000 * record['steady_step_seconds']:.1f} ms{mfu}, loss after "
                    f"{record['loss_after']:.4f}"
                )

    return run(BENCH, args, measure)


if __name__ == "__main__":
    main(parse())
