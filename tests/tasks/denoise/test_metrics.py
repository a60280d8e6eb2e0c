"""Correction evaluation: parsers on hand-written files in each format, GLEU against hand-computed values, the word
metrics, and the whole harness with the copy corrector on a tiny fake data folder. Never reads ../shared."""

from __future__ import annotations

import json
import math
import typing

import pytest

from textdiffusion.data.corpus import DataError
from textdiffusion.tasks.denoise.metrics import (
    WORD_LISTS,
    IdentityCorrector,
    WordPairs,
    changed_share,
    correct_words_of,
    evaluate_corrector,
    format_table,
    gleu,
    gleu_statistics,
    load_word_list,
    read_jfleg,
    read_mitton,
    read_norvig,
    unchanged_rate,
    word_accuracy,
)

NORVIG = "contented: contenpted contende\nbeginning: begining\n"
MITTON = "$Nevada\nnevade\n$a_lot\nalot\nallot\n$about\nabouy\n"
HOLBROOK = "$?\nqwzx 1\n$After\nArtair 1\n$Hong_Kong\nHonk_Kong 2\n"
SOURCE = "a b c d e f g h"
REFERENCE = "a b c d x f g h"


@pytest.fixture()
def data_dir(tmp_path):
    """A data folder in the shared layout: every word list (visible parts) and a JFLEG test split."""
    spelling = tmp_path / "spelling"
    (spelling / "norvig").mkdir(parents=True)
    (spelling / "mitton").mkdir()
    (spelling / "norvig" / "spell-testset1.visible.txt").write_text(NORVIG)
    (spelling / "norvig" / "spell-testset2.txt").write_text("their: thier\n")
    (spelling / "mitton" / "wikipedia.visible.dat").write_text(MITTON)
    (spelling / "mitton" / "aspell.visible.dat").write_text("$Susan\nsusan\n$ability\nabilitey\n")
    (spelling / "mitton" / "birkbeck_missp.visible.dat").write_text("$April\nApirl\n")
    (spelling / "mitton" / "holbrook-missp.visible.dat").write_text(HOLBROOK)
    jfleg = tmp_path / "jfleg" / "test"
    jfleg.mkdir(parents=True)
    (jfleg / "test.visible.src").write_text(f"{SOURCE} \nThe cat sat .\n")
    (jfleg / "test.visible.spellchecked.src").write_text("ignored\nignored\n")
    for k in range(4):
        (jfleg / f"test.visible.ref{k}").write_text(f"{REFERENCE}\nThe cat sat down .\n")
    return tmp_path


def test_read_norvig(tmp_path):
    path = tmp_path / "norvig.txt"
    path.write_text(NORVIG + "\n")
    pairs = read_norvig(path, name="n")
    assert pairs.name == "n"
    assert pairs.wrong == ["contenpted", "contende", "begining"]
    assert pairs.right == ["contented", "contented", "beginning"]
    path.write_text("no colon here\n")
    with pytest.raises(DataError, match="norvig.txt:1"):
        read_norvig(path)


def test_read_mitton_reads_underscores_as_spaces(tmp_path):
    path = tmp_path / "wiki.dat"
    path.write_text(MITTON)
    pairs = read_mitton(path)
    assert pairs.wrong == ["nevade", "alot", "allot", "abouy"]
    assert pairs.right == ["Nevada", "a lot", "a lot", "about"]
    path.write_text("orphan\n$word\n")
    with pytest.raises(DataError, match="before any"):
        read_mitton(path)


def test_read_holbrook_drops_counts_and_unknown_targets(tmp_path):
    path = tmp_path / "holbrook.dat"
    path.write_text(HOLBROOK)
    pairs = read_mitton(path)
    assert pairs.wrong == ["Artair", "Honk Kong"]
    assert pairs.right == ["After", "Hong Kong"]


def test_load_word_list_finds_full_or_visible_files(data_dir):
    assert load_word_list(data_dir, "norvig1").right[0] == "contented"  # .visible file
    assert load_word_list(data_dir, "norvig2").wrong == ["thier"]  # upstream name
    with pytest.raises(ValueError, match="unknown word list"):
        load_word_list(data_dir, "nope")
    with pytest.raises(DataError, match="expected one"):
        load_word_list(data_dir / "missing", "aspell")


def test_cli_choices_match_the_word_lists():
    from textdiffusion.cli.denoise_eval import WordListName

    assert set(typing.get_args(WordListName)) == set(WORD_LISTS)


