"""The written form of a model's training text: typed text to the Yelp form (lower-cased Treebank tokens, `_num_`) and
back, the form read from a corpus, the config.json entry, and the style and denoise pipelines around a model of
normalised text."""

from __future__ import annotations

import dataclasses
import json
import random

import pytest
import torch

from textdiffusion.checkpoint import CheckpointConfig, load_pretrained, save_pretrained
from textdiffusion.config import ConfigError, ModelConfig, SampleConfig, StyleConfig
from textdiffusion.data import Tokenizer
from textdiffusion.data.textform import TextForm, detect_form, normalise, read_form, restore
from textdiffusion.networks import DiffusionTransformer

YELP = TextForm(lower=True, tokenized="ptb", numbers="_num_", final_stop=True)

TYPED = {  # typed sentence -> its Yelp form (written as the Yelp files write such sentences)
    "The food was great, but the service wasn't!": "the food was great , but the service was n't !",
    "I don't like it": "i do n't like it .",
    "I can't believe it's only $10.": "i ca n't believe it 's only $ _num_ .",
    "We'll be back, I'm sure.": "we 'll be back , i 'm sure .",
    "They're open 'til 9pm and you've got to try it.": (
        "they 're open 'til 9pm and you 've got to try it ."
    ),
    'He said "never again" and left.': "he said `` never again '' and left .",
    "The Pizza Hut on Main St. was empty.": "the pizza hut on main st. was empty .",
    "It was 3.5 stars, maybe 4.": "it was _num_ stars , maybe _num_ .",
    "Send an e-mail to the manager?": "send an e-mail to the manager ?",
    "Great food 😀!!!": "great food 😀 !",
    "I cannot wait, gonna come back!": "i can not wait , gon na come back !",
    "Dr. Lee was kind (and fast).": "dr. lee was kind ( and fast ) .",
    "My friends' party was at NYC's best bar; 10% off & free drinks!": (
        "my friends ' party was at nyc 's best bar ; _num_ % off & free drinks !"
    ),
    "It’s the best café in town…": "it 's the best café in town ... .",
    "Wow -- the wait was 1,000 years... not really.": (
        "wow -- the wait was _num_ years ... not really ."
    ),
    "Open at 6:00 p.m. on weekdays.": "open at 6:00 p.m. on weekdays .",
    "  Two spaces  inside and around  ": "two spaces inside and around .",
}


@pytest.mark.parametrize("typed", sorted(TYPED))
def test_normalise_writes_the_yelp_form_and_restore_gives_the_input_back(typed):
    model, info = normalise(typed, YELP)
    assert model == TYPED[typed]
    assert restore(model, info) == typed
    assert normalise(model, YELP)[0] == model  # the training form is a fixed point


def test_a_lower_case_input_stays_lower_case_and_a_tokenised_one_keeps_its_spaces():
    model, info = normalise("the food was cold .", YELP)
    assert model == "the food was cold ."
    assert restore("the food was great .", info) == "the food was great ."
    _, info = normalise("the food was cold", YELP)
    assert (
        restore("the food was great .", info) == "the food was great"
    )  # the added stop goes again


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("the food was terrible !", "The food was terrible!"),
        # the model's punctuation is kept: it chose the full stop
        ("the food was terrible .", "The food was terrible."),
        ("i loved the food !", "I loved the food!"),
        ("the food was not great , it was cold !", "The food was not great, it was cold!"),
        ("the food was great . i do n't know !", "The food was great. I don't know!"),
        ("food was great !", "Food was great!"),  # a kept word that moved to the start
        ("honestly the food was great !", "Honestly the food was great!"),  # and away from it
    ],
)
def test_restore_of_a_changed_output(output, expected):
    _, info = normalise("The food was great!", YELP)
    assert restore(output, info) == expected


