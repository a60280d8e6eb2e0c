"""Smoke tests of the benchmark harness (bench/): tiny sizes, no ../shared, a few seconds in all."""

from __future__ import annotations

import dataclasses
import json
import math
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from bench import (
    attribute_style,
    captioning,
    common,
    harness,
    likelihood,
    mfu_variants,
    profile_step,
    quality,
    speed,
    style_transfer,
)


def test_diversity_metrics_on_hand_made_text():
    assert quality.distinct_n(["a b a b"], 1) == 0.5  # {a, b} of 4 words
    assert quality.distinct_n(["a b a b"], 2) == pytest.approx(2 / 3)  # {ab, ba} of 3 bigrams
    assert quality.distinct_n(["a b", "c d"], 2) == 1.0  # n-grams never cross samples
    assert quality.distinct_n(["a"], 2) == 0.0
    assert quality.unigram_entropy(["a", "b", "a", "b"]) == pytest.approx(1.0)
    assert quality.unigram_entropy(list("abcd")) == pytest.approx(2.0)
    assert quality.unigram_entropy(["x"] * 5) == 0.0
    # the mean of 2 and 0 bits
    assert quality.sample_entropy(["a b c d", "a a a a"]) == pytest.approx(1.0)
    degenerate, varied = (
        quality.diversity(["the the the the"] * 3),
        quality.diversity(["a b c d", "e f g h"]),
    )
    assert (
        degenerate["entropy"] < varied["entropy"]
        and degenerate["distinct_2"] < varied["distinct_2"]
    )


def test_readme_update_replaces_only_its_own_block(tmp_path):
    path = tmp_path / "README.md"
    start, end = harness.markers("speed-cpu")
    path.write_text(f"# Benchmarks\n\n## Speed\n\n{start}\nold\n{end}\n\nsomeone else's numbers\n")
    assert harness.update_readme("speed-cpu", "| a |\n|---|\n| 2 |", path=path)
    text = path.read_text()
    assert "someone else's numbers" in text and "| 2 |" in text and "old" not in text
    assert text.count(start) == 1 and text.count(end) == 1
    # a result the README does not name leaves it as it is (it is written by hand)
    assert not harness.update_readme("speed-cuda", "| b |", path=path)
    assert path.read_text() == text


def test_provenance_reads_old_and_new_result_files():
    old = {"command": "speed.py --quick", "machine": {"cpu": "x", "torch_threads": 1,
           "cpu_cores": 2, "torch": "2", "date": "d"}, "complete": False}  # fmt: skip
    assert "`python bench/speed.py --quick`" in harness.provenance(old)
    assert "Partial results" in harness.provenance(old)
    new = dict(old, command="python -m bench.speed --quick", complete=True)
    assert "`python -m bench.speed --quick`" in harness.provenance(new)
    assert harness.source_line(
        new, "a.md"
    ) == "x (1 threads of 2 cores), torch 2, d; git uncommitted. " + (
        "[All tables, the command](results/a.md)."
    )
    assert harness.provenance({"date": "2026-11-26"}).startswith("Machine: 2026-11-26 (the file")


def test_bench_builds_trainers_without_patching_the_package():
    """Variants change the Trainer's parts before it is built (bench/mfu_variants.py), never the package's code."""
    sources = "\n".join(p.read_text() for p in Path(harness.BENCH_DIR).glob("*.py"))
    assert not re.search(r"monkeypatch|MethodType|setattr\(|sys\.path", sources)


def test_time_call_reports_the_median():
    calls = []
    timing, result = common.time_call(
        lambda: calls.append(1) or len(calls), device=torch.device("cpu"), repeats=3, warmup=2
    )
    assert (
        result == 5
        and len(timing.times) == 3
        and min(timing.times) <= timing.median <= max(timing.times)
    )