def test_read_jfleg_pairs_sources_with_their_four_references(data_dir):
    data = read_jfleg(data_dir, "test")
    assert data.name == "jfleg-test"
    assert data.sources == [SOURCE, "The cat sat ."]  # the spell-checked source is not picked
    assert data.references[1] == ["The cat sat down ."] * 4
    (data_dir / "jfleg" / "test" / "test.visible.ref2").write_text("one line only\n")
    with pytest.raises(DataError, match="differ in length"):
        read_jfleg(data_dir, "test")


def test_gleu_statistics_by_hand():
    # H changes the error (e) but wrongly (y): 7 of 8 unigrams match R; bigrams ab bc cd fg gh; trigrams abc bcd fgh;
    # 4-grams abcd. Nothing from S \ R (e, de ef, cde def efg, ...) is kept, so nothing is subtracted.
    assert gleu_statistics("a b c d y f g h", SOURCE, REFERENCE) == [8, 8, 7, 8, 5, 7, 3, 6, 1, 5]
    # Copying keeps e (-1), de ef (-2), cde def efg (-3) and bcde cdef defg efgh (-4): the penalty of GLEU.
    assert gleu_statistics(SOURCE, SOURCE, REFERENCE) == [8, 8, 6, 8, 3, 7, 0, 6, 0, 5]


def test_gleu_by_hand_and_fixing_beats_copying():
    refs = [[REFERENCE]]
    assert gleu([REFERENCE], [SOURCE], refs) == pytest.approx(1.0)
    # (7/8 * 5/7 * 3/6 * 1/5) ** (1/4) = (1/16) ** (1/4)
    assert gleu(["a b c d y f g h"], [SOURCE], refs) == pytest.approx(0.5)
    assert (
        gleu([SOURCE], [SOURCE], refs) == 0.0
    )  # a zero statistic scores 0, as in the official scorer
    # too short: precisions are all 1, the brevity penalty is exp(1 - r/c) = exp(1 - 8/7)
    assert gleu(["a b c d x f g"], [SOURCE], refs) == pytest.approx(math.exp(-1 / 7))


def test_gleu_with_several_references_averages_random_draws():
    wrong = "a b c d y f g h"
    two = gleu([wrong], [SOURCE], [[REFERENCE, wrong]])
    assert 0.5 < two < 1.0  # each draw scores 0.5 (first reference) or 1 (second)
    assert gleu([wrong], [SOURCE], [[REFERENCE] * 4]) == pytest.approx(0.5)
    assert gleu([wrong], [SOURCE], [[REFERENCE, wrong]]) == two  # seeded: deterministic
    with pytest.raises(ValueError):
        gleu([wrong], [SOURCE, SOURCE], [[REFERENCE]])


def test_word_metrics():
    assert word_accuracy(
        ["Nevada", "abuot", "a lot"], ["nevada", "about", "a lot"]
    ) == pytest.approx(2 / 3)
    with pytest.raises(ValueError):
        word_accuracy(["a"], ["a", "b"])
    assert unchanged_rate(["The", "cat", "cot"], ["the", "cat", "cat"]) == pytest.approx(2 / 3)
    pairs = WordPairs("x", ["a", "b", "c"], ["The", "the", "a lot"])
    assert correct_words_of(pairs) == ["The"]  # distinct case-insensitively, single words only
    assert changed_share(["a  b", "a c"], ["a b", "a b"]) == 0.5


class FixTypos:
    """A corrector that knows a few typos."""

    name = "fixer"
    table = {"contenpted": "contented", "begining": "beginning", "thier": "their", "e": "x"}

    def correct_words(self, words):
        return [self.table.get(w, w) for w in words]

    def correct_sentences(self, lines):
        return [" ".join(self.table.get(t, t) for t in line.split()) for line in lines]


def test_copy_corrector_end_to_end(data_dir):
    result = evaluate_corrector(IdentityCorrector(), data_dir=data_dir)
    assert result["name"] == "copy"
    assert set(result["words"]) == set(WORD_LISTS)
    aspell = result["words"]["aspell"]
    assert aspell["n"] == 2 and aspell["accuracy"] == 0.5  # susan -> Susan counts: case is ignored
    assert all(w["unchanged"] == 1.0 for w in result["words"].values())
    test = result["sentences"]["jfleg-test"]
    assert test["n"] == 2 and test["changed"] == 0.0
    assert test["gleu"] == 0.0  # copying keeps n-grams every reference changed
    assert test["words_per_s"] > 0 and test["sentences_per_s"] > 0


