from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from textdiffusion.cli import main


def run(*args, timeout=120):
    return subprocess.run(
        [sys.executable, "-m", "textdiffusion", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_help_lists_the_subcommands():
    result = run("--help")
    assert result.returncode == 0
    for name in ("train", "search", "generate", "infill", "eval"):
        assert name in result.stdout


def test_help_wraps_multi_line_descriptions_as_paragraphs():
    from tyro import _docstrings

    from textdiffusion.cli.common import join_help_lines
    from textdiffusion.cli.train import TrainArgs

    join_help_lines()  # as main() does
    join_help_lines()  # twice is harmless
    help_text = _docstrings.get_field_docstring(TrainArgs, "process", ())
    # the docstring of --process spans two source lines: its help is one paragraph that rich wraps to the terminal
    assert "\n" not in help_text and "analog-bit codes of the tokens" in help_text


@pytest.mark.parametrize("process", ["masked", "uniform", "gaussian"])
def test_train_three_steps_then_generate_infill_eval(tmp_path, corpus_file, process):
    out = tmp_path / "model"
    result = run(
        "train",
        "--process",
        process,
        "--out",
        str(out),
        "--data",
        str(corpus_file),
        "--preset",
        "tiny",
        "--max-len",
        "32",
        "--steps",
        "3",
        "--batch-size",
        "4",
        "--warmup-steps",
        "1",
        "--device",
        "cpu",
        "--quiet",
    )
    assert result.returncode == 0, result.stderr
    assert (out / "model.safetensors").is_file() and (out / "train_args.json").is_file()
    assert "train config:" in result.stderr  # the resolved config is printed

    result = run(
        "generate", "--model", str(out), "--n", "2", "--length", "20", "--steps", "4", "--json"
    )
    assert result.returncode == 0, result.stderr
    texts = json.loads(result.stdout)["texts"]
    assert len(texts) == 2 and all(len(t) == 20 for t in texts)

    result = run(
        "generate", "--model", str(out), "--n", "1", "--length", "20", "--steps", "4", "--show"
    )
    assert result.returncode == 0 and "step 4" in result.stderr  # the refinement is shown

    result = run(
        "infill", "The ___ sat.", "--model", str(out), "--steps", "4", "--blank-length", "3"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("The ") and result.stdout.rstrip("\n").endswith(" sat.")
    if process != "masked":  # blank lengths are chosen by masking the blanks: a masked model's job
        result = run("infill", "The ___ sat.", "--model", str(out), "--steps", "4")
        assert result.returncode == 2 and "--blank-length" in result.stderr

    result = run(
        "eval",
        "--model",
        str(out),
        "--data",
        str(corpus_file),
        "--samples",
        "2",
        "--max-windows",
        "4",
        "--json",
    )
    report = json.loads(result.stdout)
    for key in ("nll_per_token", "perplexity_bound", "bits_per_char", "n_chars"):
        assert key in report
    assert math.isfinite(
        report["bits_per_char"]
    )  # padding of the last window never turns it into NaN


@pytest.mark.parametrize(
    "args, message",
    [
        (["generate", "--model", "does-not-exist"], "no model 'does-not-exist'"),
        (["infill", "no blanks here", "--model", "{model}"], "no blank"),
        (["eval", "--data", "/nonexistent.txt", "--model", "{model}"], "no file matches"),
        (["train", "--out", "{tmp}/x", "--data", "/nonexistent.txt"], "no file matches"),
        (
            ["train", "--out", "{tmp}/x", "--data", "{corpus}", "--dim", "30", "--preset", "tiny"],
            "--dim",
        ),
        (
            ["search", "--out", "{tmp}/s", "--data", "{corpus}", "--resume"],
            "a search resumes by itself",
        ),
        (
            ["eval", "--data", "{corpus}", "--model", "{model}", "--steps", "0"],
            "--steps must be positive",
        ),
        (
            ["eval", "--data", "{corpus}", "--model", "{model}", "--samples", "0"],
            "samples must be at least 1",
        ),
        (
            ["eval", "--data", "{corpus}", "--model", "{model}", "--max-windows", "0"],
            "max_windows must be",
        ),
        (
            ["eval", "--data", "{corpus}", "--model", "{model}", "--batch-size", "0"],
            "batch_size must be",
        ),
        (
            [
                "train",
                "--out",
                "{tmp}/x",
                "--data",
                "{corpus}",
                "--process",
                "uniform",
                "--task",
                "denoise",
            ],
            "--process uniform trains language models only",
        ),
    ],
)
def test_user_errors_are_one_clear_line(tmp_path, corpus_file, trained_dir, capsys, args, message):
    args = [a.format(model=trained_dir, tmp=tmp_path, corpus=corpus_file) for a in args]
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_eval_bounds_the_sampler_by_refinement_steps(corpus_file, trained_dir, capsys):
    main(["eval", "--data", str(corpus_file), "--model", str(trained_dir), "--steps", "1", "4", "64"]
         + ["--max-windows", "8", "--samples", "16", "--json"])  # fmt: skip
    report = json.loads(capsys.readouterr().out)
    one, four, many = report["by_steps"]
    assert [r["steps"] for r in report["by_steps"]] == [1, 4, 64] and report["steps"] is None
    assert one["stderr_bits_per_char"] == 0.0  # one step masks everything: nothing left to chance
    for r in report[
        "by_steps"
    ]:  # the cost side: one sample with the cached sampler, at most one call per step
        assert (
            r["sampler"] == "cached"
            and 1 <= r["network_calls"] <= r["steps"]
            and r["sample_seconds"] > 0
        )
    # a trained model: fewer refinement steps, a looser bound; many steps approach the continuous-time one
    assert one["bits_per_char"] > four["bits_per_char"] > many["bits_per_char"]
    noise = 3 * math.hypot(many["stderr_bits_per_char"], report["stderr_bits_per_char"])
    assert many["bits_per_char"] > report["bits_per_char"] - noise


def test_lexicon_option_errors(tmp_path):
    from textdiffusion.cli.common import CLIError
    from textdiffusion.cli.denoise import load_lexicon

    assert load_lexicon("none") is None
    with pytest.raises(CLIError, match="no such file"):
        load_lexicon(str(tmp_path / "missing.txt"))
    words = tmp_path / "words.txt"
    words.write_text("house 10\n")
    with pytest.raises(CLIError, match="must be 1, 2 or 3"):
        load_lexicon(str(words), 5)
    assert load_lexicon(str(words), 3).candidates("hxxse", 2) == [("house", 10)]
    words.write_text("\n")
    with pytest.raises(CLIError, match="no 'term count' lines"):
        load_lexicon(str(words))