def test_speed_runs_and_writes_the_expected_keys(tmp_path):
    out = tmp_path / "speed.json"
    args = speed.SpeedArgs(
        device="cpu",
        size="tiny",
        lengths=(16,),
        batches=(2,),
        steps=(4,),
        repeats=1,
        train_configs=("tiny:16:2:eager:math",),
        train_steps=1,
        data_dir=str(tmp_path),
        json=str(out),
        readme=False,
        threads=1,
    )
    speed.main(args)
    data = json.loads(out.read_text())
    assert data["complete"] and data["machine"]["device"] == "cpu"
    methods = {r["method"]: r for r in data["sampling"]}
    assert set(methods) == {"ar-kv-cache", "ancestral", "cached", "confidence"}
    for record in data["sampling"]:
        assert "error" not in record, record
        assert record["tokens_per_s"] > 0 and record["network_calls"] > 0 and record["seconds"] > 0
    assert methods["ar-kv-cache"]["network_calls"] == 16  # one per token (the prefill included)
    assert methods["ancestral"]["network_calls"] == 4
    (train,) = data["training"]
    assert "error" not in train, train
    assert (
        train["tokens_per_s"] > 0 and train["model_flops_per_s"] > 0 and "mfu" not in train
    )  # GPU only
    assert train["steady_tokens_per_s"] > 0 and train["attention"] == "math"
    tables = out.with_suffix(".md").read_text()  # written beside the result file
    assert tables.startswith(f"# Speed: `speed.json`\n\n{speed.render(data)}\n\nMachine: ")
    assert "| math |" in tables and "steady ms/step" in tables and "| ancestral |" in tables
    short = speed.summary(data)  # per (L, B, steps): AR and the fastest sampler
    assert short.count("\n| 16 | 2 | 4 |") == 1 and "\n| tiny |" in short


def test_speed_refuses_an_unknown_attention_kernel():
    args = speed.SpeedArgs(
        device="cpu", only=("training",), train_configs=("tiny:16:2:eager:fast",)
    )
    with pytest.raises(SystemExit, match="the attention one of auto, flash, cudnn"):
        speed.bench_training(args, None, torch.device("cpu"))  # refused before any result


def test_flops_per_token_counts_matmuls_and_attention():
    config = common.model_config("tiny", vocab_size=10, max_len=8)
    # per layer qkv, proj, gate_up, down; then the head
    linear = 2 * (64 * 192 + 64 * 64 + 64 * 2 * 192 + 192 * 64) + 64 * 10
    assert speed.flops_per_token(config, 8) == 6 * linear + 12 * 2 * 64 * 8


@pytest.mark.parametrize("sampler", ["ancestral", "cached", "confidence"])
def test_fast_samplers_draw_the_same_ids_as_the_reference(sampler, tiny_model):
    record = profile_step.sampler_case(
        tiny_model,
        sampler,
        batch=3,
        length=16,
        steps=8,
        device=torch.device("cpu"),
        repeats=1,
        seed=0,
    )
    assert record["identical"]


def test_fast_reverse_step_matches_the_reference():
    record = profile_step.reverse_step_case(
        batch=2, length=32, vocab=40, steps=16, device=torch.device("cpu"), repeats=1, seed=0
    )
    assert record["identical"]


def test_likelihood_summary_ratio():
    data = {
        "args": {"sizes": ["tiny"]},
        "models": [
            {
                "size": "tiny",
                "objective": "diffusion",
                "bits_per_char": 3.0,
                "tokens": 100,
                "parameters": 5,
            },
            {
                "size": "tiny",
                "objective": "ar",
                "bits_per_char": 2.0,
                "tokens": 100,
                "parameters": 5,
            },
        ],
    }
    (row,) = likelihood.summarize(data)
    assert math.isclose(row["ratio"], 1.5) and row["same_tokens"]