def test_a_fixer_scores_higher_and_limit_spreads(data_dir):
    fixer = evaluate_corrector(FixTypos(), data_dir=data_dir, lists=["norvig1"], jfleg_split="test")
    copy = evaluate_corrector(IdentityCorrector(), data_dir=data_dir, lists=["norvig1"])
    assert fixer["words"]["norvig1"]["accuracy"] == pytest.approx(2 / 3)
    assert fixer["sentences"]["jfleg-test"]["gleu"] > copy["sentences"]["jfleg-test"]["gleu"]
    limited = evaluate_corrector(
        FixTypos(), data_dir=data_dir, lists=["norvig1"], jfleg_split=None, limit=2
    )
    assert limited["words"]["norvig1"]["n"] == 2 and limited["sentences"] == {}
    with pytest.raises(ValueError, match="JFLEG split"):
        evaluate_corrector(FixTypos(), data_dir=data_dir, lists=[], jfleg_split="train")
    table = format_table([fixer, copy, limited])
    assert table.splitlines()[0] == "| set | metric | fixer | copy | fixer |"
    # limit=2 spreads over the list: its first and last misspellings, both known to the fixer
    assert "| norvig1 (3 / 2) | top-1 accuracy | 0.667 | 0.000 | 1.000 (n=2) |" in table
    assert "| jfleg-test (2) | GLEU |" in table and "–" in table


def test_symspell_baseline(tmp_path):
    pytest.importorskip("symspellpy")
    from textdiffusion.tasks.denoise.metrics import SymSpellCorrector

    dictionary = tmp_path / "dict.txt"  # the bundled dictionary takes seconds to index
    dictionary.write_text("spelling 100\nthe 10000\nhouse 500\n")
    fixer = SymSpellCorrector(dictionary=dictionary)
    assert fixer.correct_words(["speling", "the", "Hous", "zzzzzzzz"]) == [
        "spelling",
        "the",
        "House",
        "zzzzzzzz",
    ]
    assert fixer.correct_sentences(["Teh speling , 42 n't ."]) == ["The spelling , 42 n't ."]


def test_pyspellchecker_baseline():
    pytest.importorskip("spellchecker")
    from textdiffusion.tasks.denoise.metrics import PySpellCorrector

    fixer = PySpellCorrector()
    assert fixer.correct_words(["speling", "The", "HOUSSE"]) == ["spelling", "The", "HOUSE"]
    assert fixer.correct_sentences(["Ths house , 42 ."])[0].endswith("house , 42 .")


def test_eval_denoise_cli_runs_the_copy_baseline_without_a_model(
    data_dir, tmp_path, capsys, monkeypatch
):
    import textdiffusion.cli.denoise_eval as module

    monkeypatch.setattr(module, "_baselines", lambda args: [(IdentityCorrector(), args.limit)])
    args = module.EvalDenoiseArgs(
        model=str(tmp_path / "no-such-model"),
        data_dir=str(data_dir),
        lists=("norvig1", "holbrook"),
        device="cpu",
        out=str(tmp_path / "out"),
    )
    module.eval_denoise(args)
    captured = capsys.readouterr()
    assert "not loaded" in captured.err
    assert captured.out.splitlines()[0] == "| set | metric | copy |"
    assert (tmp_path / "out" / "results.json").is_file()
    assert (tmp_path / "out" / "results.md").is_file()


def test_eval_denoise_cli_checks_targets_and_user_errors(data_dir, tmp_path, capsys, monkeypatch):
    import textdiffusion.cli.denoise_eval as module
    from textdiffusion.cli.common import CLIError

    class FakeSymSpell(IdentityCorrector):
        name = "symspell"

    monkeypatch.setattr(module, "_load_model", lambda args: FixTypos())
    monkeypatch.setattr(
        module, "_baselines", lambda args: [(FakeSymSpell(), None), (IdentityCorrector(), None)]
    )
    args = module.EvalDenoiseArgs(data_dir=str(data_dir), lists=("norvig1",), json=True)
    module.eval_denoise(args)
    report = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in report["results"]] == ["fixer", "symspell", "copy"]
    assert report["targets"][0].startswith("PASS norvig1: top-1 0.667 vs symspell 0.000")
    assert report["targets"][1].startswith("PASS jfleg-test: GLEU")
    with pytest.raises(CLIError, match="--data-dir"):
        module.eval_denoise(module.EvalDenoiseArgs(data_dir=str(tmp_path / "nowhere")))
    monkeypatch.setattr(module, "_load_model", lambda args: None)
    with pytest.raises(CLIError, match="nothing to score"):
        module.eval_denoise(module.EvalDenoiseArgs(data_dir=str(data_dir), baselines=False))