def test_restore_gives_new_words_the_casing_the_input_gave_them():
    _, info = normalise("The staff at Pizza Hut and NYC Deli were rude.", YELP)
    assert restore("pizza hut has friendly staff , like nyc deli .", info) == (
        "Pizza Hut has friendly staff, like NYC Deli."
    )
    _, info = normalise("Pizza Hut was slow.", YELP)  # a name run at the start is a name
    assert restore("the best pizza hut !", info) == "The best Pizza Hut!"
    _, info = normalise("Great food.", YELP)  # one capital at the start is the start's
    assert restore("the food was great .", info) == "The food was great."


def test_restore_numbers():
    _, info = normalise("We waited 45 minutes and paid $12.", YELP)
    assert restore("we waited only _num_ minutes and paid $ _num_ .", info) == (
        "We waited only 45 minutes and paid $12."
    )
    assert restore("we paid $ _num_ , worth it .", info) == "We paid $12, worth it."
    # a placeholder the input had no number for: the input's numbers not kept, then the last one
    assert restore("_num_ stars for $ _num_ .", info) == "45 stars for $12."
    _, info = normalise("No numbers here.", YELP)
    assert restore("_num_ stars .", info) == "Some stars."


def test_restore_re_reads_a_stray_joined_token():
    _, info = normalise("The food wasn't good.", YELP)
    assert restore("the food was great.", info) == "The food was great."


def test_other_forms():
    punct = TextForm(tokenized="punct", final_stop=True)  # the modern side of the Shakespeare pairs
    model, info = normalise("Madam, he's well.", punct)
    assert model == "Madam , he's well ."
    assert restore("Madam , he's sick .", info) == "Madam, he's sick."
    lower = TextForm(lower=True)
    model, info = normalise("I saw John there.", lower)
    assert model == "i saw john there."
    assert restore("i saw john here.", info) == "I saw John here."
    same = TextForm()
    assert normalise("As  typed. ", same)[0] == "As  typed. "
    assert restore("any output ", normalise("x", same)[1]) == "any output "


def test_form_checks_its_values():
    with pytest.raises(ConfigError, match="tokenized"):
        TextForm(tokenized="spacy")
    with pytest.raises(ConfigError, match="final_stop needs"):
        TextForm(final_stop=True)
    with pytest.raises(ConfigError, match="numbers"):
        TextForm(numbers="two words")


def test_detect_form():
    rng = random.Random(0)
    nouns, adjectives = ["food", "service", "pizza", "staff"], ["great", "slow", "cold", "nice"]
    yelp = [
        f"the {rng.choice(nouns)} was n't {rng.choice(adjectives)} , i 'd pay $ _num_ ."
        for _ in range(50)
    ]
    assert detect_form(yelp) == YELP
    typed = [
        f"The {rng.choice(nouns)} wasn't {rng.choice(adjectives)}, I'd pay ${rng.randint(2, 90)}."
        for _ in range(50)
    ]
    assert detect_form(typed) == TextForm()
    shakespeare = [f"Madam , he's {rng.choice(adjectives)} ." for _ in range(50)]
    assert detect_form(shakespeare) == TextForm(tokenized="punct", final_stop=True)
    with pytest.raises(ValueError, match="non-empty"):
        detect_form(["", "  "])


def test_read_form():
    assert read_form({"model": {}}) is None
    assert read_form({"text_form": None}) is None
    assert read_form({"text_form": YELP.to_dict()}) == YELP
    with pytest.raises(ConfigError, match=r"m/config.json: unknown key\(s\) \['case'\]"):
        read_form({"text_form": {"case": "lower"}}, where="m/config.json")
    with pytest.raises(ConfigError, match="m/config.json: text_form.tokenized"):
        read_form({"text_form": {"tokenized": "yes"}}, where="m/config.json")


