from __future__ import annotations

import json

import pytest
import torch

from textdiffusion.checkpoint import (
    CheckpointConfig,
    CheckpointError,
    load_pretrained,
    migrate,
    save_pretrained,
)
from textdiffusion.config import FORMAT_VERSION, ConfigError, ModelConfig
from textdiffusion.data import Tokenizer
from textdiffusion.networks import DiffusionTransformer
from textdiffusion.samplers import SAMPLERS


@pytest.fixture()
def saved(tmp_path):
    tokenizer = Tokenizer.train_char(["hello world, the quick brown fox"])
    config = CheckpointConfig(
        model=ModelConfig(
            vocab_size=tokenizer.vocab_size, n_layers=2, n_heads=2, dim=32, max_len=24
        )
    )
    torch.manual_seed(0)
    model = DiffusionTransformer(config.model).eval()
    path = save_pretrained(model, tokenizer, tmp_path / "ckpt", config=config)
    return model, tokenizer, path


def test_roundtrip_same_logits_and_samples(saved):
    model, tokenizer, path = saved
    assert sorted(p.name for p in path.iterdir()) == [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
    ]
    loaded = load_pretrained(path)
    x = torch.randint(0, tokenizer.vocab_size, (2, 24))
    assert torch.equal(model(x, None), loaded.model(x, None))
    for name in SAMPLERS:
        a = SAMPLERS[name](
            model, loaded.process, (2, 24), 6, generator=torch.Generator().manual_seed(5)
        )
        b = SAMPLERS[name](
            loaded.model, loaded.process, (2, 24), 6, generator=torch.Generator().manual_seed(5)
        )
        assert torch.equal(a, b)
    config = json.loads((path / "config.json").read_text())
    assert (
        config["format_version"] == FORMAT_VERSION
        and config["model"]["vocab_size"] == tokenizer.vocab_size
    )


def test_no_wrapper_prefixes_and_bf16(tmp_path, saved):
    model, tokenizer, path = saved
    wrapped = torch.nn.Module()
    wrapped.module = model  # what DDP looks like
    out = save_pretrained(
        wrapped,
        tokenizer,
        tmp_path / "bf16",
        config=load_pretrained(path).config,
        dtype=torch.bfloat16,
    )
    from safetensors.torch import load_file

    state = load_file(out / "model.safetensors")
    assert all(not k.startswith(("module.", "_orig_mod.")) for k in state)
    assert all(v.dtype == torch.bfloat16 for v in state.values())
    loaded = load_pretrained(out)
    assert next(loaded.model.parameters()).dtype == torch.float32
    x = torch.randint(0, tokenizer.vocab_size, (1, 24))
    assert torch.allclose(model(x, None), loaded.model(x, None), atol=0.05)


def test_overwrite_is_atomic(tmp_path, saved):
    model, tokenizer, path = saved
    config = load_pretrained(path).config

    class Boom(Exception):
        pass

    def fail(*args, **kwargs):
        raise Boom

    import textdiffusion.checkpoint as ckpt

    original = ckpt.save_file
    ckpt.save_file = fail  # the disk fails half way through the new checkpoint
    try:
        with pytest.raises(Boom):
            save_pretrained(model, tokenizer, path, config=config)
    finally:
        ckpt.save_file = original
    load_pretrained(path)  # the old checkpoint is intact
    assert not [
        p for p in path.parent.iterdir() if p.name.startswith(".")
    ]  # no temporary left behind


