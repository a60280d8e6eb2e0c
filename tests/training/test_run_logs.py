"""Run logs: OUT/metrics.jsonl and OUT/curves.png, resuming without duplicate steps, the default warm-up and its
warning, and stops before the first checkpoint that still leave a loadable model."""

from __future__ import annotations

import json
import logging

import pytest

from textdiffusion.checkpoint import load_pretrained
from textdiffusion.config import DataConfig, ModelConfig, TrainConfig
from textdiffusion.training import find_checkpoints, train
from textdiffusion.training.optim import learning_rate, warmup_steps, warmup_warning
from textdiffusion.training.runlog import LoggingError, plot_curves, read_metrics

TINY = ModelConfig(n_layers=2, n_heads=2, dim=32, max_len=32)
PNG = b"\x89PNG\r\n\x1a\n"


def quick(**kwargs) -> TrainConfig:
    base = dict(
        steps=6, batch_size=4, lr=1e-3, log_every=2, eval_every=3, eval_batches=1, save_every=4,
        device="cpu",
    )  # fmt: skip
    return TrainConfig(**{**base, **kwargs})


def run(corpus_file, out, config, **kwargs):
    return train(
        DataConfig(data=(str(corpus_file),)), config, out=out, model=TINY, progress=False, **kwargs
    )


def test_metrics_jsonl_holds_every_log_and_evaluation_step_and_curves_are_drawn(
    tmp_path, corpus_file
):
    out = tmp_path / "run"
    config = quick()
    result = run(corpus_file, out, config)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [2, 3, 4, 6]  # log steps 2, 4, 6; evaluations at 3 and 6
    assert set(rows[1]) == {"step", "valid_nll", "valid_bits_per_char"}
    assert set(rows[0]) == {"step", "loss", "lr", "tokens_per_second"}
    assert set(rows[-1]) == {
        "step", "loss", "lr", "tokens_per_second", "valid_nll", "valid_bits_per_char",
    }  # fmt: skip
    for r in rows:
        if "lr" in r:  # the rate the step just taken used
            assert r["lr"] == pytest.approx(learning_rate(r["step"] - 1, config))
            assert r["loss"] > 0 and r["tokens_per_second"] > 0
    assert rows[-1]["loss"] == pytest.approx(result.loss)
    assert rows[-1]["valid_bits_per_char"] == pytest.approx(result.valid_bits_per_char)
    assert (out / "curves.png").read_bytes()[:8] == PNG


def test_resume_continues_metrics_without_duplicate_steps(tmp_path, corpus_file):
    """A run that dies after its step-4 checkpoint but has logged step 6 resumes at 4: its metrics.jsonl then
    matches an uninterrupted run's, step for step."""
    reference = tmp_path / "reference"
    run(corpus_file, reference, quick(steps=8))

    def crash(evaluation):
        if evaluation.step == 6:
            raise RuntimeError("killed")

    killed = tmp_path / "killed"
    with pytest.raises(RuntimeError, match="killed"):
        run(corpus_file, killed, quick(steps=8), callbacks=[crash])
    assert [p.name for p in find_checkpoints(killed)] == ["step-0000004"]
    assert [r["step"] for r in read_metrics(killed / "metrics.jsonl")][-1] == 6
    with (killed / "metrics.jsonl").open("a") as f:
        f.write('{"step": 7, "loss": 1.')  # a line cut short by the kill
    run(corpus_file, killed, quick(steps=8), resume=True)

    want, got = read_metrics(reference / "metrics.jsonl"), read_metrics(killed / "metrics.jsonl")
    assert [r["step"] for r in got] == [r["step"] for r in want] == [2, 3, 4, 6, 8]
    for a, b in zip(want, got):
        for key in ("loss", "lr", "valid_bits_per_char"):
            assert (key in a) == (key in b)
            if key in a:
                assert b[key] == pytest.approx(a[key], rel=1e-5), (a["step"], key)


def test_default_warm_up_is_min_200_or_a_tenth_and_a_longer_one_warns(
    tmp_path, corpus_file, caplog
):
    assert warmup_steps(TrainConfig(steps=50)) == 5
    assert warmup_steps(TrainConfig(steps=5000)) == 200
    assert warmup_steps(TrainConfig(steps=50, warmup_steps=30)) == 30
    config = TrainConfig(steps=50, lr=1.0)
    assert [learning_rate(s, config) for s in range(5)] == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0])
    # with a time budget the default warm-up also ends at 10% of it, whichever comes first
    timed = TrainConfig(steps=5000, lr=1.0, max_minutes=1.0)
    assert learning_rate(20, timed, time_fraction=0.05) == pytest.approx(0.5)
    assert learning_rate(20, timed, time_fraction=0.1) == pytest.approx(1.0)
    assert learning_rate(199, timed, time_fraction=0.01) == pytest.approx(1.0)
    assert learning_rate(3000, timed, time_fraction=1.0) == pytest.approx(0.1)  # the clock ran out
    # a set warm-up is kept as it is, and one longer than the default warns
    set_warmup = TrainConfig(steps=5000, lr=1.0, warmup_steps=100)
    assert learning_rate(20, set_warmup) == pytest.approx(0.21)
    assert warmup_warning(TrainConfig(steps=50)) is None
    assert warmup_warning(TrainConfig(steps=50, warmup_steps=5)) is None
    assert "--warmup-steps 30 is longer than the default" in warmup_warning(
        TrainConfig(steps=50, warmup_steps=30)
    )
    with caplog.at_level(logging.WARNING):
        run(corpus_file, tmp_path / "run", quick(steps=4, warmup_steps=3, eval_every=0))
    assert "--warmup-steps 3 is longer than the default" in caplog.text


def test_keyboard_interrupt_before_the_first_checkpoint_leaves_a_loadable_model(
    tmp_path, corpus_file
):
    def interrupt(evaluation):
        if evaluation.step == 2:
            raise KeyboardInterrupt

    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        run(corpus_file, out, quick(steps=50, eval_every=2, save_every=100), callbacks=[interrupt])
    assert [p.name for p in find_checkpoints(out)] == ["step-0000002"]
    assert load_pretrained(out).config.model.dim == 32
    assert (out / "curves.png").read_bytes()[:8] == PNG
    result = run(corpus_file, out, quick(steps=4, eval_every=2), resume=True)
    assert result.step == 4
    assert [r["step"] for r in read_metrics(out / "metrics.jsonl")] == [2, 4]


def test_a_time_budget_ending_before_the_first_checkpoint_saves_the_model(tmp_path, corpus_file):
    out = tmp_path / "run"
    result = run(
        corpus_file, out, quick(steps=1000, log_every=1, save_every=1000, max_minutes=1e-5)
    )
    assert 1 <= result.step < 1000
    assert [p.name for p in find_checkpoints(out)] == [f"step-{result.step:07d}"]
    load_pretrained(out)
    assert (out / "curves.png").exists()


def test_tensorboard_logs_or_says_what_to_install(tmp_path, corpus_file):
    out = tmp_path / "run"
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        with pytest.raises(LoggingError, match="pip install tensorboard"):
            run(corpus_file, out, quick(log=("tensorboard",)))
        assert not find_checkpoints(out)
    else:
        run(corpus_file, out, quick(log=("tensorboard",)))
        assert list((out / "tensorboard").glob("events.out.tfevents.*"))


def test_curves_of_an_empty_log_are_not_drawn(tmp_path):
    (tmp_path / "metrics.jsonl").write_text("")
    assert plot_curves(tmp_path / "metrics.jsonl", tmp_path / "curves.png") is None
    assert not (tmp_path / "curves.png").exists()
