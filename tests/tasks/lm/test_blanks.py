"""Variable-length blanks: the training stream (tasks/lm/blanks.py) and one-pass infilling (tasks/lm/infill.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from textdiffusion.config import ConfigError, LMConfig
from textdiffusion.data import BatchStream, Tokenizer
from textdiffusion.pipelines import InfillPipeline, InputError
from textdiffusion.tasks.lm.blanks import BlankStream, blank_window, word_spans

K = 8


@pytest.fixture(scope="module")
def corpus():
    from conftest import make_corpus

    text = make_corpus(300)
    tok = Tokenizer.train_char([text])
    return tok, np.asarray(tok.encode(text), dtype=np.int32)


def make_stream(corpus, *, seed=0, rate=0.5):
    tok, ids = corpus
    windows = BatchStream(ids, seq_len=64, batch_size=16, seed=seed)
    return BlankStream(windows, tokenizer=tok, blank_rate=rate, max_blank=K)


def test_blank_window_against_a_hand_written_layout():
    P = 0
    window = np.array([5, 9, 6, 6, 6, 9, 7, 7, 9, 8, 8, 8])  # "a bbb cc ddd", 9 = space
    out, slots = blank_window(window, [(2, 5), (6, 8)], max_blank=4, pad_id=P)
    assert out.tolist() == [5, 9, 6, 6, 6, P, 9, 7, 7, P, P, 9]  # cut to the window length
    assert slots == [(2, 6), (7, 11)]
    # a slot that would run past the window's end is left as text
    out, slots = blank_window(window, [(9, 12)], max_blank=4, pad_id=P)
    assert out.tolist() == window.tolist() and slots == []


def test_word_spans_are_complete_words(corpus):
    tok, _ = corpus
    window = np.array(tok.encode("he cat. sat on the mat"))
    stream = make_stream(corpus)
    spans = word_spans(window, space=stream.space, letter=stream.letter, max_blank=K)
    text = lambda s: tok.decode(window[s[0] : s[1]].tolist())  # noqa: E731
    assert [text(s) for s in spans["core"]] == [
        "cat",
        "sat",
        "on",
        "the",
    ]  # not "he", "mat": cut by edges
    assert [text(s) for s in spans["word"]] == ["cat.", "sat", "on", "the"]
    assert "cat. sat" in [text(s) for s in spans["words"]]
    assert all(0 < e - s <= K for kind in spans.values() for s, e in kind)


def test_blank_stream_spans_end_in_pads_and_the_rest_is_intact(corpus):
    tok, ids = corpus
    stream = make_stream(corpus, rate=0.5)
    raw = BatchStream(ids, seq_len=64, batch_size=16, seed=0)
    P = tok.pad_id
    blanked_rows = blanks = two = whole = 0
    cuts = {True: 0, False: 0}  # masked runs of a whole slot, and from a point of the text on
    for _ in range(6):
        made, plain = stream.next_batch(), raw.next_batch()
        batch = made["target"]
        assert batch.shape == made["blanks"].shape == plain.shape and batch.dtype == np.int64
        for row, masked, original in zip(batch, made["blanks"], plain):
            kept = row[row != P]
            assert kept.tolist() == original[: len(kept)].tolist()  # PADs removed: the window, cut
            if (
                masked.any()
            ):  # blanks masked whole, or from a point of their text on: runs ending a slot
                edges = np.flatnonzero(np.diff(np.concatenate([[0], masked.astype(int), [0]])))
                for s, e in zip(edges[::2], edges[1::2]):
                    assert e - s <= K
                    if (
                        e - s < K
                    ):  # cut after some of the blank's text (which comes before its PADs)
                        assert row[s - 1] != P
                    cuts[e - s == K] += 1
                whole += 1
            if len(kept) == len(row):
                continue
            blanked_rows += 1
            pads = np.flatnonzero(row == P)
            ends = [int(p) + 1 for p in pads if p + 1 == len(row) or row[p + 1] != P]
            two += len(ends) == 2
            for end in ends:
                slot = row[end - K : end]
                span = slot[slot != P]
                assert len(span) >= 1 and (slot[len(span) :] == P).all()  # span, then PADs only
                assert not stream.space[span[[0, -1]]].any()  # one to three whole words, or letters
                assert not stream.letter[row[end - K - 1]] or not stream.letter[span[0]]
                blanks += 1
    share = blanked_rows / (6 * 16)
    assert 0.3 < share < 0.7 and two > 0 and blanks > blanked_rows
    assert 0.2 * blanked_rows < whole < 0.8 * blanked_rows  # mask_blanks 0.5 of them
    assert cuts[True] > 0 and cuts[False] > 0


def test_blank_stream_is_reproducible_and_resumable(corpus):
    a, b = make_stream(corpus, seed=3), make_stream(corpus, seed=3)
    same = lambda x, y: all((x[k] == y[k]).all() for k in ("target", "blanks"))  # noqa: E731
    first = [a.next_batch() for _ in range(3)]
    assert all(same(x, b.next_batch()) for x in first)
    assert not same(first[0], make_stream(corpus, seed=4).next_batch())
    state = a.state_dict()
    assert "windows" in state
    ahead = [a.next_batch() for _ in range(8)]  # past the end of the epoch (~7 batches)
    assert a.windows.epoch >= 1
    resumed = make_stream(corpus, seed=0)
    resumed.load_state_dict(state)
    assert all(same(x, resumed.next_batch()) for x in ahead)


def test_lm_config_is_validated():
    with pytest.raises(ConfigError, match="--max-blank"):
        LMConfig(blank_rate=0.5)
    with pytest.raises(ConfigError, match="--blank-rate"):
        LMConfig(blank_rate=1.5, max_blank=4)
    with pytest.raises(ConfigError, match="--max-blank"):
        LMConfig(max_blank=-1)
    with pytest.raises(ConfigError, match="--mask-blanks"):
        LMConfig(blank_rate=0.5, max_blank=4, mask_blanks=2.0)


@pytest.fixture(scope="module")
def blank_model(trained_dir):
    """The session's tiny character model fine-tuned 40 steps with every window blanked (K = 8)."""
    from textdiffusion.config import DataConfig, TrainConfig
    from textdiffusion.training import train

    out = trained_dir.parent / "blanks"
    if not out.exists():
        train(
            DataConfig(data=(str(trained_dir.parent / "corpus.txt"),), seq_len=64),
            TrainConfig(
                steps=40,
                batch_size=16,
                lr=3e-3,
                warmup_steps=5,
                eval_every=0,
                save_every=40,
                log_every=40,
                ema_decay=0.0,
                device="cpu",
            ),
            out=out,
            init_from=str(trained_dir),
            task_config=LMConfig(blank_rate=1.0, max_blank=K),
            progress=False,
        )
    return InfillPipeline.from_pretrained(out)