def test_mfu_variants_run_and_render(tmp_path):
    out = tmp_path / "variants.json"
    args = mfu_variants.VariantArgs(
        device="cpu",
        size="tiny",
        length=16,
        batch=2,
        variants=("baseline", "fp32-residual+loss-eager", "heads-128"),
        train_steps=1,
        train_more=3,
        eager=True,
        data_dir=str(tmp_path),
        json=str(out),
        readme=False,
        threads=1,
    )
    data = mfu_variants.main(args)
    assert [r["case"] for r in data["variants"]] == ["baseline", "combined", "heads-128"]
    assert data["variants"][1]["of"] == ["fp32-residual", "loss-eager"]
    for record in data["variants"]:
        assert "error" not in record, record
        assert math.isfinite(record["loss_after"]) and record["steps_trained"] == 1 + 2 + 3
    # the tiny size's 64 dimensions in heads of 128 at most: one head (its baseline has two)
    assert [r["n_heads"] for r in data["variants"]] == [2, 2, 1]
    table = mfu_variants.render(json.loads(out.read_text()))
    assert "| combined: fp32-residual + loss-eager |" in table and "loss after" in table
    with pytest.raises(SystemExit, match="unknown"):
        mfu_variants.main(dataclasses.replace(args, variants=("fp4",)))


def test_qkv_split_variant_computes_the_same_attention(tiny_config):
    from textdiffusion.networks import DiffusionTransformer

    torch.manual_seed(0)
    net = DiffusionTransformer(tiny_config)
    x = torch.randint(0, tiny_config.vocab_size, (2, 12))
    mask = torch.ones(2, 12, dtype=torch.bool)
    mask[1, 9:] = False  # padding: positions and a key mask as in training

    def run():
        net.zero_grad()
        logits = net(x, None, attention_mask=mask)
        logits.square().sum().backward()
        return logits.detach(), [p.grad.clone() for p in net.parameters() if p.grad is not None]

    before, grads_before = run()
    before_attn = net.blocks[0].attn
    mfu_variants.qkv_split(
        SimpleNamespace(net=net)
    )  # the Trainer's parts, as far as the change reads them
    assert isinstance(net.blocks[0].attn, mfu_variants.SplitAttention)
    assert net.blocks[0].attn.qkv is before_attn.qkv  # the same parameters, not copies
    after, grads_after = run()
    torch.testing.assert_close(after, before, rtol=1e-5, atol=1e-6)
    for a, b in zip(grads_after, grads_before, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="KV cache"):
        net.blocks[0].attn(
            torch.zeros(1, 1, tiny_config.dim), net.rotary(torch.arange(1)), cache=(1, 2)
        )


def test_loss_eager_variant_keeps_the_loss_terms_out_of_compile():
    from textdiffusion.processes import MaskedProcess, build_schedule
    from textdiffusion.training.objectives import DiffusionObjective

    process = MaskedProcess(build_schedule("loglinear"), mask_id=1)
    parts = SimpleNamespace(objective=DiffusionObjective(process, sparse_logits=True))
    mfu_variants.eager_loss(parts)
    parts.objective.compile()  # what the Trainer calls under --compile
    assert parts.objective.terms == process.loss and not parts.objective.sparse_logits


def test_winners_combine_the_faster_variants_that_keep_the_loss():
    def record(case, ms, loss, **extra):
        return {"case": case, "steady_step_seconds": ms / 1000, "loss_after": loss, **extra}

    records = [
        record("baseline", 100, 2.00),
        record("heads-128", 90, 2.01),  # faster, loss within 0.02: in
        record("fp32-residual", 95, 2.05),  # faster, but the loss rose 0.05: out
        record("qkv-split", 99.5, 2.00),  # under 1% faster: out
        record("cudagraphs", 97, 2.00),  # in
        record("loss-eager", 50, 2.00, error="RuntimeError: boom"),  # failed: out
    ]
    assert mfu_variants.winners(records) == ["heads-128", "cudagraphs"]
    assert mfu_variants.winners(records[1:]) == []  # no baseline, no comparison
    v = mfu_variants.VARIANTS
    both = mfu_variants.combine([v["cudagraphs"], v["heads-128"], v["qkv-split"]])
    # CUDA graphs compile the network themselves, after the changes that patch it
    assert not both.compiled and both.model == {"head_dim": 128}
    assert both.changes == (mfu_variants.qkv_split, mfu_variants.cuda_graphs)


