from __future__ import annotations

import pytest

from textdiffusion.data.corpus import DataError
from textdiffusion.data.lexicon import WORD, Lexicon, recase


@pytest.fixture(scope="module")
def lexicon(tmp_path_factory):
    path = tmp_path_factory.mktemp("lex") / "words.txt"  # the bundled list takes seconds to index
    path.write_text("the 10000\nspelling 100\nspewing 300\nhouse 500\nhorse 400\ncat 50\n")
    return Lexicon(path)


def test_known_words_and_counts(lexicon):
    assert len(lexicon) == 6
    assert lexicon.known("The") and lexicon.count("HOUSE") == 500
    assert not lexicon.known("hous") and lexicon.count("hous") == 0


def test_which_words_are_checked(lexicon):
    assert lexicon.checks("Hous") and lexicon.checks("speling")
    assert not lexicon.checks("house")  # known
    assert not lexicon.checks("TV")  # an acronym
    assert not lexicon.checks("cat's") and not lexicon.checks("didn't")
    assert not lexicon.checks("3rd") and not lexicon.checks("Zoë")  # not a word of ASCII letters
    words = [m.group() for m in WORD.finditer("Teh cat's car-park, 3rd Zoë utf-8 A4-paper (hous).")]
    assert words == ["Teh", "cat's", "car", "park", "hous"]


def test_candidates_nearest_first_then_most_frequent(lexicon):
    assert lexicon.candidates("speling", 5) == [
        ("spewing", 300),
        ("spelling", 100),
    ]  # both 1 edit away
    assert lexicon.candidates("hors", 5) == [("horse", 400), ("house", 500)]  # 1 and 2 edits
    assert lexicon.candidates("house", 1) == [
        ("house", 500)
    ]  # a known word is its own first candidate
    assert lexicon.candidates("zzzzzzzz", 5) == []


def test_recase():
    assert recase("Teh", "the") == "The" and recase("TEH", "the") == "THE"
    assert recase("iPhone", "iphone") == "iPhone"  # unchanged: its own casing
    assert recase("hous", "house") == "house"


def test_bad_lexicon_files(tmp_path):
    with pytest.raises(DataError, match="cannot read"):
        Lexicon(tmp_path / "missing.txt")
    empty = tmp_path / "empty.txt"
    empty.write_text("\n")
    with pytest.raises(DataError, match="no 'term count' lines"):
        Lexicon(empty)


def test_unknown_words_skip_names_inside_sentences(lexicon):
    text = "Hous the Diana Krall. Teh cat (Hous) the: Teh hous"
    assert [m.group() for m in lexicon.unknown_words(text)] == [
        "Hous",
        "Teh",
        "Hous",
        "Teh",
        "hous",
    ]
    assert [m.start() for m in lexicon.unknown_words("  teh")] == [2]
