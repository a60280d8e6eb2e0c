"""Hyperparameter search on Optuna: TPE over the space, a resumable SQLite study, pruning on the validation bits/char
reported during training, divergent trials recorded, the table and the plot."""

from __future__ import annotations

import json
import math

import pytest

pytest.importorskip("optuna")

from textdiffusion.checkpoint import load_pretrained  # noqa: E402
from textdiffusion.config import DataConfig, ModelConfig, SearchConfig, TrainConfig  # noqa: E402
from textdiffusion.training.search import SearchError, format_trials, search  # noqa: E402

MODEL = ModelConfig(n_layers=1, n_heads=2, dim=32, max_len=32)
PNG = b"\x89PNG\r\n\x1a\n"


def config(**kwargs) -> TrainConfig:
    base = dict(
        steps=8, batch_size=4, log_every=4, eval_every=4, eval_batches=1, device="cpu",
        ema_decay=0.0,
    )  # fmt: skip
    return TrainConfig(**{**base, **kwargs})


def run(corpus_file, out, search_config, train_config=None):
    return search(
        DataConfig(data=(str(corpus_file),)),
        train_config or config(),
        out=out,
        search_config=search_config,
        model=MODEL,
        progress=False,
    )


def test_tpe_study_resumes_from_its_storage_and_samples_the_whole_space(tmp_path, corpus_file):
    """A search of 2 trials, then the same command with --trials 4 on the same storage: 4 trials in all, the first
    two kept as they were (as a killed search resumes)."""
    out = tmp_path / "search"
    space = dict(
        storage=f"sqlite:///{tmp_path / 'study.db'}",
        lr_range=(1e-3, 1e-2),
        batch_sizes=(4, 8),
        warmup_range=(0, 3),
        dims=(16, 32),
        pruner="none",
    )
    first = run(corpus_file, out, SearchConfig(trials=2, **space))
    assert sorted(t.number for t in first) == [0, 1]
    second = run(corpus_file, out, SearchConfig(trials=4, **space))
    assert sorted(t.number for t in second) == [0, 1, 2, 3]
    assert {t.number: t.params for t in first} == {
        t.number: t.params for t in second if t.number < 2
    }
    for t in second:
        assert t.state == "complete" and t.steps == 8 and math.isfinite(t.valid_bits_per_char)
        assert set(t.params) == {"lr", "batch_size", "warmup_steps", "dropout", "dim"}
        assert 1e-3 <= t.params["lr"] <= 1e-2 and t.params["batch_size"] in (4, 8)
        assert 0 <= t.params["warmup_steps"] <= 3
        assert 0.0 <= t.params["dropout"] <= 0.2 and t.params["dim"] in (16, 32)
    assert [t.valid_bits_per_char for t in second] == sorted(t.valid_bits_per_char for t in second)
    best = second[0]
    loaded = load_pretrained(best.out)  # the trial's sampled width and dropout are the model's
    assert loaded.config.model.dim == best.params["dim"]
    assert loaded.config.model.dropout == pytest.approx(best.params["dropout"])
    table = json.loads((out / "search.json").read_text())
    assert [row["number"] for row in table] == [t.number for t in second]
    assert (out / "search.png").read_bytes()[:8] == PNG
    assert (out / f"trial-{best.number:03d}" / "metrics.jsonl").exists()
    # the run again with --trials 4 has nothing left to do
    assert len(run(corpus_file, out, SearchConfig(trials=4, **space))) == 4


def test_a_trial_behind_the_median_is_pruned_at_its_first_report(tmp_path, corpus_file):
    """Trial 0 trains at lr 3e-3 and finishes; trial 1 (lr 1e-7, the same study) is worse than it at step 4, the
    first evaluation, and is stopped there: no model, but its run logs."""
    out = tmp_path / "search"
    common = dict(sampler="grid", batch_sizes=(4,), pruner="median", prune_after=1)
    train_config = config(steps=12)
    run(corpus_file, out, SearchConfig(lrs=(3e-3,), **common), train_config)
    trials = run(corpus_file, out, SearchConfig(lrs=(1e-7,), trials=2, **common), train_config)
    good, bad = trials
    assert (good.number, good.state, good.steps) == (0, "complete", 12)
    assert (bad.number, bad.state, bad.steps) == (1, "pruned", 4)
    assert bad.valid_bits_per_char > good.valid_bits_per_char
    assert (out / "trial-001" / "metrics.jsonl").exists()
    assert not (out / "trial-001" / "model.safetensors").exists()
    assert "pruned" in format_trials(trials).splitlines()[-1]