def test_style_transfer_scores_the_copy_baseline_and_a_model(tmp_path):
    pytest.importorskip("sacrebleu")
    from textdiffusion.config import DataConfig, ModelConfig, TrainConfig
    from textdiffusion.training import train

    modern = ["i will not fight you .", "where are you going ?", "madam , he is well ."] * 4
    original = ["i will not fight thee .", "whither goest thou ?", "madam , he's well ."] * 4
    (tmp_path / "test.visible.modern.nltktok").write_text("\n".join(modern) + "\n")
    (tmp_path / "test.visible.original.nltktok").write_text("\n".join(original) + "\n")
    model = tmp_path / "model"
    train(
        DataConfig(
            data=(str(tmp_path / "test.visible.modern.nltktok"),),
            targets=(str(tmp_path / "test.visible.original.nltktok"),),
            valid_fraction=0.0,
        ),
        TrainConfig(steps=2, batch_size=4, eval_every=0, device="cpu"),
        out=model,
        task="style",
        model=ModelConfig(n_layers=1, n_heads=2, dim=32, max_len=96),
        progress=False,
    )
    out = tmp_path / "style.json"
    args = style_transfer.StyleArgs(
        model=str(model),
        data_dir=str(tmp_path),
        limit=6,
        steps=(2,),
        examples=2,
        device="cpu",
        threads=1,
        json=str(out),
        readme=False,
    )
    data = style_transfer.main(args)
    copy, rewrite = data["rows"]
    assert copy["case"] == "copy the source" and 0 < copy["bleu"] < 100
    assert rewrite["steps"] == 2 and "error" not in rewrite and len(rewrite["examples"]) == 2
    assert math.isfinite(rewrite["bleu"]) and rewrite["sentences_per_s"] > 0
    table = style_transfer.render(json.loads(out.read_text()))
    assert (
        "| copy the source |" in table and "| model, 2 steps |" in table and "Shakespeare:" in table
    )


def test_captioning_scores_the_baselines_and_a_model(tmp_path):
    pytest.importorskip("sacrebleu")
    from conftest import make_shapes

    from textdiffusion.config import DataConfig, ModelConfig, TrainConfig
    from textdiffusion.training import train

    # the tables scripts/caption_data.py writes: absolute image paths, five captions per validation photo
    data = tmp_path / "data"
    data.mkdir()
    for name, n, seed, copies in (("train_photos", 6, 0, 1), ("valid_coco_tiny", 3, 1, 5)):
        rows = make_shapes(tmp_path / name, n, seed=seed).read_text().splitlines()
        body = [f"{tmp_path / name}/{row}" for row in rows[1:] for _ in range(copies)]
        (data / f"{name}.tsv").write_text("\n".join([rows[0], *body]) + "\n")
    model = tmp_path / "model"
    train(
        DataConfig(data=(str(data / "train_photos.tsv"),), valid_fraction=0.0),
        TrainConfig(steps=2, batch_size=4, eval_every=0, device="cpu"),
        out=model,
        task="caption",
        model=ModelConfig(n_layers=1, n_heads=2, dim=32, max_len=64, image_size=16),
        progress=False,
    )
    out = tmp_path / "captioning.json"
    args = captioning.CaptionArgs(
        model=str(model),
        data=str(data),
        steps=2,
        candidates=3,
        examples=2,
        device="cpu",
        threads=1,
        json=str(out),
        readme=False,
    )
    rows = captioning.main(args)["rows"]
    assert [r["case"] for r in rows] == [
        "one caption for every image",
        "nearest image's caption (pixels)",
        "nearest image's caption (encoder)",
        "model, one sample",
        "model, consensus of 3",
    ]
    assert all(r["set"] == "coco_tiny" and "error" not in r for r in rows)
    assert rows[0]["examples"][0]["caption"].startswith("a ")
    assert all(math.isfinite(r["chrf"]) for r in rows) and rows[-1]["images_per_s"] > 0
    table = captioning.render(json.loads(out.read_text()))
    assert "**coco_tiny**" in table and "| model, consensus of 3 |" in table


