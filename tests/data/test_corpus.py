from __future__ import annotations

import gzip
import json

import pytest

from textdiffusion.data import DataError, expand_paths, read_documents, read_hf_dataset


def test_files_folders_globs(tmp_path):
    (tmp_path / "a.txt").write_text("alpha")
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "b.md").write_text("beta")
    (sub / "c.bin").write_bytes(b"\x00\x01")  # not a text suffix: skipped in folders
    with gzip.open(sub / "d.txt.gz", "wt") as f:
        f.write("delta")
    assert list(read_documents([str(tmp_path / "a.txt")])) == ["alpha"]
    assert sorted(read_documents([str(sub)])) == ["beta", "delta"]
    assert sorted(read_documents([str(tmp_path / "**" / "*.md")])) == ["beta"]


def test_jsonl_field(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text("\n".join(json.dumps({"body": f"doc {i}", "id": i}) for i in range(3)) + "\n\n")
    assert list(read_documents([str(path)], jsonl_field="body")) == ["doc 0", "doc 1", "doc 2"]
    with pytest.raises(DataError, match="no field 'text'"):
        list(read_documents([str(path)]))


def test_errors_name_the_file(tmp_path):
    with pytest.raises(DataError, match="no file matches"):
        expand_paths([str(tmp_path / "missing.txt")])
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"\xff\xfe\xfa")
    with pytest.raises(DataError, match="bad.txt is not UTF-8"):
        list(read_documents([str(bad)]))
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"text": 1}\n{oops\n')
    with pytest.raises(DataError, match="broken.jsonl:2: invalid JSON"):
        list(read_documents([str(broken)]))
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    with pytest.raises(DataError, match="holds no text files"):
        expand_paths([str(empty_dir)])


def test_hf_dataset_local_file(tmp_path):
    pytest.importorskip("datasets")
    path = tmp_path / "data.jsonl"
    path.write_text("\n".join(json.dumps({"text": f"line {i}"}) for i in range(4)))
    assert list(read_hf_dataset(str(path))) == [f"line {i}" for i in range(4)]
    with pytest.raises(DataError, match="no column 'body'"):
        list(read_hf_dataset(str(path), field="body"))
