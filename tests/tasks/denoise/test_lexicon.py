from __future__ import annotations

import pytest

from textdiffusion.data.corpus import DataError
from textdiffusion.tasks.denoise.lexicon import WORD, Lexicon, recase


@pytest.fixture(scope="module")
def lexicon(tmp_path_factory):
    path = tmp_path_factory.mktemp("lex") / "words.txt"  # the bundled list takes seconds to index
    path.write_text("the 10000\nspelling 100\nspewing 300\nhouse 500\nhorse 400\ncat 50\n")
    return Lexicon(path)


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    """Words, and word pairs counted in a corpus 10 times larger than the words'."""
    path = tmp_path_factory.mktemp("lex") / "pairs.txt"
    words = {"a": 1000, "lot": 30, "do": 200, "not": 300, "don't": 1, "done": 60, "dot": 10, "t": 5}
    words |= {"an": 100, "other": 100, "another": 494}
    pairs = {"a lot": 500, "do not": 900, "do t": 60, "an other": 400, "zz top": 21140}
    path.write_text("".join(f"{k} {v}\n" for d in (words, pairs) for k, v in d.items()))
    return Lexicon(path)


def test_known_words_and_counts(lexicon):
    assert len(lexicon) == 6
    assert lexicon.known("The") and lexicon.count("HOUSE") == 500
    assert not lexicon.known("hous") and lexicon.count("hous") == 0


def test_which_words_are_checked(lexicon):
    assert lexicon.checks("Hous") and lexicon.checks("speling")
    assert not lexicon.checks("house")  # known
    assert not lexicon.checks("TV")  # an acronym
    # "i.e.", "J. R. Hartley": one letter is no word
    assert not lexicon.checks("e") and not lexicon.checks("R")
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


def test_glued_words_and_lost_apostrophes(pairs):
    # scale 1/10 (2,300 word counts, 23,000 pair counts; "zz top" is dropped: unknown words); "a lot" is capped by "lot"
    assert pairs.splits("alot") == [("a lot", 30)]
    assert pairs.splits("DONOT") == [("do not", 90)]
    assert pairs.splits("dot") == []  # "do t": "t" is too short a word
    assert pairs.splits("lot") == [] and pairs.splits("zztop") == []
    # splits, then neighbours; nothing is nearer than the word without its apostrophe
    assert pairs.candidates("donot", 3) == [("do not", 90), ("don't", 1), ("not", 300)]
    assert pairs.candidates("dont", 3) == [("don't", 1)]
    assert pairs.neighbours("dont", 1) == [("done", 60)]  # symspell's own first choice


def test_lowercase_pronouns_only_for_english(pairs):
    # the bundled dictionary takes seconds to index; the rule needs none of it
    english = Lexicon.__new__(Lexicon)
    english.english = True
    text = "i think i'm right, i.e. the i-th; so do i."
    assert [m.start() for m in english.lowercase_pronouns(text)] == [0, 8, 40]
    assert pairs.lowercase_pronouns(text) == []  # a user's lexicon may be another language
    assert recase("im", "i'm") == "I'm" and recase("Ihad", "i had") == "I had"


def test_glued_joins_a_pair_far_more_frequent_as_one_word(pairs):
    # "an other": 40 as a pair, "another": 494; "do not" is no word as "donot"; "a lot" is no word as "alot"
    text = "Do not take an other, An other or a lot; an  other an other. an Other"
    assert pairs.glued(text) == [(12, 20, "another"), (22, 30, "Another"), (51, 59, "another")]


def _misspellings() -> list[str]:
    return ["speling", "hors", "hous", "teh", "ct", "zzzzzzzz", "spelling", "hxxse"]


def test_the_index_is_cached_and_gives_the_same_candidates(tmp_path, monkeypatch):
    monkeypatch.setenv("TEXTDIFFUSION_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "words.txt"
    path.write_text(
        "the 10000\nspelling 100\nspewing 300\nhouse 500\nhorse 400\ncat 50\nthe cat 20\n"
    )
    built = Lexicon(path, max_edit_distance=2)
    assert len(list((tmp_path / "cache").glob("lexicon-*.npz"))) == 1

    def no_build(self, sources):
        raise AssertionError("the cached index should have been read")

    with monkeypatch.context() as patch:
        patch.setattr(Lexicon, "_build", no_build)
        cached = Lexicon(path, max_edit_distance=2)
    assert len(cached) == len(built) and cached._pairs == built._pairs == {"the cat": 50}
    for word in _misspellings():
        assert cached.candidates(word, 5) == built.candidates(word, 5), word
    # another edit distance or other file contents: another index
    Lexicon(path, max_edit_distance=1)
    path.write_text("the 10000\nhouse 500\n")
    assert Lexicon(path, max_edit_distance=2).candidates("hors", 5) == [("house", 500)]
    assert len(list((tmp_path / "cache").glob("lexicon-*.npz"))) == 3


def test_a_corrupt_or_unwritable_cache_is_rebuilt(tmp_path, monkeypatch, caplog):
    cache = tmp_path / "cache"
    monkeypatch.setenv("TEXTDIFFUSION_CACHE", str(cache))
    path = tmp_path / "words.txt"
    path.write_text("spelling 100\nspewing 300\nhouse 500\n")
    expected = Lexicon(path, cache=False).candidates("speling", 5)
    Lexicon(path)
    (index,) = cache.glob("lexicon-*.npz")
    index.write_bytes(index.read_bytes()[:100])  # truncated
    assert Lexicon(path).candidates("speling", 5) == expected
    assert "rebuilding the unreadable lexicon index" in caplog.text
    assert Lexicon(path).candidates("speling", 5) == expected  # rewritten whole
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    monkeypatch.setenv("TEXTDIFFUSION_CACHE", str(blocked / "cache"))  # cannot be created
    assert Lexicon(path).candidates("speling", 5) == expected
    assert not list(tmp_path.glob("**/*.tmp"))
