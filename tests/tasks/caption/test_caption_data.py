"""scripts/caption_data.py: the captioner's tables from a folder shaped like ../shared/data (built here), generated
scenes, photos repeated, the coco_mini validation quarter held out by image."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from PIL import Image

from textdiffusion.tasks.caption.images import read_captions

ROOT = Path(__file__).resolve().parents[3]


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def _photos(folder: Path, table: str, ids: range) -> None:
    (folder / "images").mkdir(parents=True, exist_ok=True)
    rows = ["file_name\timage_id\tlicense\tcaption"]
    for i in ids:
        Image.new("RGB", (8, 6), (i, 0, 0)).save(folder / "images" / f"{i:012d}.jpg")
        rows += [f"{i:012d}.jpg\t{i}\t1\tphoto {i} caption {k}" for k in range(5)]
    (folder / table).write_text("\n".join(rows) + "\n")


def test_caption_data_writes_every_table(tmp_path, capsys):
    shared = tmp_path / "shared"
    _photos(shared / "coco_tiny", "captions_train2017.tsv", range(0, 4))
    _photos(shared / "coco_tiny", "captions_val2017.visible.tsv", range(4, 6))
    _photos(shared / "coco_mini", "captions.visible.tsv", range(10, 18))
    scenes = tmp_path / "scenes"
    assert (
        _script("make_scenes")([str(scenes), "--train", "5", "--valid", "3", "--size", "32"]) == 0
    )
    out = tmp_path / "data"
    main = _script("caption_data")
    args = [str(out), "--shared", str(shared), "--scenes", str(scenes), "--photo-repeat", "3"]
    assert main(args) == 0
    tables = sorted(p.name for p in out.glob("*.tsv"))
    assert tables == [
        "train.tsv",
        "train_photos.tsv",
        "train_scenes.tsv",
        "valid_coco_mini.tsv",
        "valid_coco_tiny.tsv",
        "valid_scenes.tsv",
    ]
    read = {
        name: read_captions([out / name]) for name in tables
    }  # absolute paths: every image found
    mini_valid = {p.name for p, _ in read["valid_coco_mini.tsv"]}
    photos = {p.name for p, _ in read["train_photos.tsv"]}
    assert len(mini_valid) == 2 and not mini_valid & photos  # a quarter of 8 images, by image
    assert len(photos) == 4 + 6 and len(read["train_photos.tsv"]) == 50
    assert len(read["train.tsv"]) == 3 * 50 + 5
    assert len(read["valid_coco_tiny.tsv"]) == 10 and len(read["valid_scenes.tsv"]) == 3
    # the same seed, the same quarter; a second run into the folder needs --overwrite
    assert main(args) == 2 and "is not empty" in capsys.readouterr().err
    assert main([*args, "--overwrite"]) == 0
    assert {p.name for p, _ in read_captions([out / "valid_coco_mini.tsv"])} == mini_valid
    assert main([str(tmp_path / "x"), "--shared", str(tmp_path / "nowhere")]) == 2
    assert "coco_tiny not found" in capsys.readouterr().err
