from __future__ import annotations

import pytest
import torch

from textdiffusion.pipelines import GenerationPipeline, InfillPipeline, InputError


@pytest.fixture(scope="module")
def gen(trained_dir):
    return GenerationPipeline.from_pretrained(trained_dir)


@pytest.fixture(scope="module")
def infill(trained_dir):
    return InfillPipeline.from_pretrained(trained_dir)


def test_generate_is_reproducible_and_clean(gen):
    a = gen(2, length=40, seed=1, steps=8)
    b = gen(2, length=40, seed=1, steps=8)
    c = gen(2, length=40, seed=2, steps=8)
    assert a.texts == b.texts and a.texts != c.texts
    assert a.ids.shape == (2, 40)
    assert (
        not set(a.ids.view(-1).tolist()) & gen.tokenizer.special_ids
    )  # no mask or other special token
    assert all(len(t) == 40 for t in a.texts)  # one character per token


def test_trained_model_writes_corpus_words(gen):
    from conftest import WORDS

    words = " ".join(gen(8, length=64, seed=0, steps=64, sampler="confidence").texts).split()
    share = sum(w.strip(".").lower() in WORDS for w in words) / len(words)
    assert share > 0.3, words  # an untrained model writes none


def test_prompt_completion_keeps_the_prompt(gen):
    out = gen(2, length=30, prompt="The cat ", seed=0, steps=8)
    assert all(t.startswith("The cat ") for t in out.texts)


def test_bad_generation_requests(gen):
    with pytest.raises(InputError, match="leaves nothing to generate"):
        gen(1, length=10, prompt="a prompt much longer than ten tokens")
    with pytest.raises(InputError, match="the model's context"):
        gen(1, length=10_000)
    with pytest.raises(InputError, match="prompt is empty"):
        gen(1, prompt="   ")
    with pytest.raises(
        ValueError, match="steps must be positive, got 0"
    ):  # not the default in disguise
        gen(1, length=10, steps=0)
    out = gen(1, length=20, prompt="Zoë ☃ ", steps=4)  # never-seen characters: kept, with a warning
    assert out.texts[0].startswith("Zoë ☃ ") and out.warnings


def test_infill_keeps_every_character_outside_the_blanks(infill):
    text = "The cat ___ on the mat.\nThe dog _____ in the park."
    out = infill(text, seed=0, steps=8)
    pieces = text.replace("_____", "___").split("___")
    assert out.text.startswith(pieces[0]) and out.text.endswith(pieces[-1])
    assert out.text == pieces[0] + out.fills[0] + pieces[1] + out.fills[1] + pieces[2]
    assert len(out.fills) == 2 and len(out.lengths) == 2


def test_infill_fixed_length_and_chosen_length(infill):
    out = infill("The cat ___ on the mat.", blank_length=3, seed=0, steps=8)
    assert out.lengths == [3] and len(out.fills[0]) == 3
    chosen = infill("The cat ___ on the mat.", seed=0, steps=8, candidates=(1, 3, 8, 16))
    assert chosen.lengths[0] in (1, 3, 8, 16)
    # the context fits best around a three-letter word ("sat"), worse around 16 letters
    assert infill.context_nll(
        [infill.encode("The cat "), infill.encode(" on the mat.")], [3]
    ) < infill.context_nll([infill.encode("The cat "), infill.encode(" on the mat.")], [16])


def test_bad_infill_requests(infill):
    with pytest.raises(InputError, match="no blank"):
        infill("nothing to fill")
    with pytest.raises(InputError, match="only blanks"):
        infill("___ ___")
    with pytest.raises(InputError, match="is empty"):
        infill("")
    with pytest.raises(InputError, match="more than the model's context"):
        infill("word " * 40 + "___", blank_length=5)
    out = infill("Zoë ___ ☃", blank_length=2, steps=4)
    assert out.text.startswith("Zoë ") and out.text.endswith(" ☃") and out.warnings
    undecodable = b"\xff\xfe ___ end".decode("utf-8", errors="surrogateescape")  # as argv brings it
    out = infill(undecodable, blank_length=2, steps=4)
    assert out.text.startswith("\udcff\udcfe ") and out.text.endswith(
        " end"
    )  # the bytes survive untouched


def test_pipeline_save_and_reload(tmp_path, gen):
    path = gen.save_pretrained(tmp_path / "copy")
    again = GenerationPipeline.from_pretrained(path)
    assert again(1, length=20, seed=3, steps=4).texts == gen(1, length=20, seed=3, steps=4).texts
    x = torch.randint(0, again.tokenizer.vocab_size, (1, 20))
    assert torch.equal(again.model(x, None), gen.model(x, None))