def test_missing_and_corrupt_checkpoints(tmp_path, saved):
    _, _, path = saved
    with pytest.raises(CheckpointError, match="no model 'nope'"):
        load_pretrained("nope")
    with pytest.raises(CheckpointError, match="has no config.json"):
        load_pretrained(tmp_path)
    data = (path / "model.safetensors").read_bytes()
    (path / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_pretrained(path)
    (path / "model.safetensors").write_bytes(b"\x00" * 10)
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_pretrained(path)


def test_config_errors(saved):
    _, _, path = saved
    config = json.loads((path / "config.json").read_text())
    (path / "config.json").write_text(
        json.dumps({**config, "model": {**config["model"], "n_layer": 3}})
    )
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['n_layer'\]"):
        load_pretrained(path)
    (path / "config.json").write_text(json.dumps({**config, "colour": "blue"}))
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['colour'\]"):
        load_pretrained(path)
    (path / "config.json").write_text(json.dumps({**config, "format_version": 99}))
    with pytest.raises(CheckpointError, match="newer than this textdiffusion"):
        load_pretrained(path)
    (path / "config.json").write_text(json.dumps({**config, "sample": {"steps": 0}}))
    with pytest.raises(
        ConfigError, match=r"config.json \[sample\]: --steps must be positive, got 0"
    ):
        load_pretrained(path)
    (path / "config.json").write_text("{oops")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_pretrained(path)
    (path / "config.json").write_text(
        json.dumps({**config, "model": {**config["model"], "dim": 64}})
    )
    with pytest.raises(CheckpointError, match="do not fit the config|has shape"):
        load_pretrained(path)


def test_migration_from_version_0(saved):
    _, _, path = saved
    config = json.loads((path / "config.json").read_text())
    old = {k: v for k, v in config.items() if k != "format_version"}
    old["model_args"] = old.pop("model")
    assert migrate(dict(old))["model"] == config["model"]
    (path / "config.json").write_text(json.dumps(old))
    assert load_pretrained(path).config.format_version == FORMAT_VERSION


def test_hub_id_fails_clearly_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(CheckpointError, match="hub did not provide it"):
        load_pretrained("someone/not-a-model")


def test_tied_embeddings_roundtrip(tmp_path):
    tokenizer = Tokenizer.train_char(["abc"])
    config = CheckpointConfig(
        model=ModelConfig(
            vocab_size=tokenizer.vocab_size,
            n_layers=1,
            n_heads=2,
            dim=16,
            max_len=8,
            tie_embeddings=True,
        )
    )
    model = DiffusionTransformer(config.model)
    loaded = load_pretrained(save_pretrained(model, tokenizer, tmp_path / "tied", config=config))
    assert loaded.model.head.weight is loaded.model.embed.weight
    assert torch.equal(loaded.model.embed.weight, model.embed.weight)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_weights_are_refused_at_load_naming_the_tensor(saved, bad):
    from safetensors.torch import load_file, save_file

    _, _, path = saved
    state = load_file(str(path / "model.safetensors"))
    name = "blocks.1.mlp.down.weight"
    state[name][0, :3] = bad
    save_file(state, str(path / "model.safetensors"))
    kind = "NaN" if bad != bad else "inf"
    with pytest.raises(
        CheckpointError, match=rf"weight {name} holds 3 {kind} of [\d,]+ values"
    ) as exc:
        load_pretrained(path)
    assert "\n" not in str(exc.value)


@pytest.mark.parametrize(
    "section, key, value, message",
    [
        ("model", "dim", "384", r'\[model\]: dim must be an integer, got "384" \(string\)'),
        ("model", "max_len", 1e12, r"\[model\]: max_len must be an integer, got 1000000000000.0"),
        ("model", "max_len", 10**12, r"\[model\]: --max-len must be at most 1,048,576 tokens"),
        ("model", "causal", "false", r"\[model\]: causal must be true or false"),
        ("sample", "threshold", "0.5", r"\[sample\]: threshold must be a number or null"),
        ("sample", "sampler", "fast", r"\[sample\]: sampler must be one of \['ancestral'"),
        ("process", "t_min", [0.1], r"\[process\]: t_min must be a number, got \[0.1\] \(list\)"),
    ],
)
def test_config_values_of_the_wrong_type_name_the_field(saved, section, key, value, message):
    _, _, path = saved
    config = json.loads((path / "config.json").read_text())
    config[section] = {**config[section], key: value}
    (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match=message) as exc:
        load_pretrained(path)
    assert "\n" not in str(exc.value)


def test_type_checks_accept_every_shipped_config():
    from textdiffusion.checkpoint import PRETRAINED_DIR, read_config, shipped_models

    assert shipped_models()
    for name in shipped_models():
        read_config(PRETRAINED_DIR / name)


def test_a_missing_folder_is_not_looked_up_on_the_hub(tmp_path, monkeypatch):
    import huggingface_hub

    def no_hub(*args, **kwargs):
        raise AssertionError("a folder name must not reach the hub")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", no_hub)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    for name in ("runs/x", "runs/x/y", "./x", "../x", "/nonexistent/x", "~/no-such-model-folder"):
        with pytest.raises(CheckpointError, match=f"^no such folder: {name}$"):
            load_pretrained(name)
    with pytest.raises(CheckpointError, match="no model 'nope'"):
        load_pretrained("nope")  # a bare name: not a folder, not shipped