def test_attribute_style_scores_the_copy_baseline_and_a_model(tmp_path):
    pytest.importorskip("sacrebleu")
    from textdiffusion.config import DataConfig, ModelConfig, TrainConfig
    from textdiffusion.training import train

    # a Yelp-shaped folder: .0 negative, .1 positive; reference{k}.visible.y rewrite the test sentences of y
    lines = {
        0: ["the soup was cold .", "the staff was rude ."],
        1: ["the soup was great .", "the staff was nice ."],
    }
    (tmp_path / "trainpool").mkdir()
    (tmp_path / "test").mkdir()
    for y in (0, 1):
        text = "\n".join(lines[y] * 3) + "\n"
        for name in (
            f"trainpool/sentiment.trainpool.{y}",
            f"sentiment.dev.{y}",
            f"test/sentiment.test.visible.{y}",
        ):
            (tmp_path / name).write_text(text)
        for k in range(4):
            (tmp_path / f"test/reference{k}.visible.{y}").write_text(
                "\n".join(lines[1 - y] * 3) + "\n"
            )
    model = tmp_path / "model"
    pool = tmp_path / "trainpool"
    train(
        DataConfig(
            data=(str(pool / "sentiment.trainpool.0"), str(pool / "sentiment.trainpool.1")),
            labels=("negative", "positive"),
            valid_fraction=0.0,
        ),
        TrainConfig(steps=2, batch_size=4, eval_every=0, device="cpu"),
        out=model,
        task="style",
        model=ModelConfig(n_layers=1, n_heads=2, dim=32, max_len=64),
        progress=False,
    )
    out = tmp_path / "attribute.json"
    args = attribute_style.AttributeArgs(
        model=str(model),
        data_dir=str(tmp_path),
        limit=4,
        guidance=(2.0,),
        examples=2,
        gammas=(2.0, 5.0),
        device="cpu",
        threads=1,
        json=str(out),
        readme=False,
    )
    data = attribute_style.main(args)
    # the dev sentences are the training pool's
    assert data["judge"]["dev_accuracy"] == 1.0 and data["classifier"]["dev_accuracy"] == 1.0
    # gamma 5 finds no marker ((3 + 1) / (0 + 1) < 5) and keeps every line; gamma 2 swaps the adjective
    sweep = {(r["rule"], r["gamma"]): r for r in data["swap_dev"]}
    assert sweep["context", 5.0]["markers"] == [0, 0] and sweep["context", 5.0]["accuracy"] == 0.0
    assert sweep["context", 2.0]["markers"] == [2, 2] and sweep["context", 2.0]["accuracy"] == 100.0
    copy, swap, moved = data["rows"]
    assert (
        copy["case"] == "copy the source"
        and copy["accuracy"] == 0.0
        and copy["self_bleu"] == pytest.approx(100.0)
    )
    assert swap["gamma"] == 2.0 and swap["accuracy"] == 100.0
    assert swap["directions"]["negative → positive"]["accuracy"] == 100.0
    assert swap["examples"][0] == {
        "source": "the soup was cold .",
        "output": "the soup was great .",  # cold and great share their neighbours; great < nice
        "reference": "the soup was great .",
    }
    assert moved["guidance"] == 2.0 and "error" not in moved and len(moved["examples"]) == 2
    assert 0.0 <= moved["accuracy"] <= 100.0 and moved["sentences_per_s"] > 0
    assert set(moved["directions"]) == {"negative → positive", "positive → negative"}
    table = attribute_style.render(json.loads(out.read_text()))
    assert (
        "| copy the source | both |" in table
        and "| model, guidance 2 | negative → positive |" in table
    )
    assert "| word swap (context, gamma 2) | positive → negative |" in table
