"""Captions for Open Clip Art drawings (Debian's `openclipart-svg`): their metadata, a caption made from it, and a
train/validation split by file. `scripts/render_openclipart.py` renders the drawings and writes the tables.

Each drawing is an SVG whose `<metadata>` holds a Dublin Core `dc:title`, keyword tags (`dc:subject` → `rdf:Bag` →
`rdf:li`) and a `dc:creator`. Much of it is noise: collection names as titles ("Part of the Flat Icon Collection
(Wed Aug 25 23:29:46 2004)" on 599 icons, "gramastar" on 1375 stars), file names as titles ("jigsaw_red_10"), tags
that say where a drawing was filed rather than what it shows ("hash", "icons", "unsorted", "signs_and_symbols") and
the author's name as a tag.

A caption is `"<head>, <keyword>, <keyword>"`, lower case, at most `max_chars` characters: the head is the title's
words (CamelCase split; underscores, dashes and punctuation made spaces; digits and single letters dropped; "clipart
by NAME -" and similar removed), then up to `max_keywords` tags that are neither generic (`GENERIC_TAGS`), nor the
author's name, nor already said by the head or an earlier tag. A title that `group_size` or more drawings share
names a collection, not a drawing: the file name stands in for it (its words less the author's name and the
"bw"/"01" marks), and the shared title only when the file name says nothing. With no head and no tags, the caption
is the category (the top folder).
"""

from __future__ import annotations

import hashlib
import re
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal

from textdiffusion.data.corpus import DataError

NS = {
    "dc": "http://purl.org/dc/elements/1.1/",
    "cc": "http://web.resource.org/cc/",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
}

# Tags that say how a drawing was filed or made, not what it shows. The library's category names are kept as tags
# where they describe the drawing ("food", "animals") and listed here where they do not.
GENERIC_TAGS = frozenset(
    """
    unsorted clip art clipart cliparts clip-art media public domain publicdomain svg image images picture drawing
    drawings icon icons remix hash magick theme lemon_theme_icon appicon application applications action actions
    filesystem mimetypes mime-types mimetype menu webpage stock desktop mapsym map_symbol networksym symbol symbols
    sign signs signs_and_symbols special examples example recreation education office science decorations
    decoration misc other various nice style simple openclipart inkscape vector shape shapes geometry
    """.split()
) | {"clip art", "public domain"}

# Words of a title that belong to the library, not the drawing.
_TITLE_JUNK = re.compile(
    r"^\s*clip\s*arts?\s+by\s+[^-]*(-\s*|$)"  # "Clipart by Nicu Buculei - pear"
    r"|\bpart\s+of\s+the\s.*$"  # "Part of the Flat Icon Collection (Wed Aug 25 23:29:46 2004)"
    r"|\b(clip\s*arts?|svg|openclipart|public\s+domain|s[iu]bmission|collection(\s+of)?"
    r"|icons|icon\s*set|iconset|theme)\b",
    re.I,
)
# Two-letter words kept in file names (other one- and two-letter pieces are version or variant marks there).
_SHORT_WORDS = frozenset("tv pc cd uk us up on of in to no go ox".split())
# File-name marks of a variant or size rather than of the drawing.
_FILE_JUNK = frozenset(
    "aiga bw bwh pt step cm mm px ver version copy final draft new old small big".split()
)
_WEB = re.compile(
    r"\S*@\S*|\S*(https?:|www\.)\S*|[\w-]+(\.[\w-]+)*\.(com|net|org|de|it|fr|ch|es|uk|edu)\b"
)
_BLACK_AND_WHITE = re.compile(r"\(?\bb\s*(?:and|&)\s*w\b\)?|\bbw\b", re.I)


