"""The checkpoints that ship with the package load by name, offline, and still model their data."""

from __future__ import annotations

from textdiffusion.checkpoint import load_pretrained, shipped_models
from textdiffusion.evaluation import evaluate_text
from textdiffusion.pipelines import GenerationPipeline

# Public-domain lines (Romeo and Juliet, II.2), typed here so the test needs no data files.
VERSE = """ROMEO:
But, soft! what light through yonder window breaks?
It is the east, and Juliet is the sun.
Arise, fair sun, and kill the envious moon,
Who is already sick and pale with grief,
That thou her maid art far more fair than she:
Be not her maid, since she is envious;
Her vestal livery is but sick and green
And none but fools do wear it; cast it off.

JULIET:
Ay me!
"""


def test_shakespeare_char_is_shipped_and_loads_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert "shakespeare-char" in shipped_models()
    pretrained = load_pretrained("shakespeare-char")
    assert pretrained.model.config.max_len == 256 and pretrained.tokenizer.kind == "char"
    # golden figure with a tolerance: the shipped model scores ~2.2 bits/char on held-out Shakespeare and an
    # untrained one ~8.3; regenerate by running this evaluation after retraining the model
    result = evaluate_text(pretrained, VERSE, samples=8, seed=0)
    assert result.bits_per_char < 2.8, result


def test_shakespeare_char_writes_dialogue():
    pipe = GenerationPipeline.from_pretrained("shakespeare-char")
    text = pipe(1, length=128, steps=32, seed=0).texts[0]
    words = text.split()
    assert len(words) > 10
    common = {
        "the",
        "and",
        "i",
        "to",
        "of",
        "my",
        "you",
        "a",
        "that",
        "in",
        "is",
        "not",
        "me",
        "with",
    }
    assert sum(w.strip(",.:;!?").lower() in common for w in words) >= 3, text


def test_typo_fixer_is_shipped_and_corrects_common_misspellings(monkeypatch):
    from textdiffusion.tasks.denoise.pipeline import DenoisePipeline

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert "typo-fixer" in shipped_models()
    pipe = DenoisePipeline.from_pretrained("typo-fixer")
    wrong = ["recieve", "beleive", "acommodate", "speling", "korrect"]
    right = ["receive", "believe", "accommodate", "spelling", "correct"]
    # golden behaviour with slack: the shipped model fixes all five (an untrained one none)
    fixed = pipe.correct_words(wrong, seed=0)
    assert sum(f == r for f, r in zip(fixed, right)) >= 4, fixed
    clean = ["the", "house", "weather", "The weather is nice today."]
    assert pipe.correct_words(clean, seed=0) == clean


def test_typo_fixer_with_the_english_lexicon_ranks_candidates_better_than_their_frequency(
    monkeypatch,
):
    from textdiffusion.tasks.denoise.lexicon import Lexicon
    from textdiffusion.tasks.denoise.pipeline import DenoisePipeline

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    pipe, lexicon = DenoisePipeline.from_pretrained("typo-fixer"), Lexicon()
    # from Norvig's second test set: symspell's nearest, most frequent word is wrong for each
    wrong = ["traditionaly", "resoved", "goegraphicaly", "meen", "regined", "financialy"]
    right = ["traditionally", "resolved", "geographically", "mean", "regained", "financially"]
    nearest = [lexicon.neighbours(w, 1)[0][0] for w in wrong]
    assert sum(n == r for n, r in zip(nearest, right)) == 0, nearest
    fixed = pipe.correct_words(wrong, lexicon=lexicon)
    assert sum(f == r for f, r in zip(fixed, right)) >= 5, fixed
    clean = ["the", "Weather", "TV", "The weather is nice today."]
    assert pipe.correct_words(clean, lexicon=lexicon) == clean
    # a lost apostrophe, the pronoun "i", a word split in two; "i.e." and the "e" in it stay
    fixed = pipe.correct_sentences(
        ["i think i dont know any thing, i.e. nothing."], lexicon=lexicon
    )
    assert fixed == ["I think I don't know anything, i.e. nothing."]