def test_one_pass_fills_drop_pads_and_keep_the_context(blank_model):
    pipe = blank_model
    assert pipe.max_blank == K
    P = pipe.tokenizer.pad_id
    text = "The cat ___ on the mat. The dog ___ in the park."
    start, middle, end = text.split("___")
    heads = [len(pipe.encode(start)), len(pipe.encode(start + middle)) + K]
    drawn_pads = 0
    for seed in range(4):
        out = pipe(text, seed=seed)
        assert out.text == start + out.fills[0] + middle + out.fills[1] + end
        assert out.network_calls <= 2 * K  # one pass: at most one step per mask
        ids = out.ids[0].tolist()
        assert len(ids) == len(pipe.encode(start + middle + end)) + 2 * K
        assert pipe.tokenizer.mask_id not in ids
        for head, fill, n in zip(heads, out.fills, out.lengths):
            slot = ids[head : head + K]
            kept = [i for i in slot if i != P]
            assert fill == pipe.tokenizer.decode(kept) and len(pipe.encode(fill)) == n == len(kept)
            assert n >= 1  # no PAD at the first position of a slot
            drawn_pads += K - n
    assert drawn_pads > 0  # the model did write PADs, and they were dropped


def test_fixed_and_bounded_lengths_on_a_blank_model(blank_model):
    pipe = blank_model
    out = pipe(
        "___ on the mat.", seed=0
    )  # a blank that opens the text: a line break is put before it
    assert out.text == out.fills[0] + " on the mat." and out.lengths[0] >= 1
    assert out.ids[0, 0].item() == pipe.encode("\n")[0]
    out = pipe("The cat ___ on the mat.", blank_length=3, seed=0)
    assert out.lengths == [3] and len(out.fills[0]) == 3  # PAD suppressed: exactly 3 characters
    for seed in range(3):
        out = pipe("The cat ___ on the mat.", max_blank_length=2, seed=seed)
        assert out.lengths[0] <= 2 and out.text.startswith("The cat ")
    out = pipe("The cat ___ on the mat.", blank_length=K + 4, seed=0)  # longer than K: plain masks
    assert out.lengths == [K + 4]