@dataclass(frozen=True)
class ClipartMeta:
    """What one drawing's SVG says about it.

    Args:
        path: the SVG's path relative to the library root, with `/` separators ("food/fruit/apple.svg").
        title: `dc:title` as written ("" when there is none).
        keywords: the `dc:subject` tags as written, empty ones left out.
        creator: the `dc:creator` agent's name ("" when there is none).
    """

    path: str
    title: str = ""
    keywords: tuple[str, ...] = ()
    creator: str = ""

    @property
    def category(self) -> str:
        """The top folder ("signs_and_symbols")."""
        return PurePosixPath(self.path).parts[0] if "/" in self.path else ""

    @property
    def stem(self) -> str:
        return PurePosixPath(self.path).stem


@dataclass(frozen=True)
class Caption:
    """A drawing's caption and what its head came from."""

    text: str
    source: Literal["title", "file name", "group title", "keywords", "category"]


def read_metadata(path: str | Path, *, root: str | Path) -> ClipartMeta:
    """The metadata of the SVG `path` (under the library folder `root`); a file without `<metadata>` gives empty
    fields. Raises `DataError` naming the file when it is not readable XML with an `<svg>` root."""
    path, root = Path(path), Path(root)
    try:
        tree = ET.parse(path)
    except (ET.ParseError, OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not a readable SVG ({exc})") from None
    svg = tree.getroot()
    if svg.tag.rsplit("}", 1)[-1] != "svg":
        raise DataError(f"{path}: not a readable SVG (root element is {svg.tag!r})")
    work = svg.find(".//cc:Work", NS)
    relative = path.relative_to(root).as_posix()
    if work is None:
        return ClipartMeta(relative)
    tags = (li.text or "" for li in work.iterfind("dc:subject/rdf:Bag/rdf:li", NS))
    return ClipartMeta(
        relative,
        title=" ".join((work.findtext("dc:title", "", NS) or "").split()),
        keywords=tuple(" ".join(tag.split()) for tag in tags if tag.strip()),
        creator=" ".join((work.findtext("dc:creator/cc:Agent/dc:title", "", NS) or "").split()),
    )


def words(text: str) -> list[str]:
    """Lower-case words of `text`: CamelCase split ("BlueMan" → "blue man"); e-mail and web addresses, hex
    numbers, digits, underscores, dashes and punctuation dropped ("jigsaw_red_10" → "jigsaw red")."""
    text = _WEB.sub(" ", text)
    text = re.sub(r"\b0x[0-9a-f]+\b", " ", text, flags=re.I)
    text = re.sub(r"(?<=[^\W\d_])(?=[A-Z][a-z])|(?<=[a-z])(?=[A-Z])", " ", text)
    return [word.lower() for word in re.findall(r"[^\W\d_]+(?:'[^\W\d_]+)?", text)]


def _name_parts(creator: str) -> set[str]:
    return {part for part in words(creator) if len(part) > 2}


def title_words(title: str, *, creator: str = "") -> list[str]:
    """The words of a title: library junk ("Clipart by NAME -", "svg", "collection", "theme"), single letters and
    the author's full name ("Bibliografia Francesco Rollandin" by Architetto Francesco Rollandin → "bibliografia")
    removed; "B and W" and "bw" read "black and white"."""
    title = _BLACK_AND_WHITE.sub(" black and white ", _TITLE_JUNK.sub(" ", title))
    found = [word for word in words(title) if len(word) > 1 or word == "a"]
    names = _name_parts(creator)
    # a run of two or more name words is the author; one alone may be the drawing's ("Rose" by Rose Smith)
    named = [word in names for word in found]
    return [
        word
        for i, word in enumerate(found)
        if not named[i] or not ((i > 0 and named[i - 1]) or (i + 1 < len(found) and named[i + 1]))
    ]


def file_words(stem: str, *, creator: str = "") -> list[str]:
    """The words of a file name that describe the drawing: version and variant marks ("01", "bw", "_a"), short
    pieces and the author's name, or its start ("moschito_stecchito_archi_01" by Architetto Francesco Rollandin →
    "moschito stecchito"), removed."""
    names = _name_parts(creator)
    kept = []
    for word in words(stem):
        if word in _FILE_JUNK or (len(word) <= 2 and word not in _SHORT_WORDS):
            continue
        if any(name.startswith(word) for name in names) and len(word) > 2:
            continue
        kept.append(word)
    return kept


def group_titles(metas: Iterable[ClipartMeta], *, group_size: int = 8) -> frozenset[str]:
    """The titles that `group_size` or more drawings share: names of collections ("Lemon SVG theme"), not of
    drawings."""
    if group_size < 2:
        raise ValueError(f"group_size must be at least 2, got {group_size}")
    counts = Counter(meta.title for meta in metas if meta.title)
    return frozenset(title for title, n in counts.items() if n >= group_size)


def _singular(word: str) -> str:
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


def _units(said: list[str]) -> set[str]:
    """Words said so far, singular, and runs of 2-3 of them joined ("gameboy pocket" → "gameboypocket")."""
    singular = [_singular(word) for word in said]
    joined = {"".join(said[i : i + n]) for n in (2, 3) for i in range(len(said) - n + 1)}
    return set(singular) | {_singular(run) for run in joined}


def make_caption(
    meta: ClipartMeta,
    *,
    group_title: bool = False,
    max_keywords: int = 4,
    max_chars: int = 80,
) -> Caption:
    """The caption of one drawing, `"<head>, <keyword>, ..."` (see the module docstring).

    Args:
        meta: the drawing's metadata.
        group_title: whether its title is shared by a group of drawings (`group_titles`), so that the file name
            stands in for it.
        max_keywords: the most tags added after the head.
        max_chars: the longest caption; tags that do not fit are left out and a longer head is cut at a word.
    """
    if max_keywords < 0 or max_chars < 10:
        raise ValueError(
            f"max_keywords must be >= 0 and max_chars >= 10, got {max_keywords}, {max_chars}"
        )
    head: list[str] = []
    source: str = "keywords"
    from_file = file_words(meta.stem, creator=meta.creator)
    from_title = title_words(meta.title, creator=meta.creator)
    if group_title:
        # a shared title is often one member's file name ("Clipart by Nicu Buculei - fc23"): read it as one
        from_title = [w for w in from_title if len(w) > 2 or w in _SHORT_WORDS]
        candidates = [("file name", from_file), ("group title", from_title)]
    else:
        candidates = [("title", from_title), ("file name", from_file)]
    for source_name, found in candidates:
        if found:
            head, source = found, source_name
            break
    said = list(head)
    names = _name_parts(meta.creator)
    tags: list[str] = []
    for keyword in meta.keywords:
        tag = keyword.strip().lower()
        if tag in GENERIC_TAGS or tag.replace("_", " ") in GENERIC_TAGS:
            continue
        tag_words = [word for word in words(tag) if len(word) > 1]
        if not tag_words or (names and set(tag_words) <= names):
            continue
        units = _units(said)
        if all(_singular(w) in units for w in tag_words) or _singular("".join(tag_words)) in units:
            continue
        tags.append(" ".join(tag_words))
        said += tag_words
        if len(tags) == max_keywords:
            break
    if not head and tags:
        head = tags.pop(0).split()
    if not head:
        category = meta.category or "drawing"
        return Caption(" ".join(words(category.replace("_", " "))) or "drawing", "category")
    text = " ".join(head)
    if len(text) > max_chars:
        cut = text[: max_chars + 1]
        text = cut.rsplit(" ", 1)[0] if " " in cut else text[:max_chars]
    for tag in tags:
        if len(text) + 2 + len(tag) <= max_chars:
            text += ", " + tag
    return Caption(text, source)  # type: ignore[arg-type]


def is_validation(path: str, *, seed: int = 0, valid_fraction: float = 0.2) -> bool:
    """Whether the drawing at the relative path `path` is held out: the first 8 bytes of sha1("SEED:PATH") read as
    a number in [0, 1) fall below `valid_fraction`. The same path and seed give the same answer on every machine and
    whatever other files there are."""
    if not 0.0 <= valid_fraction < 1.0:
        raise ValueError(f"valid_fraction must be in [0, 1), got {valid_fraction}")
    digest = hashlib.sha1(f"{seed}:{path}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < valid_fraction