def test_config_json_records_the_form_only_when_there_is_one():
    config = CheckpointConfig(model=ModelConfig())
    assert "text_form" not in config.to_dict()  # config.json of a model without a form is unchanged
    data = dict(config.to_dict(), text_form=YELP.to_dict())
    again = CheckpointConfig.from_dict(data)
    assert again.text_form == YELP.to_dict() and again.to_dict() == data
    with pytest.raises(ConfigError, match="text_form must be an object"):
        CheckpointConfig.from_dict(dict(data, text_form="lower"))


# --- the pipelines ------------------------------------------------------------------------------------------


def save_twice(root, tokenizer, config: CheckpointConfig):
    """An untrained network of `config` saved as it is and with `form` in its config.json."""
    torch.manual_seed(0)
    network = DiffusionTransformer(config.model)
    return [
        save_pretrained(
            network,
            tokenizer,
            root / name,
            config=dataclasses.replace(config, text_form=text_form),
        )
        for name, text_form in (("plain", None), ("formed", YELP.to_dict()))
    ]


REVIEWS = [
    f"the {noun} was {adjective} ."
    for noun in "food soup staff service pizza coffee".split()
    for adjective in "bad awful cold rude good great nice lovely".split()
]


@pytest.fixture(scope="module")
def style_dirs(tmp_path_factory):
    """Untrained style models over word-sized BPE tokens of toy reviews, each saved without and with the Yelp form:
    one of aligned pairs (its rewrites are noise, so restore has real work) and one of two attributes."""
    tokenizer = Tokenizer.train_bpe(REVIEWS * 4, vocab_size=300)
    dirs = {}
    for kind, settings, labels in (
        ("pairs", StyleConfig(ratio=1.0, slack=4), 0),
        ("attribute", StyleConfig(labels=("negative", "positive"), length=20), 2),
    ):
        config = CheckpointConfig(
            model=ModelConfig(
                vocab_size=tokenizer.vocab_size, n_layers=1, n_heads=2, dim=32, max_len=48,
                n_labels=labels,
            ),
            sample=SampleConfig(sampler="confidence", steps=4, threshold=0.9, temperature=0.1),
            task="style",
            task_config=settings,
        )  # fmt: skip
        dirs[kind] = save_twice(tmp_path_factory.mktemp(kind), tokenizer, config)
    return dirs


TYPED_REVIEWS = [
    "The Soup was cold!",
    "",
    "the pizza was rude",
    "The Coffee was awful.\nThe staff wasn't bad",
]


def expected_outputs(plain, texts, **kwargs):
    """What a pipeline with the form should write: the plain pipeline's rewrite of each normalised line,
    restored."""
    lines = [line for text in texts for line in text.split("\n")]
    pairs = [normalise(line, YELP) for line in lines]
    out = plain([model for model, _ in pairs], **kwargs).texts
    restored = iter(
        restore(o, info) if line else "" for o, (_, info), line in zip(out, pairs, lines)
    )
    return [("\n".join(next(restored) for _ in text.split("\n"))) for text in texts]


def test_style_pipeline_rewrites_typed_text_in_the_training_form(style_dirs):
    from textdiffusion.pipelines import StylePipeline

    plain, formed = (StylePipeline.from_pretrained(d) for d in style_dirs["pairs"])
    assert plain.text_form is None and formed.text_form == YELP
    got = formed(TYPED_REVIEWS, seed=3).texts
    assert got == expected_outputs(plain, TYPED_REVIEWS, seed=3)
    assert got != plain(TYPED_REVIEWS, seed=3).texts  # the model read other text
    assert got[1] == ""