def test_yelp_sentiment_is_shipped_and_moves_reviews_to_the_other_sentiment(monkeypatch):
    from textdiffusion.pipelines import StylePipeline

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert "yelp-sentiment" in shipped_models()
    pipe = StylePipeline.from_pretrained("yelp-sentiment")
    assert pipe.labels == ["negative", "positive"]
    positive = {
        "great",
        "good",
        "friendly",
        "amazing",
        "love",
        "delicious",
        "best",
        "nice",
        "definitely",
    }
    negative = {
        "rude",
        "terrible",
        "never",
        "worst",
        "dirty",
        "bad",
        "horrible",
        "not",
        "no",
        "cold",
    }
    sources = [
        "the food was cold and the staff was rude .",
        "the service was terrible .",
        "i will never come back here .",
        "the room was dirty .",
    ]
    # golden behaviour with slack: the shipped model turns all four (seed 0); the copy baseline none
    moved = pipe(sources, to="positive", seed=0).texts
    turned = [bool(positive & set(m.split())) and not negative & set(m.split()) for m in moved]
    assert sum(turned) >= 3, moved
    kept = [s.split()[1] in m.split() for s, m in zip(sources, moved)]  # food, service, will, room
    assert sum(kept) >= 3, moved
    back = pipe(["the staff was very friendly .", "i love this place ."], to="negative").texts
    assert any(negative & set(m.split()) for m in back) and back[0].startswith("the staff"), back


def test_captioner_is_shipped_and_reads_generated_scenes(monkeypatch, tmp_path):
    """The shipped captioner on 40 generated scenes drawn here (scripts/make_scenes.py's generator, validation pairs
    never seen in training): it names more attributes than the constant caption (26.7% on the benchmark's
    scenes; the model 43%)."""
    import numpy as np

    from textdiffusion.pipelines import CaptionPipeline
    from textdiffusion.tasks.caption import scenes as S

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert "captioner" in shipped_models()
    pipe = CaptionPipeline.from_pretrained("captioner")
    seen, held = S.split_pairs(0)
    rng = np.random.default_rng(123)
    drawn = [S.random_scene(rng, pairs=seen, required=held) for _ in range(40)]
    images = [S.render(scene, 96) for scene in drawn]
    texts = pipe(images, batch_size=40).texts
    rates = S.attribute_rates(texts, drawn)
    assert rates["overall"] > 0.33 and rates["colour"] > 0.45, (rates, texts[:4])


def test_shakespeare_char_fills_a_blank_of_unknown_length_in_one_pass():
    from textdiffusion.pipelines import InfillPipeline

    pipe = InfillPipeline.from_pretrained("shakespeare-char")
    assert pipe.max_blank == 16
    out = pipe("Signior Baptista, of whom I ___ so well.", seed=0)
    (fill,) = out.fills
    assert out.text == f"Signior Baptista, of whom I {fill} so well."
    assert 1 <= len(fill) < 16 and fill.strip()
    # written left to right, the fill ends at its PAD: a call per character and one for the PAD, not 16
    assert out.network_calls == len(fill) + 1


def test_shakespeare_style_edits_a_little_and_keeps_the_rest():
    from textdiffusion.pipelines import StylePipeline

    pipe = StylePipeline.from_pretrained("shakespeare-style")
    assert pipe.gap == 2 and pipe.text_form is not None
    lines = ["Thank you, my friend.", "I have half a mind to hit you before you speak again."]
    out = pipe(lines).texts
    assert out[0] == "I thank you, my friend."  # typed text in, typed text out
    assert out[1].startswith("I have half a mind to") and out[1].endswith("before you speak again.")
    assert pipe(lines, strength=0.0).texts == lines