def test_too_long_a_blank_errors_before_any_allocation(blank_model, trained_dir, monkeypatch):
    def never(*args, **kwargs):
        raise AssertionError("allocated before checking the blank length")

    pipe = blank_model
    monkeypatch.setattr(pipe, "_layout", never)
    monkeypatch.setattr(pipe, "sample", never)
    monkeypatch.setattr(pipe, "encode", never)
    with pytest.raises(InputError, match=f"--max-blank-length {K + 1} is longer than the {K}"):
        pipe("The cat ___ on the mat.", max_blank_length=K + 1)
    with pytest.raises(InputError, match="--blank-length 5 is longer than --max-blank-length 4"):
        pipe("The cat ___ on the mat.", blank_length=5, max_blank_length=4)
    old = InfillPipeline.from_pretrained(trained_dir)
    monkeypatch.setattr(old, "choose_lengths", never)
    monkeypatch.setattr(old, "encode", never)
    with pytest.raises(InputError, match="--blank-length 5 is longer than --max-blank-length 4"):
        old("The cat ___ on the mat.", blank_length=5, max_blank_length=4)
    with pytest.raises(InputError, match="--max-blank-length must be positive"):
        old("The cat ___ on the mat.", max_blank_length=0)


def test_an_old_model_chooses_lengths_within_the_bound(trained_dir):
    old = InfillPipeline.from_pretrained(trained_dir)
    assert old.max_blank == 0
    out = old("The cat ___ on the mat.", max_blank_length=3, score_samples=2, steps=4)
    assert 1 <= out.lengths[0] <= 3 and len(out.fills[0]) == out.lengths[0]


def test_objective_masks_blanks_whole_and_scores_their_cross_entropy(tiny_model, masked_process):
    from textdiffusion.training.objectives import DiffusionObjective

    g = torch.Generator().manual_seed(0)
    x0 = torch.randint(2, 32, (3, 16), generator=g)
    blanks = torch.zeros(3, 16, dtype=torch.bool)
    blanks[:, 4:10] = True
    objective = DiffusionObjective(masked_process, sparse_logits=False)
    seen = {}

    def model(xt, t, **kwargs):
        seen["xt"] = xt
        return tiny_model(xt, t, **kwargs)

    model.config = tiny_model.config
    with torch.no_grad():
        loss = objective(model, x0, generator=torch.Generator().manual_seed(1), blanks=blanks)
        xt = seen["xt"]
        assert (xt[blanks] == masked_process.mask_id).all()  # whatever t
        logits = tiny_model(xt, None)
        t = masked_process.sample_t(3, device=x0.device, generator=torch.Generator().manual_seed(1))
        ce = masked_process.cross_entropy(logits, x0, xt)
        reference = torch.where(blanks, ce, masked_process.loss(logits, x0, xt, t)).mean()
    assert torch.allclose(loss, reference)
    with torch.no_grad():  # without blanks, the ELBO terms of q(x_t | x_0) alone
        plain = objective(model, x0, generator=torch.Generator().manual_seed(1))
    assert (seen["xt"][blanks] != masked_process.mask_id).any() and not torch.allclose(plain, loss)
