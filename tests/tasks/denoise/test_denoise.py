from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from textdiffusion.checkpoint import CheckpointConfig, save_pretrained
from textdiffusion.config import ModelConfig, SampleConfig
from textdiffusion.data import Tokenizer
from textdiffusion.networks import DiffusionTransformer
from textdiffusion.pipelines import InputError
from textdiffusion.tasks.denoise.pipeline import DenoisePipeline, edit_distance, plausible_edit


@pytest.fixture(scope="module")
def denoiser_dir(tmp_path_factory):
    """An untrained character denoiser: what it writes is noise, so every guard of the pipeline is exercised."""
    tok = Tokenizer.train_char(
        ["The quick brown fox jumps over the lazy dog. 0123456789,;:!?'\"-()"]
    )
    config = CheckpointConfig(
        model=ModelConfig(vocab_size=tok.vocab_size, n_layers=1, n_heads=2, dim=32, max_len=96),
        sample=SampleConfig(sampler="confidence", steps=4, threshold=0.9),
        task="denoise",
        task_config={"max_chars": 40},
    )
    torch.manual_seed(0)
    return save_pretrained(
        DiffusionTransformer(config.model), tok, tmp_path_factory.mktemp("d") / "m", config=config
    )


def test_edit_distance_and_plausibility():
    assert edit_distance("kitten", "sitting") == 3
    assert edit_distance("", "abc") == 3
    assert plausible_edit("Thsi is a tset.", "This is a test.")
    assert not plausible_edit("Thsi is a tset.", "Completely different text here")
    assert not plausible_edit("word", "   ")


def test_lines_are_kept_in_order_and_nothing_is_dropped(denoiser_dir):
    pipe = DenoisePipeline.from_pretrained(denoiser_dir)
    lines = ["", "  The fox.  ", "\t", "Zoë über straße ☃", "The quick brown fox " * 12, "x"]
    out = pipe(lines, seed=0)
    assert len(out.texts) == len(lines)
    assert out.texts[0] == "" and out.texts[2] == "\t"
    assert out.texts[1].startswith("  ") and out.texts[1].endswith(
        "  "
    )  # surrounding whitespace kept
    assert out.texts[3] == lines[3]  # never-seen characters: returned unchanged
    long = out.texts[4]
    assert len(long) >= len(lines[4]) * 2 // 3  # chunked and reassembled, not truncated
    assert pipe(lines, seed=0).texts == out.texts  # same seed, same output


def test_empty_and_non_text_input(denoiser_dir):
    pipe = DenoisePipeline.from_pretrained(denoiser_dir)
    assert pipe([]).texts == []
    assert pipe("").texts == [""]
    assert pipe("\n\n").texts == ["\n\n"]
    with pytest.raises(InputError, match="batch_size must be at least 1, got 0"):
        pipe(["x"], batch_size=0)


def test_cli_file_round_trip_keeps_bytes(tmp_path, denoiser_dir):
    source = tmp_path / "in.txt"
    raw = b"The fox.\n\n\xff\xfe not utf-8 \x80\nlast line\n"
    source.write_bytes(raw)
    out = tmp_path / "out.txt"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "textdiffusion",
            "denoise",
            "--file",
            str(source),
            "--out",
            str(out),
            "--model",
            str(denoiser_dir),
            "--device",
            "cpu",
        ],
        capture_output=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr.decode()
    got = out.read_bytes().split(b"\n")
    want = raw.split(b"\n")
    assert len(got) == len(want)
    assert got[1] == b"" and got[2] == want[2]  # undecodable bytes survive byte for byte
    # the final newline ends the fourth line
    assert got[-1] == b"" and b" of 4 lines changed" in result.stderr
    # `--file -` reads standard input and, without --out, writes the same bytes to standard output
    piped = subprocess.run(
        [
            sys.executable,
            "-m",
            "textdiffusion",
            "denoise",
            "--file",
            "-",
            "--model",
            str(denoiser_dir),
        ],
        input=raw,
        capture_output=True,
        timeout=120,
    )
    assert piped.returncode == 0, piped.stderr.decode()
    assert piped.stdout == out.read_bytes()