def test_a_divergent_trial_scores_inf_and_the_grid_goes_on(tmp_path, corpus_file):
    trials = run(
        corpus_file,
        tmp_path / "search",
        SearchConfig(sampler="grid", lrs=(3e-3, 1e6), batch_sizes=(4,), pruner="none"),
        config(steps=6, eval_every=0, warmup_steps=1),  # 1e6 blows the weights up
    )
    assert [t.params["lr"] for t in trials] == [3e-3, 1e6]
    assert math.isfinite(trials[0].valid_bits_per_char)
    assert trials[1].error and math.isinf(trials[1].valid_bits_per_char)
    assert "diverged" in format_trials(trials).splitlines()[-1]
    assert trials[0].flags == "--lr 0.003 --batch-size 4"


def test_search_without_optuna_says_what_to_install(tmp_path, corpus_file, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "optuna", None)  # `import optuna` now raises ImportError
    with pytest.raises(SearchError, match=r"pip install 'textdiffusion\[search\]'"):
        run(corpus_file, tmp_path / "search", SearchConfig())


def test_bad_search_spaces_fail_naming_the_flag(tmp_path, corpus_file):
    with pytest.raises(SearchError, match="--dims: 30 is not divisible by --n-heads 2 into even"):
        run(corpus_file, tmp_path / "a", SearchConfig(dims=(32, 30)))
    with pytest.raises(SearchError, match="--batch-sizes: 6 is not divisible by --grad-accum 4"):
        run(corpus_file, tmp_path / "b", SearchConfig(batch_sizes=(8, 6)), config(grad_accum=4))
    with pytest.raises(SearchError, match="--storage nonsense://"):
        run(corpus_file, tmp_path / "c", SearchConfig(storage="nonsense://x"))


def test_search_command_prints_the_table_and_the_best_flags(tmp_path, corpus_file, capsys):
    from textdiffusion.cli import main

    out = tmp_path / "search"
    main(
        ["search", "--out", str(out), "--data", str(corpus_file), "--preset", "tiny", "--max-len", "32",
         "--steps", "4", "--batch-size", "4", "--eval-every", "2", "--eval-batches", "1", "--device", "cpu",
         "--sampler", "grid", "--lrs", "3e-3", "--batch-sizes", "4", "--quiet"]
    )  # fmt: skip
    printed = capsys.readouterr().out
    assert "| trial | lr | batch_size |" in printed
    assert "best: --lr 0.003 --batch-size 4 (trial 0" in printed
    assert (out / "study.db").exists() and (out / "search.png").exists()


def test_a_task_search_picks_the_sampling_steps_by_the_task_metric(tmp_path):
    """For a conditional task the best trial's model rewrites the validation sources at each step count, and chrF
    against the references picks the count (written to sampling_steps.json)."""
    pytest.importorskip("sacrebleu")
    from textdiffusion.training.search_steps import STEP_GRID

    lines = [f"the {w} sat on the mat ." for w in ("cat", "dog", "bird", "fox", "hen", "cow")] * 6
    source, target = tmp_path / "src.txt", tmp_path / "tgt.txt"
    source.write_text("\n".join(lines) + "\n")
    target.write_text("\n".join(line.replace("the", "thy") for line in lines) + "\n")
    out = tmp_path / "search"
    search(
        DataConfig(data=(str(source),), targets=(str(target),), valid_fraction=0.2),
        config(steps=4, eval_every=0, warmup_steps=1),
        out=out,
        search_config=SearchConfig(sampler="grid", lrs=(3e-3,), batch_sizes=(4,), pruner="none"),
        model=ModelConfig(n_layers=1, n_heads=2, dim=32, max_len=96),
        task="style",
        progress=False,
    )
    chosen = json.loads((out / "sampling_steps.json").read_text())
    assert chosen["metric"] == "chrf" and chosen["best_steps"] in STEP_GRID
    assert sorted(int(n) for n in chosen["scores"]) == sorted(STEP_GRID)
    assert all(0.0 <= v <= 100.0 for v in chosen["scores"].values())
