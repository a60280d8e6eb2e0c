"""Open Clip Art captions (textdiffusion/tasks/caption/clipart.py) and scripts/render_openclipart.py, on a tiny
library of SVGs written here, shaped like Debian's openclipart-svg (which the tests do not need): a drawing with a
file-name title and noisy tags, one without metadata, one drawn in a corner of its page, one with nothing usable, one blank, one broken. Only the
rendering test needs `rsvg-convert`."""

from __future__ import annotations

import csv
import importlib.util
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from textdiffusion.data import DataError
from textdiffusion.tasks.caption.clipart import (
    Caption,
    ClipartMeta,
    file_words,
    group_titles,
    is_validation,
    make_caption,
    read_metadata,
    title_words,
    words,
)

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "render_openclipart.py"


def svg(
    *, title: str | None = None, tags: tuple[str, ...] = (), creator: str = "", body: str
) -> str:
    """An SVG like the library's: Inkscape page, a cc:Work with title, tags and creator (no metadata when
    `title` is None)."""
    metadata = ""
    if title is not None:
        items = "".join(f"<rdf:li>{tag}</rdf:li>" for tag in tags)
        metadata = f"""<metadata><rdf:RDF><cc:Work rdf:about="">
  <dc:title>{title}</dc:title><dc:description></dc:description>
  <dc:subject><rdf:Bag><rdf:li></rdf:li>{items}</rdf:Bag></dc:subject>
  <dc:creator><cc:Agent><dc:title>{creator}</dc:title></cc:Agent></dc:creator>
</cc:Work></rdf:RDF></metadata>"""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" xmlns:dc="http://purl.org/dc/elements/1.1/"
 xmlns:cc="http://web.resource.org/cc/" xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"
 width="200" height="100" viewBox="0 0 200 100">{metadata}{body}</svg>"""


RED_DISC = '<circle cx="100" cy="50" r="40" fill="#d00000"/>'
LIBRARY = {
    "food/fruit/RedApple_jane_doe_01.svg": svg(
        title="RedApple_01",
        tags=(
            "clip art",
            "Fruit",
            "food",
            "public domain",
            "apples",
            "Jane Doe",
            "hash",
            "harvest",
        ),
        creator="Jane Doe",
        body=RED_DISC,
    ),
    "shapes/blue_square_02.svg": svg(
        body='<rect x="60" y="10" width="80" height="80" fill="blue"/>'
    ),
    "shapes/corner_dot.svg": svg(body='<rect x="0" y="0" width="20" height="20" fill="#00a000"/>'),
    "special/x_01.svg": svg(title="", tags=("hash", "svg"), body=RED_DISC),
    "unsorted/empty_page.svg": svg(title="Empty page", tags=("unsorted",), body=""),
    "signs_and_symbols/broken.svg": '<svg xmlns="http://www.w3.org/2000/svg"><rect width="1"',
}


@pytest.fixture
def library(tmp_path: Path) -> Path:
    root = tmp_path / "svg"
    for name, text in LIBRARY.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    return root


def load_script():
    """scripts/render_openclipart.py as a module (registered, as its dataclass needs)."""
    if "render_openclipart" not in sys.modules:
        spec = importlib.util.spec_from_file_location("render_openclipart", SCRIPT)
        module = importlib.util.module_from_spec(spec)
        sys.modules["render_openclipart"] = module
        spec.loader.exec_module(module)
    return sys.modules["render_openclipart"]


def read_table(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8") as f:
        return list(csv.reader(f, delimiter="\t"))


def test_words_split_file_names_and_drop_library_junk():
    assert words("BlueMan#106") == ["blue", "man"]
    assert words("jigsaw_red_10 LED-Circle 0x8b0de1c") == ["jigsaw", "red", "led", "circle"]
    assert words("ralf@ark.in-berlin.de www.example.com Tux") == ["tux"]
    assert title_words("Clipart by Nicu Buculei - pear") == ["pear"]
    assert title_words("Part of the Flat Icon Collection (Wed Aug 25 23:29:46 2004)") == []
    assert " ".join(title_words("Hot Dog (B and W)")) == "hot dog black and white"
    assert title_words("Lemon SVG theme") == ["lemon"]
    # the author's full name goes, one word of it alone stays ("Rose" may be what is drawn)
    assert title_words("Bibliografia Francesco Rollandin", creator="Francesco Rollandin") == [
        "bibliografia"
    ]
    assert title_words("Rose", creator="Rose Smith") == ["rose"]
    assert file_words("moschito_stecchito_archi_01", creator="Architetto Francesco Rollandin") == [
        "moschito",
        "stecchito",
    ]
    assert file_words("bordered_d_q") == ["bordered"]
    assert file_words("thumbs_up_bw") == ["thumbs", "up"]


def test_read_metadata(library: Path):
    meta = read_metadata(library / "food/fruit/RedApple_jane_doe_01.svg", root=library)
    assert meta.path == "food/fruit/RedApple_jane_doe_01.svg"
    assert (meta.category, meta.stem, meta.title, meta.creator) == (
        "food",
        "RedApple_jane_doe_01",
        "RedApple_01",
        "Jane Doe",
    )
    assert meta.keywords[:2] == ("clip art", "Fruit")  # empty tags left out, order kept
    bare = read_metadata(library / "shapes/blue_square_02.svg", root=library)
    assert (bare.title, bare.keywords, bare.creator) == ("", (), "")
    with pytest.raises(DataError, match="broken.svg: not a readable SVG"):
        read_metadata(library / "signs_and_symbols/broken.svg", root=library)


def test_caption_from_title_and_informative_keywords(library: Path):
    meta = read_metadata(library / "food/fruit/RedApple_jane_doe_01.svg", root=library)
    caption = make_caption(meta)
    # generic tags, the author, "hash" and "apples" (the title says apple) are dropped
    assert (caption.text, caption.source) == ("red apple, fruit, food, harvest", "title")
    assert make_caption(meta, max_keywords=1).text == "red apple, fruit"
    assert make_caption(meta, max_chars=17).text == "red apple, fruit"
    long = ClipartMeta("people/x.svg", title=" ".join(["word"] * 30), keywords=("tag",))
    assert len(make_caption(long).text) <= 80
    assert make_caption(long).text.endswith("word")  # cut at a word, no tag after a full head


def test_caption_fallbacks():
    shared = ClipartMeta(
        "computer/icons/lemon-theme/apps/gimp_editor.svg",
        title="Lemon SVG theme",
        keywords=("icon", "computer", "theme"),
    )
    assert make_caption(shared).text == "lemon, computer"  # as a title of its own
    caption = make_caption(shared, group_title=True)
    assert (caption.text, caption.source) == ("gimp editor, computer", "file name")
    sticks = ClipartMeta("people/stickmen/sm_005.svg", title="stick man", keywords=("people",))
    assert make_caption(sticks, group_title=True).text == "stick man, people"
    assert make_caption(sticks, group_title=True).source == "group title"
    tagged = ClipartMeta("tools/m16_01.svg", title="M16", keywords=("weapon", "gun"))
    assert make_caption(tagged) == Caption("weapon, gun", "keywords")
    nothing = ClipartMeta("signs_and_symbols/x_01.svg", title="", keywords=("hash", "svg"))
    assert (make_caption(nothing).text, make_caption(nothing).source) == (
        "signs and symbols",
        "category",
    )


def test_group_titles_are_titles_many_drawings_share():
    metas = [ClipartMeta(f"a/{i}.svg", title="Etiquette Icons") for i in range(3)]
    metas += [ClipartMeta("a/x.svg", title="Apple"), ClipartMeta("a/y.svg", title="")]
    assert group_titles(metas, group_size=3) == {"Etiquette Icons"}
    assert group_titles(metas, group_size=4) == set()
    with pytest.raises(ValueError, match="group_size"):
        group_titles(metas, group_size=1)


def test_split_is_by_file_stable_and_near_the_fraction():
    paths = [f"animals/drawing_{i:05d}.svg" for i in range(10_000)]
    held = [is_validation(p, seed=0, valid_fraction=0.2) for p in paths]
    assert abs(np.mean(held) - 0.2) < 4 * np.sqrt(0.2 * 0.8 / len(paths))  # binomial, 4 sigma
    assert held == [is_validation(p, seed=0, valid_fraction=0.2) for p in reversed(paths)][::-1]
    other_seed = [is_validation(p, seed=1, valid_fraction=0.2) for p in paths]
    assert 0.25 < np.mean(np.array(held) != np.array(other_seed)) < 0.4  # about 2 * 0.2 * 0.8
    # a smaller fraction holds out a subset of the larger one's drawings
    smaller = [is_validation(p, seed=0, valid_fraction=0.1) for p in paths]
    assert all(h for h, s in zip(held, smaller) if s)
    assert not any(is_validation(p, valid_fraction=0.0) for p in paths[:100])
    # the rule (sha1 of "SEED:PATH") is fixed: changing it would reshuffle the splits already made
    names = ("apple", "pear", "plum", "fig", "kiwi", "lime", "date", "yuzu", "sloe", "nut")
    assert [n for n in names if is_validation(f"food/{n}.svg")] == ["plum"]
    assert [n for n in names if is_validation(f"food/{n}.svg", seed=1)] == ["pear", "fig"]
    with pytest.raises(ValueError, match="valid_fraction"):
        is_validation("a.svg", valid_fraction=1.0)


def test_script_refuses_a_non_empty_out(library: Path, tmp_path: Path, capsys):
    script = load_script()
    out = tmp_path / "out"
    out.mkdir()
    (out / "train.tsv").write_text("file_name\tcaption\n")
    with pytest.raises(SystemExit) as exit_info:
        script.main([str(out), "--source", str(library)])
    message = str(exit_info.value.code)
    assert "is not empty" in message and "--overwrite" in message and "\n" not in message
    with pytest.raises(SystemExit, match="--source .* is not a folder"):
        script.main([str(tmp_path / "new"), "--source", str(tmp_path / "missing")])
    with pytest.raises(SystemExit, match="--valid-fraction must be in"):
        script.main([str(tmp_path / "new"), "--source", str(library), "--valid-fraction", "1.5"])


@pytest.mark.skipif(
    shutil.which("rsvg-convert") is None,
    reason="rsvg-convert is not installed (apt-get install librsvg2-bin)",
)
def test_script_renders_tables_and_counts_skips(library: Path, tmp_path: Path, capsys):
    script = load_script()
    out = tmp_path / "out"
    assert script.main([str(out), "--source", str(library), "--size", "32", "--jobs", "2"]) == 0
    report = capsys.readouterr().err
    assert "rendered 4 of 6 drawings" in report
    assert "blank image 1" in report and "unreadable SVG 1" in report
    assert "1 fell back to the category" in report

    train, valid = read_table(out / "train.tsv"), read_table(out / "valid.tsv")
    assert train[0] == valid[0] == ["file_name", "caption"]
    rows = dict(train[1:] + valid[1:])
    assert rows == {
        "images/food/fruit/RedApple_jane_doe_01.png": "red apple, fruit, food, harvest",
        "images/shapes/blue_square_02.png": "blue square",
        "images/shapes/corner_dot.png": "corner dot",
        "images/special/x_01.png": "special",
    }
    for image, _ in valid[1:]:
        assert is_validation(image[len("images/") : -len(".png")] + ".svg")
    for image, _ in train[1:]:
        assert not is_validation(image[len("images/") : -len(".png")] + ".svg")

    apple = np.asarray(Image.open(out / "images/food/fruit/RedApple_jane_doe_01.png"))
    assert apple.shape == (32, 32, 3)
    assert (apple[0, 0] == 255).all() and (apple[-1, -1] == 255).all()  # white padding
    assert tuple(apple[16, 16]) == (208, 0, 0)  # the red disc, centred
    square = np.asarray(Image.open(out / "images/shapes/blue_square_02.png"))
    assert tuple(square[16, 16]) == (0, 0, 255)
    # fitted: the drawing, not its page, fills the square less a 1-pixel border
    dot = np.asarray(Image.open(out / "images/shapes/corner_dot.png"))
    assert tuple(dot[1, 1]) == tuple(dot[-2, -2]) == (0, 160, 0)
    assert tuple(dot[0, 0]) == (255, 255, 255)
    assert not (out / "images/unsorted/empty_page.png").exists()
    readme = (out / "README.md").read_text()
    assert "public domain" in readme and "sha1" in readme and "unreadable SVG: 1" in readme

    with pytest.raises(SystemExit):
        script.main([str(out), "--source", str(library)])
    assert script.main([str(out), "--source", str(library), "--size", "32", "--no-fit",
                        "--overwrite"]) == 0  # fmt: skip
    page = np.asarray(Image.open(out / "images/shapes/corner_dot.png"))
    assert tuple(page[16, 16]) == (255, 255, 255) and tuple(page[9, 1]) == (0, 160, 0)

    # the split is by file: fewer files give the same side for the files kept
    for fraction in ("0.5", "0.9"):
        assert script.main([str(out), "--source", str(library), "--overwrite",
                            "--valid-fraction", fraction, "--seed", "3", "--limit", "5"]) == 0  # fmt: skip
        held = {row[0] for row in read_table(out / "valid.tsv")[1:]}
        kept = {row[0] for row in read_table(out / "train.tsv")[1:]} | held
        assert kept == set(rows)  # --limit 5: the broken SVG is among them, the blank one is not
        for image in kept:
            path = image[len("images/") : -len(".png")] + ".svg"
            assert (image in held) == is_validation(path, seed=3, valid_fraction=float(fraction))