def test_cli_needs_text_or_file(denoiser_dir):
    result = subprocess.run(
        [sys.executable, "-m", "textdiffusion", "denoise", "--model", str(denoiser_dir)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "--file" in result.stderr


def test_guard_keeps_only_changes_the_model_prefers_to_the_input(denoiser_dir):
    pipe = DenoisePipeline.from_pretrained(denoiser_dir)
    pieces = [
        "a",
        "ox",
        "fox",
        "dog",
        "The",
        "lazy",
        "q",
        "z",
        "he",
    ]  # short: random outputs can be plausible
    # the same candidate twice: paired scores are equal, so it is never "preferred" to itself
    same, calls = pipe.prefers_outputs(pieces, pieces)
    assert same == [False] * len(pieces) and calls > 0
    for seed in range(10):  # a seed where the untrained model makes some plausible-looking change
        free, _ = pipe.correct_pieces(pieces, guard=False, seed=seed, temperature=1.0)
        changed = [i for i, (a, b) in enumerate(zip(pieces, free)) if a != b]
        if changed:
            break
    assert changed, "the untrained model should change something"
    guarded, _ = pipe.correct_pieces(pieces, guard=True, seed=seed, temperature=1.0)
    verdicts, _ = pipe.prefers_outputs([pieces[i] for i in changed], [free[i] for i in changed])
    for i, ok in zip(changed, verdicts):
        assert guarded[i] == (free[i] if ok else pieces[i])
    assert all(g == p for i, (g, p) in enumerate(zip(guarded, pieces)) if i not in changed)


@pytest.fixture(scope="module")
def lexicon(tmp_path_factory):
    from textdiffusion.tasks.denoise.lexicon import Lexicon

    path = tmp_path_factory.mktemp("lex") / "words.txt"
    counts = {
        "the": 10**6,
        "quick": 10**9,
        "quack": 10,
        "brown": 500,
        "fox": 400,
        "dog": 300,
        "lazy": 200,
    }
    path.write_text("".join(f"{w} {c}\n" for w, c in counts.items()))
    return Lexicon(path, max_edit_distance=2)


def test_lexicon_mode_changes_only_unknown_words(denoiser_dir, lexicon):
    pipe = DenoisePipeline.from_pretrained(denoiser_dir)
    lines = [
        "Teh quikc brown fox.",
        "  the lazy dog  ",  # all known: byte-identical
        "TV, Zoë's café, 42nd, don't",  # acronyms, non-ASCII, digits, contractions: never checked
        "",
        "the quick brown fox " * 30,  # long lines need no chunking: words are corrected one by one
        "zzzzzzzz fox",  # no candidate: kept
    ]
    out = pipe(lines, lexicon=lexicon)
    assert out.texts[1:] == lines[1:] and out.changed[1:] == [False] * 5
    # an untrained model cannot tell "quick" from "quack": the prior (10^9 vs 10) decides; "Teh" keeps its case
    assert out.texts[0] == "The quick brown fox." and out.changed[0]
    assert out.network_calls > 0


def test_choose_words_is_the_model_score_minus_the_prior(denoiser_dir, lexicon):
    import math

    pipe = DenoisePipeline.from_pretrained(denoiser_dir)
    words = ["quikc", "quck", "fx"]  # two candidates (quick, quack), two, and one
    sources, outputs, counts = [], [], []
    for word in words:
        for term, count in lexicon.candidates(word, 20):
            sources.append(word)
            outputs.append(term)
            counts.append(count)
    nll, calls = pipe.conditional_nll(sources, outputs, samples=4, batch_size=8)
    best = {}
    for word in words:
        scores = {
            o: v - 0.5 * math.log(c)
            for s, o, c, v in zip(sources, outputs, counts, nll)
            if s == word
        }
        best[word] = min(scores, key=scores.get)
    # screening with 4 samples and keeping one candidate per word: the second round has nothing to choose
    chosen, more = pipe.choose_words(words, lexicon, screen=4, shortlist=1, batch_size=8)
    assert (
        chosen == [best[w] for w in words] and 0 < more < calls
    )  # a lone candidate needs no score
    # keeping all: the second round rescores every candidate, with the same draws when the sample counts agree
    again, twice = pipe.choose_words(
        words, lexicon, screen=4, shortlist=20, samples=4, batch_size=8
    )
    assert again == chosen and twice == 2 * more


def test_conditional_nll_draws_its_masks_from_the_source(denoiser_dir):
    """Common random numbers: the same (source, output) scores the same in any batch, position or call."""
    pipe = DenoisePipeline.from_pretrained(denoiser_dir)
    with torch.no_grad():  # sharper predictions than at initialisation, so that the masks matter
        for p in pipe.model.parameters():
            p.mul_(8)
    a, _ = pipe.conditional_nll(
        ["fox", "the lazy dog", "fox"], ["fox", "the lazy dog", "fix"], batch_size=2
    )
    b, _ = pipe.conditional_nll(["the lazy dog", "fox"], ["the lazy dog", "fox"], batch_size=8)
    assert a[0] == pytest.approx(b[1], rel=1e-5) and a[1] == pytest.approx(b[0], rel=1e-5)
    c, _ = pipe.conditional_nll(
        ["the lazy dog"], ["the lazy dog"], seed=1
    )  # another seed: other masks
    assert c[0] != pytest.approx(a[1], rel=1e-3)