def test_attribute_pipeline_reads_typed_text_in_the_training_form(style_dirs):
    from textdiffusion.pipelines import StylePipeline

    plain, formed = (StylePipeline.from_pretrained(d) for d in style_dirs["attribute"])
    calls = []  # the ids each network call reads (an observer: the network is untouched)
    hook = formed.model.register_forward_pre_hook(lambda module, args: calls.append(args[0]))
    got = formed(TYPED_REVIEWS, to="positive", seed=3).texts
    hook.remove()
    assert got == expected_outputs(plain, TYPED_REVIEWS, to="positive", seed=3)
    # the network read the lines in the Yelp form: the marker passes hide each token once, so the first call's
    # rows (the distinct non-empty lines, in order) are spelled out by what the passes show
    rows = calls[0].shape[0] // 2  # (labelled and unlabelled halves)
    mask, pad = formed.tokenizer.mask_id, formed.tokenizer.pad_id
    shown = torch.full_like(calls[0][:rows], mask)
    for xt in calls[:4]:
        shown = torch.where(shown == mask, xt[:rows], shown)
    read = [formed.tokenizer.decode([i for i in row if i != pad]) for row in shown.tolist()]
    assert read == [
        "the soup was cold !",
        "the pizza was rude .",
        "the coffee was awful .",
        "the staff was n't bad .",
    ]


@pytest.fixture(scope="module")
def denoiser_dirs(tmp_path_factory):
    """An untrained character denoiser, saved without and with the Yelp form in its config.json."""
    tok = Tokenizer.train_char(
        ["the quick brown fox jumps over the lazy dog. 0123456789,;:!?'\"-()_"]
    )
    config = CheckpointConfig(
        model=ModelConfig(vocab_size=tok.vocab_size, n_layers=1, n_heads=2, dim=32, max_len=96),
        sample=SampleConfig(sampler="confidence", steps=4, threshold=0.9),
        task="denoise",
        task_config={"max_chars": 40},
    )
    return save_twice(tmp_path_factory.mktemp("d"), tok, config)


def test_denoise_pipeline_corrects_in_the_training_form(denoiser_dirs):
    from textdiffusion.pipelines import DenoisePipeline

    plain_dir, formed_dir = denoiser_dirs
    assert load_pretrained(formed_dir).config.text_form == YELP.to_dict()
    assert "text_form" not in json.loads((plain_dir / "config.json").read_text())
    plain, formed = (
        DenoisePipeline.from_pretrained(plain_dir),
        DenoisePipeline.from_pretrained(formed_dir),
    )
    typed = ["Teh Quick fox, isn't it?", "  The lazy dog!\nA brown fox."]
    lines = [line for text in typed for line in text.split("\n")]
    pairs = [normalise(line, formed.text_form) for line in lines]
    fixed = plain([model for model, _ in pairs], seed=1).texts
    restored = [restore(out, info) for out, (_, info) in zip(fixed, pairs)]
    assert formed(typed, seed=1).texts == [restored[0], "\n".join(restored[1:])]


def test_a_style_model_records_the_form_of_its_training_text(tmp_path):
    """Trained on lower-cased tokenised lines, the model's config.json says so; on text as typed, nothing."""
    from textdiffusion.checkpoint import read_config
    from textdiffusion.config import DataConfig, ModelConfig, TrainConfig
    from textdiffusion.training import train

    lines = {
        "neg": ["the soup was cold .", "i do n't like it !", "the staff was rude ."],
        "pos": ["the soup was great .", "i love it !", "the staff was nice ."],
    }
    typed = {
        "neg": ["The soup was cold.", "I don't like it!"],
        "pos": ["Great soup.", "I love it!"],
    }
    for name, texts in (("tokenised", lines), ("typed", typed)):
        files = []
        for label, rows in texts.items():
            files.append(tmp_path / f"{name}.{label}")
            files[-1].write_text("\n".join(rows * 4) + "\n")
        train(
            DataConfig(data=tuple(map(str, files)), labels=("negative", "positive")),
            TrainConfig(steps=1, batch_size=2, eval_every=0, device="cpu"),
            out=tmp_path / name,
            task="style",
            model=ModelConfig(n_layers=1, n_heads=2, dim=32, max_len=64),
            progress=False,
        )
    form = read_config(tmp_path / "tokenised").text_form
    assert form["lower"] and form["tokenized"] == "ptb" and form["final_stop"]
    assert read_config(tmp_path / "typed").text_form is None
